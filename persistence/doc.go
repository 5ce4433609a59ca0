// Package persistence stores storyd's users, projects, chat sessions,
// messages and dossiers.
//
// Two stores implement the same method set: Postgres (PostgreSQL through a
// pgx pool; production, Supabase included) and SQLite (an embedded file
// through modernc.org/sqlite; the zero-setup default). One contract test
// suite runs against both. Consumers declare the small interface they need;
// this package returns concrete types and never imports its consumers.
//
// # Contract shared by both stores
//
//   - Errors are wrapped with the operation ("persistence: append message
//     <id>: ...") and mapped to the sentinels in errors.go (ErrNotFound,
//     ErrConflict, ErrInvalid), so callers test with errors.Is and never
//     import a driver. Other errors (connection lost, context cancelled)
//     pass through wrapped with %w.
//   - IDs are UUIDs, returned in canonical lower-case form whatever case they
//     were given in. A malformed id names no row: reads answer ErrNotFound
//     (or an empty list), a malformed id for a new row is ErrInvalid.
//   - Times are returned in UTC with microsecond precision. A zero timestamp
//     on a record being created is set to the store's clock (see WithClock).
//   - Message metadata is a JSON object or nil: nil and {} are stored as {}
//     and read back as nil. Snapshots are always a JSON object ({} when
//     empty). JSON is written and returned in one canonical form (compact,
//     object keys sorted, no HTML escaping), so both stores return the same
//     bytes for the same value; only a number's spelling may differ, as
//     jsonb normalises it (1e2 reads back as 100).
//   - Text that PostgreSQL cannot hold (invalid UTF-8, NUL) is ErrInvalid in
//     both stores.
//   - List methods return a non-nil, possibly empty, slice.
//
// # Concurrency
//
// Both stores are safe for concurrent use by any number of goroutines.
// Every method blocks until the database answers or ctx is done. Close
// must be called once, after the last call has returned.
//
// Multi-row changes (AppendMessage, CreateDossier, UpdateDossier,
// SaveDossier, SaveExtraction, AdvanceDossierCursors, MigrateUser,
// CreateSession and UpsertUser on SQLite) run in one transaction. Postgres relies on PostgreSQL's row locks and unique indexes
// under READ COMMITTED: identical AppendMessage retries racing each other
// store one row, of two UpdateDossier calls from the same version exactly
// one succeeds, and of concurrent MigrateUser calls for the same anonymous
// user exactly one succeeds (MigrateUser locks both users' rows in id
// order, so migrations in opposite directions cannot deadlock). A row
// created for the anonymous user while its migration runs (CreateProject,
// CreateSession) waits for the migration and then lands on the dead id: the
// caller must stop using an id once GetUser reports it migrated.
//
// SQLite keeps two database/sql pools on the same WAL-mode file: a writer
// limited to one connection, which runs every write and every transaction
// (BEGIN IMMEDIATE), and a pool of read-only (query_only) connections for
// single-statement reads. Writes are therefore serialised inside the process
// and never fail with SQLITE_BUSY against each other, while WAL lets reads
// proceed during a write; a read sees every write committed before it
// started. A write waits for the writer connection, so a long transaction
// delays other writes but not reads. The file is meant for one storyd
// process; busy_timeout covers a short overlap with another (such as
// `storyd migrate`).
//
// The stores start no goroutines of their own (pgxpool runs its health
// check until Close) and never log.
package persistence
