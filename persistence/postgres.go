package persistence

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/storyd/storyd/migrations"
)

// Postgres is the production store: PostgreSQL (Supabase included) through
// a pgx connection pool. It is safe for concurrent use. Its method set is the
// same as SQLite's.
type Postgres struct {
	pool *pgxpool.Pool
	cfg  config
}

// OpenPostgres connects to the database at url (a postgres:// URL or a
// keyword/value string; pool settings such as pool_max_conns go in it) and
// pings it; ctx bounds the whole attempt (pgx sets no connect timeout of its
// own unless the URL has connect_timeout). Errors never contain the
// password. It does not migrate; call Migrate.
//
// Behind a transaction-mode pooler such as PgBouncer (Supabase's port 6543),
// add default_query_exec_mode=simple_protocol to the URL: the default
// caches prepared statements per connection.
func OpenPostgres(ctx context.Context, url string, opts ...Option) (*Postgres, error) {
	pcfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// The parser's message quotes the URL, redacted only on a best-effort
		// basis when the URL is malformed: say nothing about it.
		return nil, errors.New("persistence: open postgres: cannot parse the database URL")
	}
	password := pcfg.ConnConfig.Password
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, redact(fmt.Errorf("persistence: open postgres: %w", err), password)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, redact(fmt.Errorf("persistence: open postgres: %w", err), password)
	}
	return &Postgres{pool: pool, cfg: newConfig(opts)}, nil
}

// redact returns err, or when its text contains password, an error with the
// same text but the password masked (and no chain to the original).
func redact(err error, password string) error {
	if password == "" || !strings.Contains(err.Error(), password) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), password, "xxxxx"))
}

// Kind returns "postgres".
func (s *Postgres) Kind() string { return "postgres" }

// Ping checks that the database answers.
func (s *Postgres) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("persistence: ping postgres: %w", err)
	}
	return nil
}

// Close closes the pool, waiting for connections in use to be returned. It
// always returns nil; the error is there to match SQLite and io.Closer.
func (s *Postgres) Close() error {
	s.pool.Close()
	return nil
}

// migrator returns a goose provider over the pool and the database/sql
// handle to close after use (closing it leaves the pool open).
func (s *Postgres) migrator(locked bool) (*goose.Provider, func() error, error) {
	db := stdlib.OpenDBFromPool(s.pool)
	var opts []goose.ProviderOption
	if locked {
		// A session advisory lock makes nodes that start together apply each
		// migration once. A waiting node retries every second for up to
		// five minutes.
		locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 300))
		if err != nil {
			return nil, nil, errors.Join(err, db.Close())
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	p, err := newMigrator(goose.DialectPostgres, db, migrations.Postgres(), opts...)
	if err != nil {
		return nil, nil, errors.Join(err, db.Close())
	}
	return p, db.Close, nil
}

// Migrate applies every pending migration of migrations.Postgres under a
// session advisory lock, and returns how many it applied (0 when the schema
// is current).
func (s *Postgres) Migrate(ctx context.Context) (applied int, err error) {
	p, closeDB, err := s.migrator(true)
	if err != nil {
		return 0, fmt.Errorf("persistence: migrate postgres: %w", err)
	}
	defer func() {
		if cerr := closeDB(); cerr != nil && err == nil {
			err = fmt.Errorf("persistence: migrate postgres: %w", cerr)
		}
	}()
	n, err := migrateUp(ctx, p)
	if err != nil {
		return n, fmt.Errorf("persistence: migrate postgres: %w", err)
	}
	return n, nil
}

// PendingMigrations returns how many migrations Migrate would apply.
func (s *Postgres) PendingMigrations(ctx context.Context) (pending int, err error) {
	p, closeDB, err := s.migrator(false)
	if err != nil {
		return 0, fmt.Errorf("persistence: pending migrations postgres: %w", err)
	}
	defer func() {
		if cerr := closeDB(); cerr != nil && err == nil {
			err = fmt.Errorf("persistence: pending migrations postgres: %w", cerr)
		}
	}()
	n, err := countPending(ctx, p)
	if err != nil {
		return 0, fmt.Errorf("persistence: pending migrations postgres: %w", err)
	}
	return n, nil
}

// pgErr maps PostgreSQL errors to the package's sentinels. The constraint or
// message is kept for the log, but not the driver's type.
func pgErr(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		detail := pe.ConstraintName
		if detail == "" {
			detail = pe.Message
		}
		switch pe.Code {
		case "23505": // unique_violation
			return fmt.Errorf("%w: %s", ErrConflict, detail)
		case "23503": // foreign_key_violation
			return fmt.Errorf("%w: %s", ErrNotFound, detail)
		case "23514", "23502", "22P02", "22P05", "22021", "22001", "22003": // check, not null, bad input
			return fmt.Errorf("%w: %s", ErrInvalid, detail)
		}
	}
	return err
}

func isPGUnique(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

// pgNull stores "" as NULL.
func pgNull(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

const pgUserCols = `id::text, email, display_name, avatar_url, is_anonymous, COALESCE(migrated_to::text, ''), created_at, updated_at`

func scanPGUser(row pgx.Row) (User, error) {
	var u User
	err := row.Scan(&u.ID, &u.Email, &u.DisplayName, &u.AvatarURL, &u.IsAnonymous, &u.MigratedTo, &u.CreatedAt, &u.UpdatedAt)
	u.CreatedAt, u.UpdatedAt = u.CreatedAt.UTC(), u.UpdatedAt.UTC()
	return u, err
}

// EnsureUser inserts in unless a user with its ID exists, and returns the
// stored row; it never changes an existing user. The ID must be a UUID
// (ErrInvalid otherwise); zero timestamps are set to now.
func (s *Postgres) EnsureUser(ctx context.Context, in User) (User, error) {
	u, err := prepareUser(in, s.cfg.timestamp())
	if err != nil {
		return User{}, fmt.Errorf("persistence: ensure user %s: %w", in.ID, err)
	}
	stored, err := scanPGUser(s.pool.QueryRow(ctx, `INSERT INTO users
		(id, email, display_name, avatar_url, is_anonymous, migrated_to, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT (id) DO NOTHING
		RETURNING `+pgUserCols,
		u.ID, u.Email, u.DisplayName, u.AvatarURL, u.IsAnonymous, pgNull(u.MigratedTo), u.CreatedAt, u.UpdatedAt))
	if errors.Is(err, pgx.ErrNoRows) {
		// The user existed, or a concurrent insert of it committed while
		// this one waited. A new statement sees it either way.
		stored, err = scanPGUser(s.pool.QueryRow(ctx, `SELECT `+pgUserCols+` FROM users WHERE id = $1`, u.ID))
	}
	if err != nil {
		return User{}, fmt.Errorf("persistence: ensure user %s: %w", u.ID, pgErr(err))
	}
	return stored, nil
}

// GetUser returns the user with the given id, or ErrNotFound.
func (s *Postgres) GetUser(ctx context.Context, id string) (User, error) {
	cid, ok := canonicalID(id)
	if !ok {
		return User{}, fmt.Errorf("persistence: get user %q: %w", id, ErrNotFound)
	}
	u, err := scanPGUser(s.pool.QueryRow(ctx, `SELECT `+pgUserCols+` FROM users WHERE id = $1`, cid))
	if err != nil {
		return User{}, fmt.Errorf("persistence: get user %s: %w", cid, pgErr(err))
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
func (s *Postgres) UpsertUser(ctx context.Context, in User) (User, error) {
	now := s.cfg.timestamp()
	u, err := prepareUpsert(in, now)
	if err != nil {
		return User{}, fmt.Errorf("persistence: upsert user %s: %w", in.ID, err)
	}
	// DO UPDATE ... WHERE false returns no row: the user exists and there is
	// nothing to change, or it is migrated. A new statement reads it.
	stored, err := scanPGUser(s.pool.QueryRow(ctx, `INSERT INTO users
		(id, email, display_name, avatar_url, is_anonymous, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (id) DO UPDATE SET
			email = COALESCE(NULLIF(EXCLUDED.email, ''), users.email),
			display_name = COALESCE(NULLIF(EXCLUDED.display_name, ''), users.display_name),
			avatar_url = COALESCE(NULLIF(EXCLUDED.avatar_url, ''), users.avatar_url),
			is_anonymous = users.is_anonymous AND EXCLUDED.is_anonymous,
			updated_at = $8
		WHERE users.migrated_to IS NULL AND (
			(EXCLUDED.email <> '' AND EXCLUDED.email <> users.email) OR
			(EXCLUDED.display_name <> '' AND EXCLUDED.display_name <> users.display_name) OR
			(EXCLUDED.avatar_url <> '' AND EXCLUDED.avatar_url <> users.avatar_url) OR
			(users.is_anonymous AND NOT EXCLUDED.is_anonymous))
		RETURNING `+pgUserCols,
		u.ID, u.Email, u.DisplayName, u.AvatarURL, u.IsAnonymous, u.CreatedAt, u.UpdatedAt, now))
	if errors.Is(err, pgx.ErrNoRows) {
		stored, err = scanPGUser(s.pool.QueryRow(ctx, `SELECT `+pgUserCols+` FROM users WHERE id = $1`, u.ID))
		if err == nil && stored.MigratedTo != "" {
			err = fmt.Errorf("%w: user %s migrated to %s", ErrConflict, u.ID, stored.MigratedTo)
		}
	}
	if err != nil {
		return User{}, fmt.Errorf("persistence: upsert user %s: %w", u.ID, pgErr(err))
	}
	return stored, nil
}

// ClaimUser records the holder of a verified access token for user id: the
// row is created as a registered user, or becomes one. A token proves the
// id, so a row that an anonymous client created under it (or migrated away)
// is taken over: it is marked registered and its migrated_to is cleared.
// email is stored only where the row has none (a profile edit wins).
func (s *Postgres) ClaimUser(ctx context.Context, id, email string) (User, error) {
	cid, ok := canonicalID(id)
	if !ok {
		return User{}, fmt.Errorf("persistence: claim user %q: %w", id, ErrInvalid)
	}
	now := s.cfg.timestamp()
	q := `INSERT INTO users
		(id, email, display_name, avatar_url, is_anonymous, created_at, updated_at)
		VALUES ($1, $2, '', '', false, $3, $3)
		ON CONFLICT (id) DO UPDATE SET
			is_anonymous = false,
			migrated_to = NULL,
			email = CASE WHEN users.email = '' THEN EXCLUDED.email ELSE users.email END,
			updated_at = CASE WHEN users.is_anonymous OR users.migrated_to IS NOT NULL OR (users.email = '' AND EXCLUDED.email <> '')
				THEN EXCLUDED.updated_at ELSE users.updated_at END
		RETURNING ` + pgUserCols
	u, err := scanPGUser(s.pool.QueryRow(ctx, q, cid, email, now))
	if err != nil {
		return User{}, fmt.Errorf("persistence: claim user %s: %w", cid, pgErr(err))
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
func (s *Postgres) MigrateUser(ctx context.Context, tempUserID, permanentUserID string) (MigrationResult, error) {
	from, to, err := migrationIDs(tempUserID, permanentUserID)
	if err != nil {
		return MigrationResult{}, fmt.Errorf("persistence: migrate user %s to %s: %w", tempUserID, permanentUserID, err)
	}
	now := s.cfg.timestamp()
	var res MigrationResult
	err = pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{}, func(tx pgx.Tx) error {
		// Lock both users in id order, so that migrations between the same
		// two users in opposite directions cannot deadlock. A concurrent
		// migration of the same user waits here, then reads the winner's
		// migrated_to.
		locked, err := pgCollect(ctx, tx, scanPGUser, `SELECT `+pgUserCols+` FROM users
			WHERE id IN ($1, $2) ORDER BY id FOR UPDATE`, from, to)
		if err != nil {
			return err
		}
		i := slices.IndexFunc(locked, func(u User) bool { return u.ID == from })
		if i < 0 {
			return fmt.Errorf("%w: user %s", ErrNotFound, from)
		}
		if err := checkMigratable(from, locked[i].IsAnonymous, locked[i].MigratedTo); err != nil {
			return err
		}
		var permMigratedTo string
		if err := tx.QueryRow(ctx, `INSERT INTO users (id, is_anonymous, created_at, updated_at)
			VALUES ($1, false, $2, $2)
			ON CONFLICT (id) DO UPDATE SET
				is_anonymous = false,
				updated_at = CASE WHEN users.is_anonymous THEN EXCLUDED.updated_at ELSE users.updated_at END
			RETURNING COALESCE(migrated_to::text, '')`, to, now).Scan(&permMigratedTo); err != nil {
			return err
		}
		if permMigratedTo != "" {
			return fmt.Errorf("%w: permanent user %s migrated to %s", ErrConflict, to, permMigratedTo)
		}
		for _, move := range []struct {
			sql string
			n   *int
		}{
			{`UPDATE chat_sessions SET user_id = $1 WHERE user_id = $2`, &res.Sessions},
			{`UPDATE projects SET user_id = $1 WHERE user_id = $2`, &res.Projects},
			{`UPDATE dossiers SET user_id = $1 WHERE user_id = $2`, &res.Dossiers},
		} {
			tag, err := tx.Exec(ctx, move.sql, to, from)
			if err != nil {
				return err
			}
			*move.n = int(tag.RowsAffected())
		}
		_, err = tx.Exec(ctx, `UPDATE users SET migrated_to = $1, updated_at = $2 WHERE id = $3`, to, now, from)
		return err
	})
	if err != nil {
		return MigrationResult{}, fmt.Errorf("persistence: migrate user %s to %s: %w", from, to, pgErr(err))
	}
	return res, nil
}

const pgProjectCols = `id::text, user_id::text, title, created_at, updated_at`

func scanPGProject(row pgx.Row) (Project, error) {
	var p Project
	err := row.Scan(&p.ID, &p.UserID, &p.Title, &p.CreatedAt, &p.UpdatedAt)
	p.CreatedAt, p.UpdatedAt = p.CreatedAt.UTC(), p.UpdatedAt.UTC()
	return p, err
}

// CreateProject stores a new project and returns it. An empty ID is
// generated; zero timestamps are set to now. It returns ErrConflict when the
// ID is taken and ErrNotFound when the user does not exist.
func (s *Postgres) CreateProject(ctx context.Context, in Project) (Project, error) {
	p, err := prepareProject(in, s.cfg.timestamp())
	if err != nil {
		return Project{}, fmt.Errorf("persistence: create project %s: %w", in.ID, err)
	}
	if _, err := s.pool.Exec(ctx, `INSERT INTO projects (id, user_id, title, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5)`, p.ID, p.UserID, p.Title, p.CreatedAt, p.UpdatedAt); err != nil {
		return Project{}, fmt.Errorf("persistence: create project %s: %w", p.ID, pgErr(err))
	}
	return p, nil
}

// GetProject returns the project with the given id, or ErrNotFound.
func (s *Postgres) GetProject(ctx context.Context, id string) (Project, error) {
	cid, ok := canonicalID(id)
	if !ok {
		return Project{}, fmt.Errorf("persistence: get project %q: %w", id, ErrNotFound)
	}
	p, err := scanPGProject(s.pool.QueryRow(ctx, `SELECT `+pgProjectCols+` FROM projects WHERE id = $1`, cid))
	if err != nil {
		return Project{}, fmt.Errorf("persistence: get project %s: %w", cid, pgErr(err))
	}
	return p, nil
}

const pgSessionCols = `id::text, user_id::text, project_id::text, title, is_active, message_count, last_message_at,
	last_seq, created_at, updated_at`

func scanPGSession(row pgx.Row) (Session, error) {
	var x Session
	err := row.Scan(&x.ID, &x.UserID, &x.ProjectID, &x.Title, &x.IsActive, &x.MessageCount, &x.LastMessageAt,
		&x.LastSeq, &x.CreatedAt, &x.UpdatedAt)
	x.LastMessageAt = utcPtr(x.LastMessageAt)
	x.CreatedAt, x.UpdatedAt = x.CreatedAt.UTC(), x.UpdatedAt.UTC()
	return x, err
}

// CreateSession stores a new, active session with no messages and returns
// it. An empty ID is generated; zero timestamps are set to now. The project
// must exist and belong to the session's user (ErrNotFound otherwise); a
// taken ID is ErrConflict.
func (s *Postgres) CreateSession(ctx context.Context, in Session) (Session, error) {
	sess, err := prepareSession(in, s.cfg.timestamp())
	if err != nil {
		return Session{}, fmt.Errorf("persistence: create session %s: %w", in.ID, err)
	}
	// Inserting through a SELECT of the project checks its owner in the
	// same statement; no row inserted means no such project of this user.
	tag, err := s.pool.Exec(ctx, `INSERT INTO chat_sessions
		(id, user_id, project_id, title, is_active, message_count, last_message_at, last_seq, created_at, updated_at)
		SELECT $1::uuid, p.user_id, p.id, $4::text, true, 0, NULL, 0, $5::timestamptz, $6::timestamptz
		FROM projects p WHERE p.id = $3 AND p.user_id = $2`,
		sess.ID, sess.UserID, sess.ProjectID, sess.Title, sess.CreatedAt, sess.UpdatedAt)
	if err != nil {
		return Session{}, fmt.Errorf("persistence: create session %s: %w", sess.ID, pgErr(err))
	}
	if tag.RowsAffected() == 0 {
		return Session{}, fmt.Errorf("persistence: create session %s: %w: project %s of user %s",
			sess.ID, ErrNotFound, sess.ProjectID, sess.UserID)
	}
	return sess, nil
}

// GetSession returns the session with the given id, active or not, or
// ErrNotFound.
func (s *Postgres) GetSession(ctx context.Context, id string) (Session, error) {
	cid, ok := canonicalID(id)
	if !ok {
		return Session{}, fmt.Errorf("persistence: get session %q: %w", id, ErrNotFound)
	}
	x, err := scanPGSession(s.pool.QueryRow(ctx, `SELECT `+pgSessionCols+` FROM chat_sessions WHERE id = $1`, cid))
	if err != nil {
		return Session{}, fmt.Errorf("persistence: get session %s: %w", cid, pgErr(err))
	}
	return x, nil
}

// pgListSessions selects a user's active sessions, newest first: by the
// last message's time, or the creation time of a session without messages,
// then by updated_at and id so that the order is total.
const pgListSessions = `SELECT ` + pgSessionCols + ` FROM chat_sessions
	WHERE user_id = $1 AND is_active
	ORDER BY COALESCE(last_message_at, created_at) DESC, updated_at DESC, id DESC`

// ListSessions returns every active session of a user, newest first: by
// LastMessageAt, or CreatedAt for a session without messages (then by
// UpdatedAt). Deactivated sessions are left out.
func (s *Postgres) ListSessions(ctx context.Context, userID string) ([]Session, error) {
	cid, ok := canonicalID(userID)
	if !ok {
		return []Session{}, nil
	}
	out, err := pgCollect(ctx, s.pool, scanPGSession, pgListSessions, cid)
	if err != nil {
		return nil, fmt.Errorf("persistence: list sessions of %s: %w", cid, err)
	}
	return out, nil
}

// ListSessionsPage returns one page of ListSessions: at most limit sessions
// after skipping offset. limit must be at least 1 and offset not negative
// (ErrInvalid otherwise).
func (s *Postgres) ListSessionsPage(ctx context.Context, userID string, limit, offset int) ([]Session, error) {
	if err := checkPage(limit, offset); err != nil {
		return nil, fmt.Errorf("persistence: list sessions of %s: %w", userID, err)
	}
	cid, ok := canonicalID(userID)
	if !ok {
		return []Session{}, nil
	}
	out, err := pgCollect(ctx, s.pool, scanPGSession, pgListSessions+` LIMIT $2 OFFSET $3`, cid, limit, offset)
	if err != nil {
		return nil, fmt.Errorf("persistence: list sessions of %s: %w", cid, err)
	}
	return out, nil
}

// DeactivateSession marks a session inactive (the seed's delete): it leaves
// ListSessions but keeps its messages. Deactivating an inactive session is a
// no-op; an unknown one is ErrNotFound.
func (s *Postgres) DeactivateSession(ctx context.Context, id string) error {
	cid, ok := canonicalID(id)
	if !ok {
		return fmt.Errorf("persistence: deactivate session %q: %w", id, ErrNotFound)
	}
	tag, err := s.pool.Exec(ctx, `UPDATE chat_sessions SET is_active = false, updated_at = $1 WHERE id = $2`,
		s.cfg.timestamp(), cid)
	if err != nil {
		return fmt.Errorf("persistence: deactivate session %s: %w", cid, pgErr(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("persistence: deactivate session %s: %w", cid, ErrNotFound)
	}
	return nil
}

const pgMessageCols = `id::text, session_id::text, seq, end_seq, COALESCE(turn_id::text, ''), role, content,
	metadata, status, COALESCE(client_message_id, ''), created_at, updated_at`

func scanPGMessage(row pgx.Row) (Message, error) {
	var m Message
	var meta []byte
	err := row.Scan(&m.ID, &m.SessionID, &m.Seq, &m.EndSeq, &m.TurnID, &m.Role, &m.Content, &meta, &m.Status,
		&m.ClientMessageID, &m.CreatedAt, &m.UpdatedAt)
	m.Metadata = metadataOut(meta)
	m.CreatedAt, m.UpdatedAt = m.CreatedAt.UTC(), m.UpdatedAt.UTC()
	return m, err
}

// pgCollect runs a query and scans every row with scan; an empty result is
// an empty, non-nil slice.
func pgCollect[T any](ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, scan func(pgx.Row) (T, error), sql string, args ...any) ([]T, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, pgErr(err)
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, pgErr(err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, pgErr(err)
	}
	return out, nil
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
func (s *Postgres) AppendMessage(ctx context.Context, in Message) (stored Message, created bool, err error) {
	now := s.cfg.timestamp()
	m, meta, err := prepareMessage(in, now)
	if err != nil {
		return Message{}, false, fmt.Errorf("persistence: append message %s: %w", in.ID, err)
	}
	// One statement stores the message and updates the session's counters
	// (a data-modifying WITH commits as one). A client_message_id already
	// stored in the session inserts nothing (ON CONFLICT on its unique
	// index, after waiting for a racing identical retry to commit); only
	// then does a second statement read the stored message.
	var inserted int
	err = s.pool.QueryRow(ctx, `WITH ins AS (
			INSERT INTO messages
			(id, session_id, seq, end_seq, turn_id, role, content, metadata, status, client_message_id, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
			ON CONFLICT (session_id, client_message_id) WHERE client_message_id IS NOT NULL DO NOTHING
			RETURNING session_id
		), upd AS (
			UPDATE chat_sessions SET
			message_count = message_count + 1,
			last_message_at = $11,
			last_seq = GREATEST(last_seq, $4),
			title = CASE WHEN title = '' THEN $13 ELSE title END,
			updated_at = $14
			WHERE id IN (SELECT session_id FROM ins)
		)
		SELECT count(*) FROM ins`,
		m.ID, m.SessionID, m.Seq, m.EndSeq, pgNull(m.TurnID), m.Role, m.Content, meta, m.Status,
		pgNull(m.ClientMessageID), m.CreatedAt, m.UpdatedAt, sessionTitleFrom(m), now).Scan(&inserted)
	if err != nil {
		return Message{}, false, fmt.Errorf("persistence: append message %s: %w", m.ID, pgErr(err))
	}
	if inserted == 0 {
		got, err := s.messageByClientID(ctx, s.pool, m.SessionID, m.ClientMessageID)
		if err != nil {
			return Message{}, false, fmt.Errorf("persistence: append message %s: read the stored retry: %w", m.ID, pgErr(err))
		}
		return got, false, nil
	}
	return m, true, nil
}

func (s *Postgres) messageByClientID(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, sessionID, clientID string) (Message, error) {
	return scanPGMessage(q.QueryRow(ctx, `SELECT `+pgMessageCols+` FROM messages
		WHERE session_id = $1 AND client_message_id = $2`, sessionID, clientID))
}

// RecentMessages returns the newest limit messages of a session in ascending
// seq order: the context window a session actor loads. An unknown session
// has no messages; limit must be at least 1.
func (s *Postgres) RecentMessages(ctx context.Context, sessionID string, limit int) ([]Message, error) {
	if err := checkPage(limit, 0); err != nil {
		return nil, fmt.Errorf("persistence: recent messages of %s: %w", sessionID, err)
	}
	cid, ok := canonicalID(sessionID)
	if !ok {
		return []Message{}, nil
	}
	out, err := pgCollect(ctx, s.pool, scanPGMessage, `SELECT `+pgMessageCols+` FROM (
			SELECT * FROM messages WHERE session_id = $1 ORDER BY seq DESC LIMIT $2
		) recent ORDER BY seq`, cid, limit)
	if err != nil {
		return nil, fmt.Errorf("persistence: recent messages of %s: %w", cid, err)
	}
	return out, nil
}

// ListMessages returns a page of a session's messages in ascending seq
// order. An unknown session has no messages; limit must be at least 1 and
// offset not negative.
func (s *Postgres) ListMessages(ctx context.Context, sessionID string, limit, offset int) ([]Message, error) {
	if err := checkPage(limit, offset); err != nil {
		return nil, fmt.Errorf("persistence: list messages of %s: %w", sessionID, err)
	}
	cid, ok := canonicalID(sessionID)
	if !ok {
		return []Message{}, nil
	}
	out, err := pgCollect(ctx, s.pool, scanPGMessage, `SELECT `+pgMessageCols+` FROM messages
		WHERE session_id = $1 ORDER BY seq LIMIT $2 OFFSET $3`, cid, limit, offset)
	if err != nil {
		return nil, fmt.Errorf("persistence: list messages of %s: %w", cid, err)
	}
	return out, nil
}

// ReserveSeqs hands the caller the next n event seqs of a session: it
// returns the block (from, to], where from is the highest seq stored or
// reserved before. Seqs in a block are never handed out again, even if the
// events that used them were never stored.
func (s *Postgres) ReserveSeqs(ctx context.Context, sessionID string, n int64) (from, to int64, err error) {
	if n < 1 {
		return 0, 0, fmt.Errorf("persistence: reserve seqs of %s: %w: n %d is below 1", sessionID, ErrInvalid, n)
	}
	cid, ok := canonicalID(sessionID)
	if !ok {
		return 0, 0, fmt.Errorf("persistence: reserve seqs of %q: %w", sessionID, ErrNotFound)
	}
	const q = `UPDATE chat_sessions SET seq_reserved = GREATEST(seq_reserved, last_seq) + $1
		WHERE id = $2 RETURNING seq_reserved`
	if err := s.pool.QueryRow(ctx, q, n, cid).Scan(&to); err != nil {
		return 0, 0, fmt.Errorf("persistence: reserve seqs of %s: %w", cid, pgErr(err))
	}
	return to - n, to, nil
}

// MessagesAfter returns, in seq order, at most limit messages of a session
// that end after afterSeq (a message whose events straddle afterSeq is
// included): what a subscriber resuming after afterSeq has missed.
func (s *Postgres) MessagesAfter(ctx context.Context, sessionID string, afterSeq int64, limit int) ([]Message, error) {
	if err := checkPage(limit, 0); err != nil {
		return nil, fmt.Errorf("persistence: messages of %s after %d: %w", sessionID, afterSeq, err)
	}
	cid, ok := canonicalID(sessionID)
	if !ok {
		return []Message{}, nil
	}
	out, err := pgCollect(ctx, s.pool, scanPGMessage, `SELECT `+pgMessageCols+` FROM messages
		WHERE session_id = $1 AND end_seq > $2 ORDER BY seq LIMIT $3`, cid, afterSeq, limit)
	if err != nil {
		return nil, fmt.Errorf("persistence: messages of %s after %d: %w", cid, afterSeq, err)
	}
	return out, nil
}

// GetReply returns the assistant message of a turn (the latest, should a
// turn have several), or ErrNotFound.
func (s *Postgres) GetReply(ctx context.Context, sessionID, turnID string) (Message, error) {
	sid, ok1 := canonicalID(sessionID)
	tid, ok2 := canonicalID(turnID)
	if !ok1 || !ok2 {
		return Message{}, fmt.Errorf("persistence: get reply to %q in %q: %w", turnID, sessionID, ErrNotFound)
	}
	m, err := scanPGMessage(s.pool.QueryRow(ctx, `SELECT `+pgMessageCols+` FROM messages
		WHERE session_id = $1 AND turn_id = $2 AND role = 'assistant'
		ORDER BY seq DESC LIMIT 1`, sid, tid))
	if err != nil {
		return Message{}, fmt.Errorf("persistence: get reply to %s in %s: %w", tid, sid, pgErr(err))
	}
	return m, nil
}

const pgDossierCols = `project_id::text, user_id::text, snapshot_json, protection_json, version, created_at, updated_at`

func scanPGDossier(row pgx.Row) (Dossier, error) {
	var d Dossier
	var snap, prot []byte
	err := row.Scan(&d.ProjectID, &d.UserID, &snap, &prot, &d.Version, &d.CreatedAt, &d.UpdatedAt)
	d.Snapshot = snapshotOut(snap)
	d.Protection = snapshotOut(prot)
	d.CreatedAt, d.UpdatedAt = d.CreatedAt.UTC(), d.UpdatedAt.UTC()
	return d, err
}

const pgVersionCols = `project_id::text, version, snapshot_json, source, seq_from, seq_to, created_at`

func scanPGVersion(row pgx.Row) (DossierVersion, error) {
	var v DossierVersion
	var snap []byte
	err := row.Scan(&v.ProjectID, &v.Version, &snap, &v.Source, &v.SeqFrom, &v.SeqTo, &v.CreatedAt)
	v.Snapshot = snapshotOut(snap)
	v.CreatedAt = v.CreatedAt.UTC()
	return v, err
}

func pgInsertVersion(ctx context.Context, tx pgx.Tx, v DossierVersion) error {
	_, err := tx.Exec(ctx, `INSERT INTO dossier_versions
		(project_id, version, snapshot_json, source, seq_from, seq_to, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		v.ProjectID, v.Version, string(v.Snapshot), v.Source, v.SeqFrom, v.SeqTo, v.CreatedAt)
	return err
}

// GetDossier returns the current dossier of a project, or ErrNotFound.
func (s *Postgres) GetDossier(ctx context.Context, projectID string) (Dossier, error) {
	cid, ok := canonicalID(projectID)
	if !ok {
		return Dossier{}, fmt.Errorf("persistence: get dossier %q: %w", projectID, ErrNotFound)
	}
	d, err := scanPGDossier(s.pool.QueryRow(ctx, `SELECT `+pgDossierCols+` FROM dossiers WHERE project_id = $1`, cid))
	if err != nil {
		return Dossier{}, fmt.Errorf("persistence: get dossier %s: %w", cid, pgErr(err))
	}
	return d, nil
}

// CreateDossier stores version 1 of a project's dossier together with its
// dossier_versions row (source, seq range from src) in one transaction. The
// project must exist and belong to the dossier's user (ErrNotFound
// otherwise); an existing dossier is ErrConflict. A nil snapshot is the empty
// object; zero timestamps are set to now. The protection is always stored
// empty ("{}"); in.Protection is ignored (SaveDossier stores one).
func (s *Postgres) CreateDossier(ctx context.Context, in Dossier, src DossierVersion) (Dossier, error) {
	in.Protection = nil
	return s.createDossier(ctx, "create", in, src, nil)
}

// UpdateDossier replaces a dossier's snapshot if its version is still
// expectedVersion (compare-and-set), writing version expectedVersion+1 and
// its dossier_versions row (source, seq range from src) in one transaction.
// A stale expectedVersion is ErrConflict, an unknown dossier ErrNotFound.
// The dossier's protection is left as it is.
func (s *Postgres) UpdateDossier(ctx context.Context, projectID string, expectedVersion int, snapshot json.RawMessage, src DossierVersion) (Dossier, error) {
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
func (s *Postgres) SaveDossier(ctx context.Context, d Dossier, expectedVersion int, src DossierVersion) (Dossier, error) {
	return s.saveDossier(ctx, d, expectedVersion, src, nil)
}

// SaveExtraction is SaveDossier and AdvanceDossierCursors of the dossier's
// project in one transaction: the version an extraction wrote and how far
// it read the sessions commit together, or neither does.
func (s *Postgres) SaveExtraction(ctx context.Context, d Dossier, expectedVersion int, src DossierVersion, extractedSeq map[string]int64) (Dossier, error) {
	_, cursors, err := prepareCursors(d.ProjectID, extractedSeq)
	if err != nil {
		return Dossier{}, fmt.Errorf("persistence: save extraction %s: %w", d.ProjectID, err)
	}
	return s.saveDossier(ctx, d, expectedVersion, src, cursors)
}

func (s *Postgres) saveDossier(ctx context.Context, d Dossier, expectedVersion int, src DossierVersion, cursors []cursorAdvance) (Dossier, error) {
	switch {
	case expectedVersion == 0:
		return s.createDossier(ctx, "save", d, src, cursors)
	case expectedVersion < 0:
		return Dossier{}, fmt.Errorf("persistence: save dossier %s: %w: expected version %d", d.ProjectID, ErrInvalid, expectedVersion)
	}
	prot, err := storeObject("protection", d.Protection)
	if err != nil {
		return Dossier{}, fmt.Errorf("persistence: save dossier %s: %w", d.ProjectID, err)
	}
	return s.updateDossier(ctx, "save", d.ProjectID, expectedVersion, d.Snapshot, &prot, src, cursors)
}

// createDossier is CreateDossier storing in.Protection and advancing
// cursors; op names the calling method in errors.
func (s *Postgres) createDossier(ctx context.Context, op string, in Dossier, src DossierVersion, cursors []cursorAdvance) (Dossier, error) {
	d, err := prepareDossier(in, s.cfg.timestamp())
	if err != nil {
		return Dossier{}, fmt.Errorf("persistence: %s dossier %s: %w", op, in.ProjectID, err)
	}
	v, err := prepareVersion(src, d.ProjectID, 1, d.Snapshot, d.CreatedAt)
	if err != nil {
		return Dossier{}, fmt.Errorf("persistence: %s dossier %s: %w", op, d.ProjectID, err)
	}
	err = pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{}, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO dossiers (project_id, user_id, snapshot_json, protection_json, version, created_at, updated_at)
			SELECT p.id, p.user_id, $3::jsonb, $4::jsonb, 1, $5::timestamptz, $6::timestamptz FROM projects p WHERE p.id = $1 AND p.user_id = $2`,
			d.ProjectID, d.UserID, string(d.Snapshot), string(d.Protection), d.CreatedAt, d.UpdatedAt)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("%w: project %s of user %s", ErrNotFound, d.ProjectID, d.UserID)
		}
		if err := pgInsertVersion(ctx, tx, v); err != nil {
			return err
		}
		return pgAdvanceCursors(ctx, tx, d.ProjectID, cursors, d.UpdatedAt)
	})
	if err != nil {
		return Dossier{}, fmt.Errorf("persistence: %s dossier %s: %w", op, d.ProjectID, pgErr(err))
	}
	return d, nil
}

// updateDossier is UpdateDossier that also replaces the protection when
// protection is not nil (a storeObject result) and advances cursors; op
// names the calling method in errors.
func (s *Postgres) updateDossier(ctx context.Context, op, projectID string, expectedVersion int, snapshot json.RawMessage, protection *string, src DossierVersion, cursors []cursorAdvance) (Dossier, error) {
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
	d := Dossier{ProjectID: cid, Snapshot: json.RawMessage(snap), Version: expectedVersion + 1, UpdatedAt: now}
	err = pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{}, func(tx pgx.Tx) error {
		// Under READ COMMITTED a concurrent writer of the same row makes this
		// statement wait, then re-check the version against the new row: of
		// two updates from the same version exactly one matches.
		var prot []byte
		err := tx.QueryRow(ctx, `UPDATE dossiers SET snapshot_json = $1,
				protection_json = COALESCE($5::jsonb, protection_json), version = version + 1, updated_at = $2
			WHERE project_id = $3 AND version = $4
			RETURNING user_id::text, created_at, protection_json`,
			snap, now, cid, expectedVersion, protection).Scan(&d.UserID, &d.CreatedAt, &prot)
		if errors.Is(err, pgx.ErrNoRows) {
			var current int
			switch err := tx.QueryRow(ctx, `SELECT version FROM dossiers WHERE project_id = $1`, cid).Scan(&current); {
			case errors.Is(err, pgx.ErrNoRows):
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
		d.CreatedAt = d.CreatedAt.UTC()
		d.Protection = snapshotOut(prot)
		if err := pgInsertVersion(ctx, tx, v); err != nil {
			return err
		}
		return pgAdvanceCursors(ctx, tx, cid, cursors, now)
	})
	if err != nil {
		return Dossier{}, fmt.Errorf("persistence: %s dossier %s: %w", op, cid, pgErr(err))
	}
	return d, nil
}

// ListDossierVersions returns every kept version of a project's dossier,
// oldest first. An unknown project has none.
func (s *Postgres) ListDossierVersions(ctx context.Context, projectID string) ([]DossierVersion, error) {
	cid, ok := canonicalID(projectID)
	if !ok {
		return []DossierVersion{}, nil
	}
	out, err := pgCollect(ctx, s.pool, scanPGVersion, `SELECT `+pgVersionCols+` FROM dossier_versions
		WHERE project_id = $1 ORDER BY version`, cid)
	if err != nil {
		return nil, fmt.Errorf("persistence: list dossier versions %s: %w", cid, err)
	}
	return out, nil
}

// GetDossierVersion returns one kept version of a project's dossier, or
// ErrNotFound.
func (s *Postgres) GetDossierVersion(ctx context.Context, projectID string, version int) (DossierVersion, error) {
	cid, ok := canonicalID(projectID)
	if !ok {
		return DossierVersion{}, fmt.Errorf("persistence: get dossier %q version %d: %w", projectID, version, ErrNotFound)
	}
	v, err := scanPGVersion(s.pool.QueryRow(ctx, `SELECT `+pgVersionCols+` FROM dossier_versions
		WHERE project_id = $1 AND version = $2`, cid, version))
	if err != nil {
		return DossierVersion{}, fmt.Errorf("persistence: get dossier %s version %d: %w", cid, version, pgErr(err))
	}
	return v, nil
}

// ListDossiers returns a user's dossiers, most recently updated first.
func (s *Postgres) ListDossiers(ctx context.Context, userID string) ([]Dossier, error) {
	cid, ok := canonicalID(userID)
	if !ok {
		return []Dossier{}, nil
	}
	out, err := pgCollect(ctx, s.pool, scanPGDossier, `SELECT `+pgDossierCols+` FROM dossiers
		WHERE user_id = $1 ORDER BY updated_at DESC, project_id DESC`, cid)
	if err != nil {
		return nil, fmt.Errorf("persistence: list dossiers of %s: %w", cid, err)
	}
	return out, nil
}

// pgSummaryCols computes a DossierSummary from dossiers d joined with
// projects p (see DossierSummary for the rules).
const pgSummaryCols = `d.project_id::text, d.user_id::text,
	CASE WHEN jsonb_typeof(d.snapshot_json -> 'title') = 'string' AND d.snapshot_json ->> 'title' <> ''
		THEN d.snapshot_json ->> 'title' ELSE p.title END,
	CASE WHEN jsonb_typeof(d.snapshot_json -> 'characters') = 'array'
		THEN jsonb_array_length(d.snapshot_json -> 'characters') ELSE 0 END,
	CASE WHEN jsonb_typeof(d.snapshot_json -> 'themes') = 'array'
		THEN jsonb_array_length(d.snapshot_json -> 'themes') ELSE 0 END,
	d.version, d.created_at, d.updated_at`

func scanPGSummary(row pgx.Row) (DossierSummary, error) {
	var d DossierSummary
	err := row.Scan(&d.ProjectID, &d.UserID, &d.Title, &d.CharacterCount, &d.ThemeCount, &d.Version,
		&d.CreatedAt, &d.UpdatedAt)
	d.CreatedAt, d.UpdatedAt = d.CreatedAt.UTC(), d.UpdatedAt.UTC()
	return d, err
}

// ListDossierSummaries returns a summary of each of a user's dossiers (title,
// character and theme counts), most recently updated first, in the order of
// ListDossiers.
func (s *Postgres) ListDossierSummaries(ctx context.Context, userID string) ([]DossierSummary, error) {
	cid, ok := canonicalID(userID)
	if !ok {
		return []DossierSummary{}, nil
	}
	out, err := pgCollect(ctx, s.pool, scanPGSummary, `SELECT `+pgSummaryCols+`
		FROM dossiers d JOIN projects p ON p.id = d.project_id
		WHERE d.user_id = $1 ORDER BY d.updated_at DESC, d.project_id DESC`, cid)
	if err != nil {
		return nil, fmt.Errorf("persistence: list dossier summaries of %s: %w", cid, err)
	}
	return out, nil
}

// DeleteDossier deletes a project's dossier and all its versions, or returns
// ErrNotFound.
func (s *Postgres) DeleteDossier(ctx context.Context, projectID string) error {
	cid, ok := canonicalID(projectID)
	if !ok {
		return fmt.Errorf("persistence: delete dossier %q: %w", projectID, ErrNotFound)
	}
	tag, err := s.pool.Exec(ctx, `DELETE FROM dossiers WHERE project_id = $1`, cid)
	if err != nil {
		return fmt.Errorf("persistence: delete dossier %s: %w", cid, pgErr(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("persistence: delete dossier %s: %w", cid, ErrNotFound)
	}
	return nil
}

// pgAdvanceCursors raises the cursors of a project's sessions inside tx; a
// session that is not the project's is ErrNotFound.
func pgAdvanceCursors(ctx context.Context, tx pgx.Tx, projectID string, cursors []cursorAdvance, now time.Time) error {
	for _, c := range cursors {
		tag, err := tx.Exec(ctx, `INSERT INTO dossier_cursors (project_id, session_id, extracted_seq, updated_at)
			SELECT project_id, id, $1::bigint, $2::timestamptz FROM chat_sessions WHERE id = $3 AND project_id = $4
			ON CONFLICT (project_id, session_id) DO UPDATE SET
				extracted_seq = GREATEST(dossier_cursors.extracted_seq, EXCLUDED.extracted_seq),
				updated_at = EXCLUDED.updated_at`,
			c.seq, now, c.sessionID, projectID)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
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
// transaction, locking rows in session id order.
func (s *Postgres) AdvanceDossierCursors(ctx context.Context, projectID string, extractedSeq map[string]int64) error {
	pid, cursors, err := prepareCursors(projectID, extractedSeq)
	if err != nil {
		return fmt.Errorf("persistence: advance dossier cursors of %s: %w", projectID, err)
	}
	if len(cursors) == 0 {
		return nil
	}
	now := s.cfg.timestamp()
	err = pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{}, func(tx pgx.Tx) error {
		return pgAdvanceCursors(ctx, tx, pid, cursors, now)
	})
	if err != nil {
		return fmt.Errorf("persistence: advance dossier cursors of %s: %w", pid, pgErr(err))
	}
	return nil
}

// DossierCursors returns the extraction cursors of a project's sessions,
// ordered by session id. A session without one has none in the list.
func (s *Postgres) DossierCursors(ctx context.Context, projectID string) ([]DossierCursor, error) {
	cid, ok := canonicalID(projectID)
	if !ok {
		return []DossierCursor{}, nil
	}
	out, err := pgCollect(ctx, s.pool, func(row pgx.Row) (DossierCursor, error) {
		var c DossierCursor
		err := row.Scan(&c.ProjectID, &c.SessionID, &c.ExtractedSeq, &c.UpdatedAt)
		c.UpdatedAt = c.UpdatedAt.UTC()
		return c, err
	}, `SELECT project_id::text, session_id::text, extracted_seq, updated_at FROM dossier_cursors
		WHERE project_id = $1 ORDER BY session_id`, cid)
	if err != nil {
		return nil, fmt.Errorf("persistence: dossier cursors of %s: %w", cid, err)
	}
	return out, nil
}

// pgPendingTurns selects the oldest un-extracted user messages of a
// project (see PendingTurns), oldest first, each with its latest reply.
const pgPendingTurns = `SELECT u.session_id::text, u.id::text, u.seq, u.content, u.created_at,
		COALESCE(r.content, ''), COALESCE(r.end_seq, u.end_seq), COALESCE(r.status, '')
	FROM projects p
	JOIN chat_sessions s ON s.project_id = p.id AND s.user_id = p.user_id AND s.is_active
	LEFT JOIN dossier_cursors c ON c.project_id = p.id AND c.session_id = s.id
	JOIN messages u ON u.session_id = s.id AND u.role = 'user' AND u.seq > COALESCE(c.extracted_seq, 0)
	LEFT JOIN messages r ON r.id = (SELECT x.id FROM messages x
		WHERE x.session_id = u.session_id AND x.turn_id = u.id AND x.role = 'assistant'
		ORDER BY x.seq DESC LIMIT 1)
	WHERE p.id = $1
	ORDER BY u.created_at, u.session_id, u.seq
	LIMIT $2`

// PendingTurns returns the turns of a project that its dossier extraction
// has not read: the user messages after their session's cursor, each with
// its latest reply (whatever its status), oldest first. Only active
// sessions owned by the project's owner count (a deleted session's turns are
// not read again). At most the oldest limit turns are returned (the caller
// reads the rest once it has extracted those); limit must be at least 1.
// An unknown project has none.
func (s *Postgres) PendingTurns(ctx context.Context, projectID string, limit int) ([]PendingTurn, error) {
	if err := checkPage(limit, 0); err != nil {
		return nil, fmt.Errorf("persistence: pending turns of %s: %w", projectID, err)
	}
	cid, ok := canonicalID(projectID)
	if !ok {
		return []PendingTurn{}, nil
	}
	out, err := pgCollect(ctx, s.pool, func(row pgx.Row) (PendingTurn, error) {
		var t PendingTurn
		err := row.Scan(&t.SessionID, &t.UserMessageID, &t.SeqFrom, &t.User, &t.CreatedAt,
			&t.Assistant, &t.SeqTo, &t.ReplyStatus)
		t.CreatedAt = t.CreatedAt.UTC()
		return t, err
	}, pgPendingTurns, cid, limit)
	if err != nil {
		return nil, fmt.Errorf("persistence: pending turns of %s: %w", cid, err)
	}
	return out, nil
}

// pgProjectsWithPendingTurns selects projects with a user message after its
// session's extraction cursor (the cheap last_seq test first).
const pgProjectsWithPendingTurns = `SELECT DISTINCT s.project_id::text
	FROM chat_sessions s
	JOIN projects p ON p.id = s.project_id AND p.user_id = s.user_id
	LEFT JOIN dossier_cursors c ON c.project_id = s.project_id AND c.session_id = s.id
	WHERE s.is_active AND s.last_seq > COALESCE(c.extracted_seq, 0)
		AND EXISTS (SELECT 1 FROM messages u
			WHERE u.session_id = s.id AND u.role = 'user' AND u.seq > COALESCE(c.extracted_seq, 0))
	LIMIT $1`

// ProjectsWithPendingTurns returns up to limit projects that have turns
// their dossier extraction has not read (PendingTurns would return some),
// so a starting server can wake their dossier actors. limit must be at
// least 1.
func (s *Postgres) ProjectsWithPendingTurns(ctx context.Context, limit int) ([]string, error) {
	if err := checkPage(limit, 0); err != nil {
		return nil, fmt.Errorf("persistence: projects with pending turns: %w", err)
	}
	out, err := pgCollect(ctx, s.pool, func(row pgx.Row) (string, error) {
		var id string
		return id, row.Scan(&id)
	}, pgProjectsWithPendingTurns, limit)
	if err != nil {
		return nil, fmt.Errorf("persistence: projects with pending turns: %w", err)
	}
	return out, nil
}
