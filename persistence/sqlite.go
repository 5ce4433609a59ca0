package persistence

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pressly/goose/v3"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/storyd/storyd/migrations"
)

// SQLiteFile is the name of the database file OpenSQLite keeps in its data
// directory.
const SQLiteFile = "storyd.db"

// sqliteTimeLayout is how the SQLite store keeps timestamps: fixed-width UTC
// text with microseconds, which sorts chronologically as text and round-trips
// exactly.
const sqliteTimeLayout = "2006-01-02T15:04:05.000000Z"

// SQLite is the embedded store: one database file under a data directory,
// opened through modernc.org/sqlite (pure Go, no cgo). It is safe for
// concurrent use; see the package documentation for how it serialises
// writes. Its method set is the same as Postgres's.
type SQLite struct {
	w   *sql.DB // exactly one connection: every write and every transaction
	r   *sql.DB // read-only connections for single-statement reads
	cfg config
}

// OpenSQLite opens (creating if needed) dataDir/storyd.db. dataDir is
// created with mode 0700 and the database file with mode 0600. The database
// runs in WAL mode with synchronous=NORMAL, foreign keys on and a busy
// timeout. It does not migrate; call Migrate.
func OpenSQLite(ctx context.Context, dataDir string, opts ...Option) (*SQLite, error) {
	if dataDir == "" {
		return nil, fmt.Errorf("persistence: open sqlite: %w: data directory is required", ErrInvalid)
	}
	dir, err := filepath.Abs(dataDir)
	if err != nil {
		return nil, fmt.Errorf("persistence: open sqlite %s: %w", dataDir, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("persistence: open sqlite %s: %w", dataDir, err)
	}
	path := filepath.Join(dir, SQLiteFile)
	// Create the file ourselves so that it gets mode 0600; SQLite gives its
	// -wal and -shm files the database file's permissions.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("persistence: open sqlite %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("persistence: open sqlite %s: %w", path, err)
	}

	cfg := newConfig(opts)
	s := &SQLite{cfg: cfg}
	// The writer sets the persistent WAL mode before any reader opens.
	s.w, err = sql.Open("sqlite", sqliteDSN(path,
		"_pragma=busy_timeout(10000)",
		"_pragma=foreign_keys(1)",
		"_pragma=journal_mode(WAL)",
		"_pragma=synchronous(NORMAL)",
		"_txlock=immediate",
	))
	if err != nil {
		return nil, fmt.Errorf("persistence: open sqlite %s: %w", path, err)
	}
	s.w.SetMaxOpenConns(1)
	s.w.SetMaxIdleConns(1)
	s.w.SetConnMaxLifetime(0)
	s.w.SetConnMaxIdleTime(0)
	var mode string
	if err := s.w.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		_ = s.w.Close()
		return nil, fmt.Errorf("persistence: open sqlite %s: %w", path, err)
	}
	if !strings.EqualFold(mode, "wal") {
		_ = s.w.Close()
		return nil, fmt.Errorf("persistence: open sqlite %s: journal mode is %q, want wal", path, mode)
	}

	s.r, err = sql.Open("sqlite", sqliteDSN(path,
		"_pragma=busy_timeout(10000)",
		"_pragma=foreign_keys(1)",
		"_pragma=query_only(1)",
	))
	if err != nil {
		_ = s.w.Close()
		return nil, fmt.Errorf("persistence: open sqlite %s: %w", path, err)
	}
	s.r.SetMaxOpenConns(cfg.readConns)
	s.r.SetMaxIdleConns(cfg.readConns)
	if err := s.r.PingContext(ctx); err != nil {
		_ = s.r.Close()
		_ = s.w.Close()
		return nil, fmt.Errorf("persistence: open sqlite %s: %w", path, err)
	}
	return s, nil
}

// sqliteDSN builds a file: URI for path (escaped, so any file name works)
// with the given query parameters.
func sqliteDSN(path string, params ...string) string {
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(path), OmitHost: true}
	return u.String() + "?" + strings.Join(params, "&")
}

// Kind returns "sqlite".
func (s *SQLite) Kind() string { return "sqlite" }

// Ping checks that both the writer and a reader connection answer.
func (s *SQLite) Ping(ctx context.Context) error {
	if err := s.w.PingContext(ctx); err != nil {
		return fmt.Errorf("persistence: ping sqlite: %w", err)
	}
	if err := s.r.PingContext(ctx); err != nil {
		return fmt.Errorf("persistence: ping sqlite: %w", err)
	}
	return nil
}

// Close closes every connection. Calls in flight finish first; later calls
// fail.
func (s *SQLite) Close() error {
	if err := errors.Join(s.r.Close(), s.w.Close()); err != nil {
		return fmt.Errorf("persistence: close sqlite: %w", err)
	}
	return nil
}

// Migrate applies every pending migration of migrations.SQLite and returns
// how many it applied (0 when the schema is current).
func (s *SQLite) Migrate(ctx context.Context) (int, error) {
	p, err := newMigrator(goose.DialectSQLite3, s.w, migrations.SQLite())
	if err != nil {
		return 0, fmt.Errorf("persistence: migrate sqlite: %w", err)
	}
	n, err := migrateUp(ctx, p)
	if err != nil {
		return n, fmt.Errorf("persistence: migrate sqlite: %w", err)
	}
	return n, nil
}

// PendingMigrations returns how many migrations Migrate would apply.
func (s *SQLite) PendingMigrations(ctx context.Context) (int, error) {
	p, err := newMigrator(goose.DialectSQLite3, s.w, migrations.SQLite())
	if err != nil {
		return 0, fmt.Errorf("persistence: pending migrations sqlite: %w", err)
	}
	n, err := countPending(ctx, p)
	if err != nil {
		return 0, fmt.Errorf("persistence: pending migrations sqlite: %w", err)
	}
	return n, nil
}

// withTx runs fn in a transaction on the writer connection (BEGIN
// IMMEDIATE), committing when fn returns nil.
func (s *SQLite) withTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// liteErr maps SQLite errors to the package's sentinels. The driver's text is
// kept for the log, but not its type.
func liteErr(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return fmt.Errorf("%w: %s", ErrConflict, se.Error())
		case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
			return fmt.Errorf("%w: %s", ErrNotFound, se.Error())
		case sqlite3.SQLITE_CONSTRAINT_CHECK, sqlite3.SQLITE_CONSTRAINT_NOTNULL, sqlite3.SQLITE_CONSTRAINT_DATATYPE:
			return fmt.Errorf("%w: %s", ErrInvalid, se.Error())
		}
	}
	return err
}

func isLiteUnique(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && (se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE ||
		se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY)
}

// liteTime formats t for storage.
func liteTime(t time.Time) string { return t.UTC().Format(sqliteTimeLayout) }

// liteNull stores "" as NULL.
func liteNull(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// timeCol scans a stored timestamp (NULL allowed when null is set).
type timeCol struct {
	t    *time.Time
	null **time.Time
}

// Scan implements sql.Scanner.
func (c timeCol) Scan(src any) error {
	var text string
	switch v := src.(type) {
	case nil:
		if c.null != nil {
			*c.null = nil
			return nil
		}
		return errors.New("timestamp is NULL")
	case string:
		text = v
	case []byte:
		text = string(v)
	default:
		return fmt.Errorf("timestamp has type %T", src)
	}
	t, err := time.Parse(sqliteTimeLayout, text)
	if err != nil {
		return fmt.Errorf("timestamp %q: %w", text, err)
	}
	if c.null != nil {
		*c.null = &t
		return nil
	}
	*c.t = t
	return nil
}

// rowScanner is *sql.Row or *sql.Rows.
type rowScanner interface{ Scan(dest ...any) error }

const liteUserCols = `id, email, display_name, avatar_url, is_anonymous, COALESCE(migrated_to, ''), created_at, updated_at`

func scanLiteUser(sc rowScanner) (User, error) {
	var u User
	err := sc.Scan(&u.ID, &u.Email, &u.DisplayName, &u.AvatarURL, &u.IsAnonymous, &u.MigratedTo,
		timeCol{t: &u.CreatedAt}, timeCol{t: &u.UpdatedAt})
	return u, err
}

// EnsureUser inserts in unless a user with its ID exists, and returns the
// stored row; it never changes an existing user. The ID must be a UUID
// (ErrInvalid otherwise); zero timestamps are set to now.
func (s *SQLite) EnsureUser(ctx context.Context, in User) (User, error) {
	u, err := prepareUser(in, s.cfg.timestamp())
	if err != nil {
		return User{}, fmt.Errorf("persistence: ensure user %s: %w", in.ID, err)
	}
	var stored User
	err = s.withTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO users
			(id, email, display_name, avatar_url, is_anonymous, migrated_to, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
			u.ID, u.Email, u.DisplayName, u.AvatarURL, u.IsAnonymous, liteNull(u.MigratedTo),
			liteTime(u.CreatedAt), liteTime(u.UpdatedAt)); err != nil {
			return err
		}
		var err error
		stored, err = scanLiteUser(tx.QueryRowContext(ctx, `SELECT `+liteUserCols+` FROM users WHERE id = ?`, u.ID))
		return err
	})
	if err != nil {
		return User{}, fmt.Errorf("persistence: ensure user %s: %w", u.ID, liteErr(err))
	}
	return stored, nil
}

// GetUser returns the user with the given id, or ErrNotFound.
func (s *SQLite) GetUser(ctx context.Context, id string) (User, error) {
	cid, ok := canonicalID(id)
	if !ok {
		return User{}, fmt.Errorf("persistence: get user %q: %w", id, ErrNotFound)
	}
	u, err := scanLiteUser(s.r.QueryRowContext(ctx, `SELECT `+liteUserCols+` FROM users WHERE id = ?`, cid))
	if err != nil {
		return User{}, fmt.Errorf("persistence: get user %s: %w", cid, liteErr(err))
	}
	return u, nil
}

// UpsertUser creates a user or updates its profile, and returns the stored
// row. Email, DisplayName and AvatarURL replace the stored values when
// non-empty; an empty one keeps what is stored. IsAnonymous is taken from in
// for a new user; an existing one can only go from anonymous to registered,
// never back. MigratedTo is ignored (only MigrateUser sets it). An update
// sets UpdatedAt to now; a call that would change nothing writes nothing.
// The ID must be a UUID (ErrInvalid otherwise); a migrated user's id is dead,
// so updating one is ErrConflict. Zero timestamps of a new user are set to
// now.
func (s *SQLite) UpsertUser(ctx context.Context, in User) (User, error) {
	now := s.cfg.timestamp()
	u, err := prepareUpsert(in, now)
	if err != nil {
		return User{}, fmt.Errorf("persistence: upsert user %s: %w", in.ID, err)
	}
	var stored User
	err = s.withTx(ctx, func(tx *sql.Tx) error {
		// DO UPDATE ... WHERE false returns no row: nothing to change, or a
		// migrated user.
		var err error
		stored, err = scanLiteUser(tx.QueryRowContext(ctx, `INSERT INTO users
			(id, email, display_name, avatar_url, is_anonymous, created_at, updated_at)
			VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
			ON CONFLICT (id) DO UPDATE SET
				email = COALESCE(NULLIF(excluded.email, ''), users.email),
				display_name = COALESCE(NULLIF(excluded.display_name, ''), users.display_name),
				avatar_url = COALESCE(NULLIF(excluded.avatar_url, ''), users.avatar_url),
				is_anonymous = users.is_anonymous AND excluded.is_anonymous,
				updated_at = ?8
			WHERE users.migrated_to IS NULL AND (
				(excluded.email <> '' AND excluded.email <> users.email) OR
				(excluded.display_name <> '' AND excluded.display_name <> users.display_name) OR
				(excluded.avatar_url <> '' AND excluded.avatar_url <> users.avatar_url) OR
				(users.is_anonymous AND NOT excluded.is_anonymous))
			RETURNING `+liteUserCols,
			u.ID, u.Email, u.DisplayName, u.AvatarURL, u.IsAnonymous,
			liteTime(u.CreatedAt), liteTime(u.UpdatedAt), liteTime(now)))
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		stored, err = scanLiteUser(tx.QueryRowContext(ctx, `SELECT `+liteUserCols+` FROM users WHERE id = ?`, u.ID))
		if err == nil && stored.MigratedTo != "" {
			err = fmt.Errorf("%w: user %s migrated to %s", ErrConflict, u.ID, stored.MigratedTo)
		}
		return err
	})
	if err != nil {
		return User{}, fmt.Errorf("persistence: upsert user %s: %w", u.ID, liteErr(err))
	}
	return stored, nil
}

// ClaimUser records the holder of a verified access token for user id: the
// row is created as a registered user, or becomes one. A token proves the
// id, so a row that an anonymous client created under it (or migrated away)
// is taken over: it is marked registered and its migrated_to is cleared.
// email is stored only where the row has none (a profile edit wins).
func (s *SQLite) ClaimUser(ctx context.Context, id, email string) (User, error) {
	cid, ok := canonicalID(id)
	if !ok {
		return User{}, fmt.Errorf("persistence: claim user %q: %w", id, ErrInvalid)
	}
	now := s.cfg.timestamp()
	q := `INSERT INTO users
		(id, email, display_name, avatar_url, is_anonymous, created_at, updated_at)
		VALUES (?1, ?2, '', '', 0, ?3, ?3)
		ON CONFLICT (id) DO UPDATE SET
			is_anonymous = 0,
			migrated_to = NULL,
			email = CASE WHEN users.email = '' THEN excluded.email ELSE users.email END,
			updated_at = CASE WHEN users.is_anonymous OR users.migrated_to IS NOT NULL OR (users.email = '' AND excluded.email <> '')
				THEN excluded.updated_at ELSE users.updated_at END
		RETURNING ` + liteUserCols
	u, err := scanLiteUser(s.w.QueryRowContext(ctx, q, cid, email, liteTime(now)))
	if err != nil {
		return User{}, fmt.Errorf("persistence: claim user %s: %w", cid, liteErr(err))
	}
	return u, nil
}

// MigrateUser moves everything an anonymous user owns (chat sessions active
// or not, projects, dossiers) to a permanent user and marks the anonymous
// user migrated (MigratedTo = permanentUserID), all in one transaction. The
// permanent user is created as a registered user when absent, and marked
// registered when it exists as an anonymous one. Moved rows keep their
// timestamps.
//
// An unknown (or malformed) tempUserID is ErrNotFound; a temporary user that
// is registered or already migrated, or a permanent user that is itself
// migrated, is ErrConflict; a malformed permanentUserID, or one equal to
// tempUserID, is ErrInvalid. Of concurrent migrations of the same user
// exactly one succeeds; the others get ErrConflict.
func (s *SQLite) MigrateUser(ctx context.Context, tempUserID, permanentUserID string) (MigrationResult, error) {
	from, to, err := migrationIDs(tempUserID, permanentUserID)
	if err != nil {
		return MigrationResult{}, fmt.Errorf("persistence: migrate user %s to %s: %w", tempUserID, permanentUserID, err)
	}
	now := liteTime(s.cfg.timestamp())
	var res MigrationResult
	// The writer connection serialises this transaction with every other
	// write, so the checks below hold until it commits.
	err = s.withTx(ctx, func(tx *sql.Tx) error {
		temp, err := scanLiteUser(tx.QueryRowContext(ctx, `SELECT `+liteUserCols+` FROM users WHERE id = ?`, from))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: user %s", ErrNotFound, from)
		}
		if err != nil {
			return err
		}
		if err := checkMigratable(from, temp.IsAnonymous, temp.MigratedTo); err != nil {
			return err
		}
		var permMigratedTo string
		if err := tx.QueryRowContext(ctx, `INSERT INTO users (id, is_anonymous, created_at, updated_at)
			VALUES (?1, 0, ?2, ?2)
			ON CONFLICT (id) DO UPDATE SET
				is_anonymous = 0,
				updated_at = CASE WHEN users.is_anonymous THEN excluded.updated_at ELSE users.updated_at END
			RETURNING COALESCE(migrated_to, '')`, to, now).Scan(&permMigratedTo); err != nil {
			return err
		}
		if permMigratedTo != "" {
			return fmt.Errorf("%w: permanent user %s migrated to %s", ErrConflict, to, permMigratedTo)
		}
		for _, move := range []struct {
			sql string
			n   *int
		}{
			{`UPDATE chat_sessions SET user_id = ? WHERE user_id = ?`, &res.Sessions},
			{`UPDATE projects SET user_id = ? WHERE user_id = ?`, &res.Projects},
			{`UPDATE dossiers SET user_id = ? WHERE user_id = ?`, &res.Dossiers},
		} {
			r, err := tx.ExecContext(ctx, move.sql, to, from)
			if err != nil {
				return err
			}
			n, err := r.RowsAffected()
			if err != nil {
				return err
			}
			*move.n = int(n)
		}
		_, err = tx.ExecContext(ctx, `UPDATE users SET migrated_to = ?, updated_at = ? WHERE id = ?`, to, now, from)
		return err
	})
	if err != nil {
		return MigrationResult{}, fmt.Errorf("persistence: migrate user %s to %s: %w", from, to, liteErr(err))
	}
	return res, nil
}

const liteProjectCols = `id, user_id, title, created_at, updated_at`

func scanLiteProject(sc rowScanner) (Project, error) {
	var p Project
	err := sc.Scan(&p.ID, &p.UserID, &p.Title, timeCol{t: &p.CreatedAt}, timeCol{t: &p.UpdatedAt})
	return p, err
}

// CreateProject stores a new project and returns it. An empty ID is
// generated; zero timestamps are set to now. It returns ErrConflict when the
// ID is taken and ErrNotFound when the user does not exist.
func (s *SQLite) CreateProject(ctx context.Context, in Project) (Project, error) {
	p, err := prepareProject(in, s.cfg.timestamp())
	if err != nil {
		return Project{}, fmt.Errorf("persistence: create project %s: %w", in.ID, err)
	}
	if _, err := s.w.ExecContext(ctx, `INSERT INTO projects (id, user_id, title, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?)`,
		p.ID, p.UserID, p.Title, liteTime(p.CreatedAt), liteTime(p.UpdatedAt)); err != nil {
		return Project{}, fmt.Errorf("persistence: create project %s: %w", p.ID, liteErr(err))
	}
	return p, nil
}

// GetProject returns the project with the given id, or ErrNotFound.
func (s *SQLite) GetProject(ctx context.Context, id string) (Project, error) {
	cid, ok := canonicalID(id)
	if !ok {
		return Project{}, fmt.Errorf("persistence: get project %q: %w", id, ErrNotFound)
	}
	p, err := scanLiteProject(s.r.QueryRowContext(ctx, `SELECT `+liteProjectCols+` FROM projects WHERE id = ?`, cid))
	if err != nil {
		return Project{}, fmt.Errorf("persistence: get project %s: %w", cid, liteErr(err))
	}
	return p, nil
}

const liteSessionCols = `id, user_id, project_id, title, is_active, message_count, last_message_at, last_seq, created_at, updated_at`

func scanLiteSession(sc rowScanner) (Session, error) {
	var x Session
	err := sc.Scan(&x.ID, &x.UserID, &x.ProjectID, &x.Title, &x.IsActive, &x.MessageCount,
		timeCol{null: &x.LastMessageAt}, &x.LastSeq, timeCol{t: &x.CreatedAt}, timeCol{t: &x.UpdatedAt})
	return x, err
}

// CreateSession stores a new, active session with no messages and returns
// it. An empty ID is generated; zero timestamps are set to now. The project
// must exist and belong to the session's user (ErrNotFound otherwise); a
// taken ID is ErrConflict.
func (s *SQLite) CreateSession(ctx context.Context, in Session) (Session, error) {
	sess, err := prepareSession(in, s.cfg.timestamp())
	if err != nil {
		return Session{}, fmt.Errorf("persistence: create session %s: %w", in.ID, err)
	}
	err = s.withTx(ctx, func(tx *sql.Tx) error {
		var owner string
		err := tx.QueryRowContext(ctx, `SELECT user_id FROM projects WHERE id = ?`, sess.ProjectID).Scan(&owner)
		if errors.Is(err, sql.ErrNoRows) || (err == nil && owner != sess.UserID) {
			return fmt.Errorf("%w: project %s of user %s", ErrNotFound, sess.ProjectID, sess.UserID)
		}
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO chat_sessions
			(id, user_id, project_id, title, is_active, message_count, last_message_at, last_seq, created_at, updated_at)
			VALUES (?, ?, ?, ?, 1, 0, NULL, 0, ?, ?)`,
			sess.ID, sess.UserID, sess.ProjectID, sess.Title, liteTime(sess.CreatedAt), liteTime(sess.UpdatedAt))
		return err
	})
	if err != nil {
		return Session{}, fmt.Errorf("persistence: create session %s: %w", sess.ID, liteErr(err))
	}
	return sess, nil
}

// GetSession returns the session with the given id, active or not, or
// ErrNotFound.
func (s *SQLite) GetSession(ctx context.Context, id string) (Session, error) {
	cid, ok := canonicalID(id)
	if !ok {
		return Session{}, fmt.Errorf("persistence: get session %q: %w", id, ErrNotFound)
	}
	x, err := scanLiteSession(s.r.QueryRowContext(ctx, `SELECT `+liteSessionCols+` FROM chat_sessions WHERE id = ?`, cid))
	if err != nil {
		return Session{}, fmt.Errorf("persistence: get session %s: %w", cid, liteErr(err))
	}
	return x, nil
}

// liteListSessions selects a user's active sessions, newest first: by the
// last message's time, or the creation time of a session without messages,
// then by updated_at and id so that the order is total.
const liteListSessions = `SELECT ` + liteSessionCols + ` FROM chat_sessions
	WHERE user_id = ? AND is_active = 1
	ORDER BY COALESCE(last_message_at, created_at) DESC, updated_at DESC, id DESC`

// ListSessions returns every active session of a user, newest first: by
// LastMessageAt, or CreatedAt for a session without messages (then by
// UpdatedAt). Deactivated sessions are left out.
func (s *SQLite) ListSessions(ctx context.Context, userID string) ([]Session, error) {
	cid, ok := canonicalID(userID)
	if !ok {
		return []Session{}, nil
	}
	out, err := liteCollect(ctx, s.r, scanLiteSession, liteListSessions, cid)
	if err != nil {
		return nil, fmt.Errorf("persistence: list sessions of %s: %w", cid, err)
	}
	return out, nil
}

// ListSessionsPage returns one page of ListSessions: at most limit sessions
// after skipping offset. limit must be at least 1 and offset not negative
// (ErrInvalid otherwise).
func (s *SQLite) ListSessionsPage(ctx context.Context, userID string, limit, offset int) ([]Session, error) {
	if err := checkPage(limit, offset); err != nil {
		return nil, fmt.Errorf("persistence: list sessions of %s: %w", userID, err)
	}
	cid, ok := canonicalID(userID)
	if !ok {
		return []Session{}, nil
	}
	out, err := liteCollect(ctx, s.r, scanLiteSession, liteListSessions+` LIMIT ? OFFSET ?`, cid, limit, offset)
	if err != nil {
		return nil, fmt.Errorf("persistence: list sessions of %s: %w", cid, err)
	}
	return out, nil
}

// liteCollect runs a query on the read pool and scans every row with scan;
// an empty result is an empty, non-nil slice.
func liteCollect[T any](ctx context.Context, db *sql.DB, scan func(rowScanner) (T, error), query string, args ...any) ([]T, error) {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, liteErr(err)
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, liteErr(err)
	}
	return out, nil
}

// DeactivateSession marks a session inactive (the seed's delete): it leaves
// ListSessions but keeps its messages. Deactivating an inactive session is a
// no-op; an unknown one is ErrNotFound.
func (s *SQLite) DeactivateSession(ctx context.Context, id string) error {
	cid, ok := canonicalID(id)
	if !ok {
		return fmt.Errorf("persistence: deactivate session %q: %w", id, ErrNotFound)
	}
	res, err := s.w.ExecContext(ctx, `UPDATE chat_sessions SET is_active = 0, updated_at = ? WHERE id = ?`,
		liteTime(s.cfg.timestamp()), cid)
	if err != nil {
		return fmt.Errorf("persistence: deactivate session %s: %w", cid, liteErr(err))
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("persistence: deactivate session %s: %w", cid, err)
	} else if n == 0 {
		return fmt.Errorf("persistence: deactivate session %s: %w", cid, ErrNotFound)
	}
	return nil
}

const liteMessageCols = `id, session_id, seq, end_seq, COALESCE(turn_id, ''), role, content, metadata, status,
	COALESCE(client_message_id, ''), created_at, updated_at`

func scanLiteMessage(sc rowScanner) (Message, error) {
	var m Message
	var meta string
	err := sc.Scan(&m.ID, &m.SessionID, &m.Seq, &m.EndSeq, &m.TurnID, &m.Role, &m.Content, &meta, &m.Status,
		&m.ClientMessageID, timeCol{t: &m.CreatedAt}, timeCol{t: &m.UpdatedAt})
	m.Metadata = metadataOut([]byte(meta))
	return m, err
}

// AppendMessage stores a message and updates its session in one
// transaction: message_count+1, last_message_at = the message's CreatedAt,
// last_seq = max(last_seq, EndSeq), updated_at = now, and an untitled
// session takes its title from its first user message (DeriveTitle).
//
// The caller assigns Seq (≥ 1) and EndSeq (0 means Seq); an empty ID is
// generated, an empty Status is StatusComplete, a user message with no
// TurnID is its own turn, and zero timestamps are set to now.
//
// When ClientMessageID is set and the session already holds a message with
// it, AppendMessage changes nothing and returns that message with created
// false; identical retries racing each other store exactly one row and all
// see it. A seq the session already used is ErrConflict, an unknown session
// ErrNotFound, an invalid message ErrInvalid. Appending to an inactive
// session is allowed; refusing it is the caller's policy.
func (s *SQLite) AppendMessage(ctx context.Context, in Message) (stored Message, created bool, err error) {
	now := s.cfg.timestamp()
	m, meta, err := prepareMessage(in, now)
	if err != nil {
		return Message{}, false, fmt.Errorf("persistence: append message %s: %w", in.ID, err)
	}
	var existing *Message
	err = s.withTx(ctx, func(tx *sql.Tx) error {
		if m.ClientMessageID != "" {
			got, err := s.messageByClientID(ctx, tx, m.SessionID, m.ClientMessageID)
			if err == nil {
				existing = &got
				return nil
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO messages
			(id, session_id, seq, end_seq, turn_id, role, content, metadata, status, client_message_id, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			m.ID, m.SessionID, m.Seq, m.EndSeq, liteNull(m.TurnID), m.Role, m.Content, meta, m.Status,
			liteNull(m.ClientMessageID), liteTime(m.CreatedAt), liteTime(m.UpdatedAt)); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE chat_sessions SET
			message_count = message_count + 1,
			last_message_at = ?,
			last_seq = MAX(last_seq, ?),
			title = CASE WHEN title = '' THEN ? ELSE title END,
			updated_at = ?
			WHERE id = ?`,
			liteTime(m.CreatedAt), m.EndSeq, sessionTitleFrom(m), liteTime(now), m.SessionID)
		return err
	})
	if err != nil {
		// A racing identical retry won: report its message. (The single
		// writer connection makes this unreachable today; it keeps the
		// contract independent of that choice.)
		if m.ClientMessageID != "" && isLiteUnique(err) {
			if got, rerr := s.messageByClientID(ctx, s.w, m.SessionID, m.ClientMessageID); rerr == nil {
				return got, false, nil
			}
		}
		return Message{}, false, fmt.Errorf("persistence: append message %s: %w", m.ID, liteErr(err))
	}
	if existing != nil {
		return *existing, false, nil
	}
	return m, true, nil
}

// sessionTitleFrom returns the title an untitled session takes from m: the
// derived title of a user message, "" (no change) otherwise.
func sessionTitleFrom(m Message) string {
	if m.Role != RoleUser {
		return ""
	}
	return DeriveTitle(m.Content)
}

type liteQuerier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func (s *SQLite) messageByClientID(ctx context.Context, q liteQuerier, sessionID, clientID string) (Message, error) {
	return scanLiteMessage(q.QueryRowContext(ctx, `SELECT `+liteMessageCols+` FROM messages
		WHERE session_id = ? AND client_message_id = ?`, sessionID, clientID))
}

func (s *SQLite) queryMessages(ctx context.Context, query string, args ...any) ([]Message, error) {
	rows, err := s.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, liteErr(err)
	}
	defer rows.Close()
	out := []Message{}
	for rows.Next() {
		m, err := scanLiteMessage(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, liteErr(err)
	}
	return out, nil
}

// RecentMessages returns the newest limit messages of a session in ascending
// seq order: the context window a session actor loads. An unknown session
// has no messages; limit must be at least 1.
func (s *SQLite) RecentMessages(ctx context.Context, sessionID string, limit int) ([]Message, error) {
	if err := checkPage(limit, 0); err != nil {
		return nil, fmt.Errorf("persistence: recent messages of %s: %w", sessionID, err)
	}
	cid, ok := canonicalID(sessionID)
	if !ok {
		return []Message{}, nil
	}
	out, err := s.queryMessages(ctx, `SELECT `+liteMessageCols+` FROM (
			SELECT * FROM messages WHERE session_id = ? ORDER BY seq DESC LIMIT ?
		) ORDER BY seq`, cid, limit)
	if err != nil {
		return nil, fmt.Errorf("persistence: recent messages of %s: %w", cid, err)
	}
	return out, nil
}

// ListMessages returns a page of a session's messages in ascending seq
// order. An unknown session has no messages; limit must be at least 1 and
// offset not negative.
func (s *SQLite) ListMessages(ctx context.Context, sessionID string, limit, offset int) ([]Message, error) {
	if err := checkPage(limit, offset); err != nil {
		return nil, fmt.Errorf("persistence: list messages of %s: %w", sessionID, err)
	}
	cid, ok := canonicalID(sessionID)
	if !ok {
		return []Message{}, nil
	}
	out, err := s.queryMessages(ctx, `SELECT `+liteMessageCols+` FROM messages
		WHERE session_id = ? ORDER BY seq LIMIT ? OFFSET ?`, cid, limit, offset)
	if err != nil {
		return nil, fmt.Errorf("persistence: list messages of %s: %w", cid, err)
	}
	return out, nil
}

// ReserveSeqs hands the caller the next n event seqs of a session: it
// returns the block (from, to], where from is the highest seq stored or
// reserved before. Seqs in a block are never handed out again, even if the
// events that used them were never stored.
func (s *SQLite) ReserveSeqs(ctx context.Context, sessionID string, n int64) (from, to int64, err error) {
	if n < 1 {
		return 0, 0, fmt.Errorf("persistence: reserve seqs of %s: %w: n %d is below 1", sessionID, ErrInvalid, n)
	}
	cid, ok := canonicalID(sessionID)
	if !ok {
		return 0, 0, fmt.Errorf("persistence: reserve seqs of %q: %w", sessionID, ErrNotFound)
	}
	const q = `UPDATE chat_sessions SET seq_reserved = MAX(seq_reserved, last_seq) + ?
		WHERE id = ? RETURNING seq_reserved`
	if err := s.w.QueryRowContext(ctx, q, n, cid).Scan(&to); err != nil {
		return 0, 0, fmt.Errorf("persistence: reserve seqs of %s: %w", cid, liteErr(err))
	}
	return to - n, to, nil
}

// MessagesAfter returns, in seq order, at most limit messages of a session
// that end after afterSeq (a message whose events straddle afterSeq is
// included): what a subscriber resuming after afterSeq has missed.
func (s *SQLite) MessagesAfter(ctx context.Context, sessionID string, afterSeq int64, limit int) ([]Message, error) {
	if err := checkPage(limit, 0); err != nil {
		return nil, fmt.Errorf("persistence: messages of %s after %d: %w", sessionID, afterSeq, err)
	}
	cid, ok := canonicalID(sessionID)
	if !ok {
		return []Message{}, nil
	}
	out, err := s.queryMessages(ctx, `SELECT `+liteMessageCols+` FROM messages
		WHERE session_id = ? AND end_seq > ? ORDER BY seq LIMIT ?`, cid, afterSeq, limit)
	if err != nil {
		return nil, fmt.Errorf("persistence: messages of %s after %d: %w", cid, afterSeq, err)
	}
	return out, nil
}

// GetReply returns the assistant message of a turn (the latest, should a
// turn have several), or ErrNotFound.
func (s *SQLite) GetReply(ctx context.Context, sessionID, turnID string) (Message, error) {
	sid, ok1 := canonicalID(sessionID)
	tid, ok2 := canonicalID(turnID)
	if !ok1 || !ok2 {
		return Message{}, fmt.Errorf("persistence: get reply to %q in %q: %w", turnID, sessionID, ErrNotFound)
	}
	m, err := scanLiteMessage(s.r.QueryRowContext(ctx, `SELECT `+liteMessageCols+` FROM messages
		WHERE session_id = ? AND turn_id = ? AND role = 'assistant'
		ORDER BY seq DESC LIMIT 1`, sid, tid))
	if err != nil {
		return Message{}, fmt.Errorf("persistence: get reply to %s in %s: %w", tid, sid, liteErr(err))
	}
	return m, nil
}

const liteDossierCols = `project_id, user_id, snapshot_json, protection_json, version, created_at, updated_at`

func scanLiteDossier(sc rowScanner) (Dossier, error) {
	var d Dossier
	var snap, prot string
	err := sc.Scan(&d.ProjectID, &d.UserID, &snap, &prot, &d.Version, timeCol{t: &d.CreatedAt}, timeCol{t: &d.UpdatedAt})
	d.Snapshot = snapshotOut([]byte(snap))
	d.Protection = snapshotOut([]byte(prot))
	return d, err
}

const liteVersionCols = `project_id, version, snapshot_json, source, seq_from, seq_to, created_at`

func scanLiteVersion(sc rowScanner) (DossierVersion, error) {
	var v DossierVersion
	var snap string
	err := sc.Scan(&v.ProjectID, &v.Version, &snap, &v.Source, &v.SeqFrom, &v.SeqTo, timeCol{t: &v.CreatedAt})
	v.Snapshot = snapshotOut([]byte(snap))
	return v, err
}

func liteInsertVersion(ctx context.Context, tx *sql.Tx, v DossierVersion) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO dossier_versions
		(project_id, version, snapshot_json, source, seq_from, seq_to, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`,
		v.ProjectID, v.Version, string(v.Snapshot), v.Source, v.SeqFrom, v.SeqTo, liteTime(v.CreatedAt))
	return err
}

// GetDossier returns the current dossier of a project, or ErrNotFound.
func (s *SQLite) GetDossier(ctx context.Context, projectID string) (Dossier, error) {
	cid, ok := canonicalID(projectID)
	if !ok {
		return Dossier{}, fmt.Errorf("persistence: get dossier %q: %w", projectID, ErrNotFound)
	}
	d, err := scanLiteDossier(s.r.QueryRowContext(ctx, `SELECT `+liteDossierCols+` FROM dossiers WHERE project_id = ?`, cid))
	if err != nil {
		return Dossier{}, fmt.Errorf("persistence: get dossier %s: %w", cid, liteErr(err))
	}
	return d, nil
}

// CreateDossier stores version 1 of a project's dossier together with its
// dossier_versions row (source, seq range from src) in one transaction. The
// project must exist and belong to the dossier's user (ErrNotFound
// otherwise); an existing dossier is ErrConflict. A nil snapshot is the empty
// object; zero timestamps are set to now. The protection is always stored
// empty ("{}"); in.Protection is ignored (SaveDossier stores one).
func (s *SQLite) CreateDossier(ctx context.Context, in Dossier, src DossierVersion) (Dossier, error) {
	in.Protection = nil
	return s.createDossier(ctx, "create", in, src, nil)
}

// UpdateDossier replaces a dossier's snapshot if its version is still
// expectedVersion (compare-and-set), writing version expectedVersion+1 and
// its dossier_versions row (source, seq range from src) in one transaction.
// A stale expectedVersion is ErrConflict, an unknown dossier ErrNotFound.
// The dossier's protection is left as it is.
func (s *SQLite) UpdateDossier(ctx context.Context, projectID string, expectedVersion int, snapshot json.RawMessage, src DossierVersion) (Dossier, error) {
	return s.updateDossier(ctx, "update", projectID, expectedVersion, snapshot, nil, src, nil)
}

// SaveDossier writes a dossier's snapshot and protection together with a
// dossier_versions row (source, seq range from src) in one transaction.
// expectedVersion 0 creates version 1 as CreateDossier does (the project
// must exist and belong to d.UserID, else ErrNotFound; an existing dossier
// is ErrConflict). expectedVersion 1 and up replaces both if the dossier is
// still at that version, as UpdateDossier does (stale is ErrConflict,
// unknown ErrNotFound); d.UserID is not consulted then. A nil snapshot or
// protection is the empty object.
func (s *SQLite) SaveDossier(ctx context.Context, d Dossier, expectedVersion int, src DossierVersion) (Dossier, error) {
	return s.saveDossier(ctx, "save", d, expectedVersion, src, nil)
}

// SaveExtraction is SaveDossier and AdvanceDossierCursors of the dossier's
// project in one transaction: the version an extraction wrote and how far
// it read the sessions commit together, or neither does.
func (s *SQLite) SaveExtraction(ctx context.Context, d Dossier, expectedVersion int, src DossierVersion, extractedSeq map[string]int64) (Dossier, error) {
	_, cursors, err := prepareCursors(d.ProjectID, extractedSeq)
	if err != nil {
		return Dossier{}, fmt.Errorf("persistence: save extraction %s: %w", d.ProjectID, err)
	}
	return s.saveDossier(ctx, "save", d, expectedVersion, src, cursors)
}

func (s *SQLite) saveDossier(ctx context.Context, op string, d Dossier, expectedVersion int, src DossierVersion, cursors []cursorAdvance) (Dossier, error) {
	switch {
	case expectedVersion == 0:
		return s.createDossier(ctx, op, d, src, cursors)
	case expectedVersion < 0:
		return Dossier{}, fmt.Errorf("persistence: %s dossier %s: %w: expected version %d", op, d.ProjectID, ErrInvalid, expectedVersion)
	}
	prot, err := storeObject("protection", d.Protection)
	if err != nil {
		return Dossier{}, fmt.Errorf("persistence: %s dossier %s: %w", op, d.ProjectID, err)
	}
	return s.updateDossier(ctx, op, d.ProjectID, expectedVersion, d.Snapshot, &prot, src, cursors)
}

// createDossier is CreateDossier storing in.Protection and advancing
// cursors; op names the calling method in errors.
func (s *SQLite) createDossier(ctx context.Context, op string, in Dossier, src DossierVersion, cursors []cursorAdvance) (Dossier, error) {
	d, err := prepareDossier(in, s.cfg.timestamp())
	if err != nil {
		return Dossier{}, fmt.Errorf("persistence: %s dossier %s: %w", op, in.ProjectID, err)
	}
	v, err := prepareVersion(src, d.ProjectID, 1, d.Snapshot, d.CreatedAt)
	if err != nil {
		return Dossier{}, fmt.Errorf("persistence: %s dossier %s: %w", op, d.ProjectID, err)
	}
	err = s.withTx(ctx, func(tx *sql.Tx) error {
		var owner string
		err := tx.QueryRowContext(ctx, `SELECT user_id FROM projects WHERE id = ?`, d.ProjectID).Scan(&owner)
		if errors.Is(err, sql.ErrNoRows) || (err == nil && owner != d.UserID) {
			return fmt.Errorf("%w: project %s of user %s", ErrNotFound, d.ProjectID, d.UserID)
		}
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO dossiers
			(project_id, user_id, snapshot_json, protection_json, version, created_at, updated_at)
			VALUES (?, ?, ?, ?, 1, ?, ?)`,
			d.ProjectID, d.UserID, string(d.Snapshot), string(d.Protection), liteTime(d.CreatedAt), liteTime(d.UpdatedAt)); err != nil {
			return err
		}
		if err := liteInsertVersion(ctx, tx, v); err != nil {
			return err
		}
		return liteAdvanceCursors(ctx, tx, d.ProjectID, cursors, d.UpdatedAt)
	})
	if err != nil {
		return Dossier{}, fmt.Errorf("persistence: %s dossier %s: %w", op, d.ProjectID, liteErr(err))
	}
	return d, nil
}

// updateDossier is UpdateDossier that also replaces the protection when
// protection is not nil (a storeObject result) and advances cursors; op
// names the calling method in errors.
func (s *SQLite) updateDossier(ctx context.Context, op, projectID string, expectedVersion int, snapshot json.RawMessage, protection *string, src DossierVersion, cursors []cursorAdvance) (Dossier, error) {
	now := s.cfg.timestamp()
	cid, ok := canonicalID(projectID)
	if !ok {
		return Dossier{}, fmt.Errorf("persistence: %s dossier %q: %w", op, projectID, ErrNotFound)
	}
	if expectedVersion < 1 {
		return Dossier{}, fmt.Errorf("persistence: %s dossier %s: %w: expected version %d", op, cid, ErrInvalid, expectedVersion)
	}
	snap, err := storeObject("snapshot", snapshot)
	if err != nil {
		return Dossier{}, fmt.Errorf("persistence: %s dossier %s: %w", op, cid, err)
	}
	v, err := prepareVersion(src, cid, expectedVersion+1, json.RawMessage(snap), now)
	if err != nil {
		return Dossier{}, fmt.Errorf("persistence: %s dossier %s: %w", op, cid, err)
	}
	var protArg any // NULL keeps the stored protection
	if protection != nil {
		protArg = *protection
	}
	d := Dossier{ProjectID: cid, Snapshot: json.RawMessage(snap), Version: expectedVersion + 1, UpdatedAt: now}
	err = s.withTx(ctx, func(tx *sql.Tx) error {
		var prot string
		err := tx.QueryRowContext(ctx, `UPDATE dossiers SET snapshot_json = ?,
				protection_json = COALESCE(?, protection_json), version = version + 1, updated_at = ?
			WHERE project_id = ? AND version = ?
			RETURNING user_id, created_at, protection_json`,
			snap, protArg, liteTime(now), cid, expectedVersion).Scan(&d.UserID, timeCol{t: &d.CreatedAt}, &prot)
		if errors.Is(err, sql.ErrNoRows) {
			var current int
			switch err := tx.QueryRowContext(ctx, `SELECT version FROM dossiers WHERE project_id = ?`, cid).Scan(&current); {
			case errors.Is(err, sql.ErrNoRows):
				return ErrNotFound
			case err != nil:
				return err
			default:
				return fmt.Errorf("%w: dossier is at version %d, not %d", ErrConflict, current, expectedVersion)
			}
		}
		if err != nil {
			return err
		}
		d.Protection = snapshotOut([]byte(prot))
		if err := liteInsertVersion(ctx, tx, v); err != nil {
			return err
		}
		return liteAdvanceCursors(ctx, tx, cid, cursors, now)
	})
	if err != nil {
		return Dossier{}, fmt.Errorf("persistence: %s dossier %s: %w", op, cid, liteErr(err))
	}
	return d, nil
}

// ListDossierVersions returns every kept version of a project's dossier,
// oldest first. An unknown project has none.
func (s *SQLite) ListDossierVersions(ctx context.Context, projectID string) ([]DossierVersion, error) {
	out := []DossierVersion{}
	cid, ok := canonicalID(projectID)
	if !ok {
		return out, nil
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+liteVersionCols+` FROM dossier_versions
		WHERE project_id = ? ORDER BY version`, cid)
	if err != nil {
		return nil, fmt.Errorf("persistence: list dossier versions %s: %w", cid, liteErr(err))
	}
	defer rows.Close()
	for rows.Next() {
		v, err := scanLiteVersion(rows)
		if err != nil {
			return nil, fmt.Errorf("persistence: list dossier versions %s: %w", cid, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("persistence: list dossier versions %s: %w", cid, liteErr(err))
	}
	return out, nil
}

// GetDossierVersion returns one kept version of a project's dossier, or
// ErrNotFound.
func (s *SQLite) GetDossierVersion(ctx context.Context, projectID string, version int) (DossierVersion, error) {
	cid, ok := canonicalID(projectID)
	if !ok {
		return DossierVersion{}, fmt.Errorf("persistence: get dossier %q version %d: %w", projectID, version, ErrNotFound)
	}
	v, err := scanLiteVersion(s.r.QueryRowContext(ctx, `SELECT `+liteVersionCols+` FROM dossier_versions
		WHERE project_id = ? AND version = ?`, cid, version))
	if err != nil {
		return DossierVersion{}, fmt.Errorf("persistence: get dossier %s version %d: %w", cid, version, liteErr(err))
	}
	return v, nil
}

// ListDossiers returns a user's dossiers, most recently updated first.
func (s *SQLite) ListDossiers(ctx context.Context, userID string) ([]Dossier, error) {
	out := []Dossier{}
	cid, ok := canonicalID(userID)
	if !ok {
		return out, nil
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+liteDossierCols+` FROM dossiers
		WHERE user_id = ? ORDER BY updated_at DESC, project_id DESC`, cid)
	if err != nil {
		return nil, fmt.Errorf("persistence: list dossiers of %s: %w", cid, liteErr(err))
	}
	defer rows.Close()
	for rows.Next() {
		d, err := scanLiteDossier(rows)
		if err != nil {
			return nil, fmt.Errorf("persistence: list dossiers of %s: %w", cid, err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("persistence: list dossiers of %s: %w", cid, liteErr(err))
	}
	return out, nil
}

// liteSummaryCols computes a DossierSummary from dossiers d joined with
// projects p (see DossierSummary for the rules).
const liteSummaryCols = `d.project_id, d.user_id,
	CASE WHEN json_type(d.snapshot_json, '$.title') = 'text' AND json_extract(d.snapshot_json, '$.title') <> ''
		THEN json_extract(d.snapshot_json, '$.title') ELSE p.title END,
	CASE WHEN json_type(d.snapshot_json, '$.characters') = 'array'
		THEN json_array_length(d.snapshot_json, '$.characters') ELSE 0 END,
	CASE WHEN json_type(d.snapshot_json, '$.themes') = 'array'
		THEN json_array_length(d.snapshot_json, '$.themes') ELSE 0 END,
	d.version, d.created_at, d.updated_at`

func scanLiteSummary(sc rowScanner) (DossierSummary, error) {
	var d DossierSummary
	err := sc.Scan(&d.ProjectID, &d.UserID, &d.Title, &d.CharacterCount, &d.ThemeCount, &d.Version,
		timeCol{t: &d.CreatedAt}, timeCol{t: &d.UpdatedAt})
	return d, err
}

// ListDossierSummaries returns a summary of each of a user's dossiers (title,
// character and theme counts), most recently updated first, in the order of
// ListDossiers.
func (s *SQLite) ListDossierSummaries(ctx context.Context, userID string) ([]DossierSummary, error) {
	cid, ok := canonicalID(userID)
	if !ok {
		return []DossierSummary{}, nil
	}
	out, err := liteCollect(ctx, s.r, scanLiteSummary, `SELECT `+liteSummaryCols+`
		FROM dossiers d JOIN projects p ON p.id = d.project_id
		WHERE d.user_id = ? ORDER BY d.updated_at DESC, d.project_id DESC`, cid)
	if err != nil {
		return nil, fmt.Errorf("persistence: list dossier summaries of %s: %w", cid, err)
	}
	return out, nil
}

// DeleteDossier deletes a project's dossier and all its versions, or returns
// ErrNotFound.
func (s *SQLite) DeleteDossier(ctx context.Context, projectID string) error {
	cid, ok := canonicalID(projectID)
	if !ok {
		return fmt.Errorf("persistence: delete dossier %q: %w", projectID, ErrNotFound)
	}
	res, err := s.w.ExecContext(ctx, `DELETE FROM dossiers WHERE project_id = ?`, cid)
	if err != nil {
		return fmt.Errorf("persistence: delete dossier %s: %w", cid, liteErr(err))
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("persistence: delete dossier %s: %w", cid, err)
	} else if n == 0 {
		return fmt.Errorf("persistence: delete dossier %s: %w", cid, ErrNotFound)
	}
	return nil
}

// liteAdvanceCursors raises the cursors of a project's sessions inside tx;
// a session that is not the project's is ErrNotFound.
func liteAdvanceCursors(ctx context.Context, tx *sql.Tx, projectID string, cursors []cursorAdvance, now time.Time) error {
	for _, c := range cursors {
		res, err := tx.ExecContext(ctx, `INSERT INTO dossier_cursors (project_id, session_id, extracted_seq, updated_at)
			SELECT project_id, id, ?, ? FROM chat_sessions WHERE id = ? AND project_id = ?
			ON CONFLICT (project_id, session_id) DO UPDATE SET
				extracted_seq = MAX(dossier_cursors.extracted_seq, excluded.extracted_seq),
				updated_at = excluded.updated_at`,
			c.seq, liteTime(now), c.sessionID, projectID)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return fmt.Errorf("%w: session %s of project %s", ErrNotFound, c.sessionID, projectID)
		}
	}
	return nil
}

// AdvanceDossierCursors records how far a project's dossier extraction has
// read its sessions (session id → extracted seq). A cursor only moves
// forward: a seq below the stored one leaves it. A session that does not
// exist or belongs to another project is ErrNotFound (and nothing is
// written), a negative seq ErrInvalid. All cursors are written in one
// transaction.
func (s *SQLite) AdvanceDossierCursors(ctx context.Context, projectID string, extractedSeq map[string]int64) error {
	pid, cursors, err := prepareCursors(projectID, extractedSeq)
	if err != nil {
		return fmt.Errorf("persistence: advance dossier cursors of %s: %w", projectID, err)
	}
	if len(cursors) == 0 {
		return nil
	}
	now := s.cfg.timestamp()
	if err := s.withTx(ctx, func(tx *sql.Tx) error { return liteAdvanceCursors(ctx, tx, pid, cursors, now) }); err != nil {
		return fmt.Errorf("persistence: advance dossier cursors of %s: %w", pid, liteErr(err))
	}
	return nil
}

// DossierCursors returns the extraction cursors of a project's sessions,
// ordered by session id. A session without one has none in the list.
func (s *SQLite) DossierCursors(ctx context.Context, projectID string) ([]DossierCursor, error) {
	cid, ok := canonicalID(projectID)
	if !ok {
		return []DossierCursor{}, nil
	}
	out, err := liteCollect(ctx, s.r, func(sc rowScanner) (DossierCursor, error) {
		var c DossierCursor
		err := sc.Scan(&c.ProjectID, &c.SessionID, &c.ExtractedSeq, timeCol{t: &c.UpdatedAt})
		return c, err
	}, `SELECT project_id, session_id, extracted_seq, updated_at FROM dossier_cursors
		WHERE project_id = ? ORDER BY session_id`, cid)
	if err != nil {
		return nil, fmt.Errorf("persistence: dossier cursors of %s: %w", cid, err)
	}
	return out, nil
}

// litePendingTurns selects the oldest un-extracted user messages of a
// project (see PendingTurns), oldest first, each with its latest reply.
const litePendingTurns = `SELECT u.session_id, u.id, u.seq, u.content, u.created_at,
		COALESCE(r.content, ''), COALESCE(r.end_seq, u.end_seq), COALESCE(r.status, '')
	FROM projects p
	JOIN chat_sessions s ON s.project_id = p.id AND s.user_id = p.user_id AND s.is_active = 1
	LEFT JOIN dossier_cursors c ON c.project_id = p.id AND c.session_id = s.id
	JOIN messages u ON u.session_id = s.id AND u.role = 'user' AND u.seq > COALESCE(c.extracted_seq, 0)
	LEFT JOIN messages r ON r.id = (SELECT x.id FROM messages x
		WHERE x.session_id = u.session_id AND x.turn_id = u.id AND x.role = 'assistant'
		ORDER BY x.seq DESC LIMIT 1)
	WHERE p.id = ?
	ORDER BY u.created_at, u.session_id, u.seq
	LIMIT ?`

// PendingTurns returns the turns of a project that its dossier extraction
// has not read: the user messages after their session's cursor, each with
// its latest reply (whatever its status), oldest first. Only active
// sessions owned by the project's owner count (a deleted session's turns are
// not read again). At most the oldest limit turns are returned (the caller
// reads the rest once it has extracted those); limit must be at least 1.
// An unknown project has none.
func (s *SQLite) PendingTurns(ctx context.Context, projectID string, limit int) ([]PendingTurn, error) {
	if err := checkPage(limit, 0); err != nil {
		return nil, fmt.Errorf("persistence: pending turns of %s: %w", projectID, err)
	}
	cid, ok := canonicalID(projectID)
	if !ok {
		return []PendingTurn{}, nil
	}
	out, err := liteCollect(ctx, s.r, func(sc rowScanner) (PendingTurn, error) {
		var t PendingTurn
		err := sc.Scan(&t.SessionID, &t.UserMessageID, &t.SeqFrom, &t.User, timeCol{t: &t.CreatedAt},
			&t.Assistant, &t.SeqTo, &t.ReplyStatus)
		return t, err
	}, litePendingTurns, cid, limit)
	if err != nil {
		return nil, fmt.Errorf("persistence: pending turns of %s: %w", cid, err)
	}
	return out, nil
}

// liteProjectsWithPendingTurns is pgProjectsWithPendingTurns for SQLite.
const liteProjectsWithPendingTurns = `SELECT DISTINCT s.project_id
	FROM chat_sessions s
	JOIN projects p ON p.id = s.project_id AND p.user_id = s.user_id
	LEFT JOIN dossier_cursors c ON c.project_id = s.project_id AND c.session_id = s.id
	WHERE s.is_active = 1 AND s.last_seq > COALESCE(c.extracted_seq, 0)
		AND EXISTS (SELECT 1 FROM messages u
			WHERE u.session_id = s.id AND u.role = 'user' AND u.seq > COALESCE(c.extracted_seq, 0))
	LIMIT ?`

// ProjectsWithPendingTurns returns up to limit projects that have turns
// their dossier extraction has not read (PendingTurns would return some),
// so a starting server can wake their dossier actors. limit must be at
// least 1.
func (s *SQLite) ProjectsWithPendingTurns(ctx context.Context, limit int) ([]string, error) {
	if err := checkPage(limit, 0); err != nil {
		return nil, fmt.Errorf("persistence: projects with pending turns: %w", err)
	}
	out, err := liteCollect(ctx, s.r, func(sc rowScanner) (string, error) {
		var id string
		return id, sc.Scan(&id)
	}, liteProjectsWithPendingTurns, limit)
	if err != nil {
		return nil, fmt.Errorf("persistence: projects with pending turns: %w", err)
	}
	return out, nil
}
