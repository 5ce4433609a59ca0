package persistence_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/storyd/storyd/migrations"
	"github.com/storyd/storyd/persistence"
)

// store is the method set both stores implement; the contract suite runs
// against it.
type store interface {
	Kind() string
	Migrate(ctx context.Context) (int, error)
	PendingMigrations(ctx context.Context) (int, error)
	Ping(ctx context.Context) error
	Close() error

	EnsureUser(ctx context.Context, u persistence.User) (persistence.User, error)
	UpsertUser(ctx context.Context, u persistence.User) (persistence.User, error)
	ClaimUser(ctx context.Context, id, email string) (persistence.User, error)
	GetUser(ctx context.Context, id string) (persistence.User, error)
	MigrateUser(ctx context.Context, tempUserID, permanentUserID string) (persistence.MigrationResult, error)
	CreateProject(ctx context.Context, p persistence.Project) (persistence.Project, error)
	GetProject(ctx context.Context, id string) (persistence.Project, error)
	CreateSession(ctx context.Context, s persistence.Session) (persistence.Session, error)
	GetSession(ctx context.Context, id string) (persistence.Session, error)
	ListSessions(ctx context.Context, userID string) ([]persistence.Session, error)
	ListSessionsPage(ctx context.Context, userID string, limit, offset int) ([]persistence.Session, error)
	DeactivateSession(ctx context.Context, id string) error

	AppendMessage(ctx context.Context, m persistence.Message) (persistence.Message, bool, error)
	RecentMessages(ctx context.Context, sessionID string, limit int) ([]persistence.Message, error)
	ListMessages(ctx context.Context, sessionID string, limit, offset int) ([]persistence.Message, error)
	GetReply(ctx context.Context, sessionID, turnID string) (persistence.Message, error)
	MessagesAfter(ctx context.Context, sessionID string, afterSeq int64, limit int) ([]persistence.Message, error)
	ReserveSeqs(ctx context.Context, sessionID string, n int64) (from, to int64, err error)

	GetDossier(ctx context.Context, projectID string) (persistence.Dossier, error)
	CreateDossier(ctx context.Context, d persistence.Dossier, src persistence.DossierVersion) (persistence.Dossier, error)
	UpdateDossier(ctx context.Context, projectID string, expectedVersion int, snapshot json.RawMessage, src persistence.DossierVersion) (persistence.Dossier, error)
	SaveDossier(ctx context.Context, d persistence.Dossier, expectedVersion int, src persistence.DossierVersion) (persistence.Dossier, error)
	ListDossierVersions(ctx context.Context, projectID string) ([]persistence.DossierVersion, error)
	GetDossierVersion(ctx context.Context, projectID string, version int) (persistence.DossierVersion, error)
	ListDossiers(ctx context.Context, userID string) ([]persistence.Dossier, error)
	ListDossierSummaries(ctx context.Context, userID string) ([]persistence.DossierSummary, error)
	DeleteDossier(ctx context.Context, projectID string) error

	SaveExtraction(ctx context.Context, d persistence.Dossier, expectedVersion int, src persistence.DossierVersion, extractedSeq map[string]int64) (persistence.Dossier, error)
	AdvanceDossierCursors(ctx context.Context, projectID string, extractedSeq map[string]int64) error
	DossierCursors(ctx context.Context, projectID string) ([]persistence.DossierCursor, error)
	PendingTurns(ctx context.Context, projectID string, limit int) ([]persistence.PendingTurn, error)
	ProjectsWithPendingTurns(ctx context.Context, limit int) ([]string, error)
}

var (
	_ store = (*persistence.Postgres)(nil)
	_ store = (*persistence.SQLite)(nil)
)

// opener opens a fresh, empty (unmigrated) store that is closed when t ends.
type opener func(t *testing.T, opts ...persistence.Option) store

// runContract runs the contract suite; every case gets its own database.
func runContract(t *testing.T, open opener) {
	cases := []struct {
		name string
		run  func(t *testing.T, open opener)
	}{
		{"Migrate", testMigrate},
		{"MigrateConcurrently", testMigrateConcurrently},
		{"Users", testUsers},
		{"Projects", testProjects},
		{"Sessions", testSessions},
		{"AppendIdempotent", testAppendIdempotent},
		{"AppendConcurrentRetries", testAppendConcurrentRetries},
		{"AppendConcurrentSessions", testAppendConcurrentSessions},
		{"AppendErrors", testAppendErrors},
		{"SessionCounters", testSessionCounters},
		{"RecentMessages", testRecentMessages},
		{"ListMessages", testListMessages},
		{"MessagesAfter", testMessagesAfter},
		{"ReserveSeqs", testReserveSeqs},
		{"GetReply", testGetReply},
		{"ListSessions", testListSessions},
		{"Metadata", testMetadata},
		{"Dossier", testDossier},
		{"DossierConcurrentUpdates", testDossierConcurrentUpdates},
		{"SaveDossier", testSaveDossier},
		{"UpsertUser", testUpsertUser},
		{"ClaimUser", testClaimUser},
		{"MigrateUser", testMigrateUser},
		{"MigrateUserErrors", testMigrateUserErrors},
		{"MigrateUserAtomic", testMigrateUserAtomic},
		{"MigrateUserConcurrently", testMigrateUserConcurrently},
		{"ListSessionsPage", testListSessionsPage},
		{"DossierSummaries", testDossierSummaries},
		{"DossierCursors", testDossierCursors},
		{"PendingTurns", testPendingTurns},
		{"ProjectsWithPendingTurns", testProjectsWithPendingTurns},
		{"SaveExtraction", testSaveExtraction},
		{"DossierCursorsBackfill", testDossierCursorsBackfill},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.run(t, open)
		})
	}
}

// clock is a fake clock: every reading is one millisecond after the last,
// so timestamps are distinct and ordered without sleeping.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock {
	return &clock{now: time.Date(2025, 3, 1, 12, 0, 0, 123456000, time.UTC)}
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(time.Millisecond)
	return c.now
}

// fixture is a migrated store with one user, project and session.
type fixture struct {
	s       store
	clock   *clock
	user    persistence.User
	project persistence.Project
	session persistence.Session
}

func migrated(t *testing.T, open opener) (store, *clock) {
	t.Helper()
	c := newClock()
	s := open(t, persistence.WithClock(c.Now))
	if _, err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return s, c
}

func newFixture(t *testing.T, open opener) *fixture {
	t.Helper()
	s, c := migrated(t, open)
	f := &fixture{s: s, clock: c}
	f.user = mustUser(t, s)
	f.project = mustProject(t, s, f.user.ID)
	f.session = mustSession(t, s, f.user.ID, f.project.ID)
	return f
}

func mustUser(t *testing.T, s store) persistence.User {
	t.Helper()
	u, err := s.EnsureUser(t.Context(), persistence.User{ID: uuid.NewString(), IsAnonymous: true})
	if err != nil {
		t.Fatalf("EnsureUser: %v", err)
	}
	return u
}

func mustProject(t *testing.T, s store, userID string) persistence.Project {
	t.Helper()
	p, err := s.CreateProject(t.Context(), persistence.Project{UserID: userID, Title: "A story"})
	if err != nil {
		t.Fatalf("CreateProject: %v", err)
	}
	return p
}

func mustSession(t *testing.T, s store, userID, projectID string) persistence.Session {
	t.Helper()
	x, err := s.CreateSession(t.Context(), persistence.Session{UserID: userID, ProjectID: projectID})
	if err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	return x
}

// appendN appends n user messages with seqs 1..n and returns them.
func appendN(t *testing.T, s store, sessionID string, n int) []persistence.Message {
	t.Helper()
	var out []persistence.Message
	for i := 1; i <= n; i++ {
		m, created, err := s.AppendMessage(t.Context(), persistence.Message{
			SessionID: sessionID, Seq: int64(i), Role: persistence.RoleUser, Content: fmt.Sprintf("message %d", i),
		})
		if err != nil || !created {
			t.Fatalf("AppendMessage %d: created=%v err=%v", i, created, err)
		}
		out = append(out, m)
	}
	return out
}

func seqs(ms []persistence.Message) []int64 {
	out := []int64{}
	for _, m := range ms {
		out = append(out, m.Seq)
	}
	return out
}

func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: got error %v, want %v", what, err, target)
	}
}

func wantEqual(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

func wantUTC(t *testing.T, what string, ts ...time.Time) {
	t.Helper()
	for _, x := range ts {
		if x.IsZero() || x.Location() != time.UTC {
			t.Errorf("%s: time %v is zero or not UTC", what, x)
		}
	}
}

func testMigrate(t *testing.T, open opener) {
	ctx := t.Context()
	s := open(t)
	files, err := fs.Glob(migrations.SQLite(), "*.sql")
	if err != nil || len(files) == 0 {
		t.Fatalf("migration files: %v %v", files, err)
	}
	pending, err := s.PendingMigrations(ctx)
	if err != nil || pending != len(files) {
		t.Fatalf("PendingMigrations before = %d, %v; want %d", pending, err, len(files))
	}
	applied, err := s.Migrate(ctx)
	if err != nil || applied != len(files) {
		t.Fatalf("first Migrate = %d, %v; want %d", applied, err, len(files))
	}
	applied, err = s.Migrate(ctx)
	if err != nil || applied != 0 {
		t.Fatalf("second Migrate = %d, %v; want 0", applied, err)
	}
	if pending, err := s.PendingMigrations(ctx); err != nil || pending != 0 {
		t.Fatalf("PendingMigrations after = %d, %v; want 0", pending, err)
	}
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if k := s.Kind(); k != "postgres" && k != "sqlite" {
		t.Fatalf("Kind = %q", k)
	}
}

// testMigrateConcurrently starts two migrations of a fresh database at once,
// as two nodes starting together would: each file is applied exactly once.
func testMigrateConcurrently(t *testing.T, open opener) {
	s := open(t)
	files, _ := fs.Glob(migrations.SQLite(), "*.sql")
	var wg sync.WaitGroup
	applied := make([]int, 2)
	errs := make([]error, 2)
	for i := range 2 {
		wg.Go(func() { applied[i], errs[i] = s.Migrate(t.Context()) })
	}
	wg.Wait()
	if errs[0] != nil || errs[1] != nil || applied[0]+applied[1] != len(files) {
		t.Fatalf("concurrent Migrate = %v, %v; want %d applied in total", applied, errs, len(files))
	}
}

func testUsers(t *testing.T, open opener) {
	ctx := t.Context()
	s, _ := migrated(t, open)
	id := uuid.New()
	in := persistence.User{
		ID: strings.ToUpper(id.String()), Email: "ada@example.com", DisplayName: "Ada",
		AvatarURL: "https://example.com/a.png",
	}
	u, err := s.EnsureUser(ctx, in)
	if err != nil {
		t.Fatalf("EnsureUser: %v", err)
	}
	if u.ID != id.String() || u.Email != in.Email || u.DisplayName != in.DisplayName ||
		u.AvatarURL != in.AvatarURL || u.IsAnonymous || u.MigratedTo != "" {
		t.Errorf("EnsureUser returned %+v for %+v", u, in)
	}
	wantUTC(t, "user times", u.CreatedAt, u.UpdatedAt)

	again, err := s.EnsureUser(ctx, persistence.User{ID: id.String(), Email: "other@example.com", IsAnonymous: true})
	if err != nil {
		t.Fatalf("EnsureUser again: %v", err)
	}
	wantEqual(t, "EnsureUser of an existing user", again, u)
	got, err := s.GetUser(ctx, id.String())
	if err != nil {
		t.Fatalf("GetUser: %v", err)
	}
	wantEqual(t, "GetUser", got, u)

	_, err = s.GetUser(ctx, uuid.NewString())
	wantErr(t, "GetUser unknown", err, persistence.ErrNotFound)
	_, err = s.GetUser(ctx, "not-a-uuid")
	wantErr(t, "GetUser malformed", err, persistence.ErrNotFound)
	_, err = s.EnsureUser(ctx, persistence.User{ID: "not-a-uuid"})
	wantErr(t, "EnsureUser malformed", err, persistence.ErrInvalid)
	_, err = s.EnsureUser(ctx, persistence.User{})
	wantErr(t, "EnsureUser without id", err, persistence.ErrInvalid)
	_, err = s.EnsureUser(ctx, persistence.User{ID: uuid.NewString(), DisplayName: "a\x00b"})
	wantErr(t, "EnsureUser with NUL", err, persistence.ErrInvalid)

	// A user can record where its data moved.
	moved, err := s.EnsureUser(ctx, persistence.User{ID: uuid.NewString(), IsAnonymous: true, MigratedTo: u.ID})
	if err != nil || moved.MigratedTo != u.ID || !moved.IsAnonymous {
		t.Errorf("EnsureUser with MigratedTo = %+v, %v", moved, err)
	}
}

func testProjects(t *testing.T, open opener) {
	ctx := t.Context()
	s, _ := migrated(t, open)
	u := mustUser(t, s)
	p, err := s.CreateProject(ctx, persistence.Project{UserID: u.ID, Title: "Noir"})
	if err != nil {
		t.Fatalf("CreateProject: %v", err)
	}
	if _, err := uuid.Parse(p.ID); err != nil || p.UserID != u.ID || p.Title != "Noir" {
		t.Errorf("CreateProject returned %+v", p)
	}
	wantUTC(t, "project times", p.CreatedAt, p.UpdatedAt)
	got, err := s.GetProject(ctx, p.ID)
	if err != nil {
		t.Fatalf("GetProject: %v", err)
	}
	wantEqual(t, "GetProject", got, p)

	_, err = s.CreateProject(ctx, persistence.Project{ID: p.ID, UserID: u.ID})
	wantErr(t, "CreateProject duplicate", err, persistence.ErrConflict)
	_, err = s.CreateProject(ctx, persistence.Project{UserID: uuid.NewString()})
	wantErr(t, "CreateProject unknown user", err, persistence.ErrNotFound)
	_, err = s.CreateProject(ctx, persistence.Project{ID: "nope", UserID: u.ID})
	wantErr(t, "CreateProject malformed id", err, persistence.ErrInvalid)
	_, err = s.GetProject(ctx, uuid.NewString())
	wantErr(t, "GetProject unknown", err, persistence.ErrNotFound)
}

func testSessions(t *testing.T, open opener) {
	ctx := t.Context()
	s, _ := migrated(t, open)
	u := mustUser(t, s)
	p := mustProject(t, s, u.ID)
	id := uuid.NewString()
	x, err := s.CreateSession(ctx, persistence.Session{
		ID: id, UserID: u.ID, ProjectID: p.ID, Title: "First",
		IsActive: false, MessageCount: 7, LastSeq: 9, // ignored: a new session is empty
	})
	if err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	if x.ID != id || x.UserID != u.ID || x.ProjectID != p.ID || x.Title != "First" ||
		!x.IsActive || x.MessageCount != 0 || x.LastSeq != 0 || x.LastMessageAt != nil {
		t.Errorf("CreateSession returned %+v", x)
	}
	wantUTC(t, "session times", x.CreatedAt, x.UpdatedAt)
	got, err := s.GetSession(ctx, id)
	if err != nil {
		t.Fatalf("GetSession: %v", err)
	}
	wantEqual(t, "GetSession", got, x)

	_, err = s.CreateSession(ctx, persistence.Session{ID: id, UserID: u.ID, ProjectID: p.ID})
	wantErr(t, "CreateSession duplicate", err, persistence.ErrConflict)
	_, err = s.CreateSession(ctx, persistence.Session{UserID: u.ID, ProjectID: uuid.NewString()})
	wantErr(t, "CreateSession unknown project", err, persistence.ErrNotFound)
	other := mustUser(t, s)
	_, err = s.CreateSession(ctx, persistence.Session{UserID: other.ID, ProjectID: p.ID})
	wantErr(t, "CreateSession in another user's project", err, persistence.ErrNotFound)
	_, err = s.CreateSession(ctx, persistence.Session{ProjectID: p.ID})
	wantErr(t, "CreateSession without user", err, persistence.ErrInvalid)
	_, err = s.GetSession(ctx, uuid.NewString())
	wantErr(t, "GetSession unknown", err, persistence.ErrNotFound)
	_, err = s.GetSession(ctx, "")
	wantErr(t, "GetSession empty", err, persistence.ErrNotFound)
}

func testAppendIdempotent(t *testing.T, open opener) {
	ctx := t.Context()
	f := newFixture(t, open)
	in := persistence.Message{
		SessionID: f.session.ID, Seq: 1, Role: persistence.RoleUser, Content: "Tell me about John",
		ClientMessageID: "c-1",
	}
	first, created, err := f.s.AppendMessage(ctx, in)
	if err != nil || !created {
		t.Fatalf("first AppendMessage: created=%v err=%v", created, err)
	}
	if first.TurnID != first.ID || first.Status != persistence.StatusComplete || first.EndSeq != 1 {
		t.Errorf("defaults not filled: %+v", first)
	}
	wantUTC(t, "message times", first.CreatedAt, first.UpdatedAt)

	// A retry (which a session actor may have given a new seq) changes nothing.
	retry := in
	retry.Seq = 5
	again, created, err := f.s.AppendMessage(ctx, retry)
	if err != nil || created {
		t.Fatalf("retried AppendMessage: created=%v err=%v", created, err)
	}
	wantEqual(t, "retried AppendMessage", again, first)
	x, err := f.s.GetSession(ctx, f.session.ID)
	if err != nil {
		t.Fatal(err)
	}
	if x.MessageCount != 1 || x.LastSeq != 1 {
		t.Errorf("after retry: count %d, last seq %d; want 1, 1", x.MessageCount, x.LastSeq)
	}
	msgs, err := f.s.ListMessages(ctx, f.session.ID, 10, 0)
	if err != nil {
		t.Fatal(err)
	}
	wantEqual(t, "ListMessages after retry", msgs, []persistence.Message{first})

	// The same client id in another session is a different message.
	other := mustSession(t, f.s, f.user.ID, f.project.ID)
	in.SessionID = other.ID
	if _, created, err := f.s.AppendMessage(ctx, in); err != nil || !created {
		t.Errorf("same client id in another session: created=%v err=%v", created, err)
	}
}

func testAppendConcurrentRetries(t *testing.T, open opener) {
	ctx := t.Context()
	f := newFixture(t, open)
	const n = 8
	type result struct {
		m       persistence.Message
		created bool
		err     error
	}
	results := make([]result, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			m, created, err := f.s.AppendMessage(ctx, persistence.Message{
				SessionID: f.session.ID, Seq: 1, Role: persistence.RoleUser, Content: "hello",
				ClientMessageID: "retry-me",
			})
			results[i] = result{m, created, err}
		})
	}
	close(start)
	wg.Wait()
	createdCount := 0
	ids := map[string]bool{}
	for i, r := range results {
		if r.err != nil {
			t.Fatalf("goroutine %d: %v", i, r.err)
		}
		if r.created {
			createdCount++
		}
		ids[r.m.ID] = true
	}
	if createdCount != 1 || len(ids) != 1 {
		t.Fatalf("created %d times with %d distinct ids; want exactly one", createdCount, len(ids))
	}
	msgs, err := f.s.ListMessages(ctx, f.session.ID, 100, 0)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("ListMessages = %d rows, %v; want 1", len(msgs), err)
	}
	x, err := f.s.GetSession(ctx, f.session.ID)
	if err != nil || x.MessageCount != 1 {
		t.Fatalf("message count = %d, %v; want 1", x.MessageCount, err)
	}
}

func testAppendConcurrentSessions(t *testing.T, open opener) {
	ctx := t.Context()
	f := newFixture(t, open)
	const sessions, perSession = 4, 10
	var ids []string
	for range sessions {
		ids = append(ids, mustSession(t, f.s, f.user.ID, f.project.ID).ID)
	}
	errs := make(chan error, sessions*perSession*2)
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Go(func() {
			for i := 1; i <= perSession; i++ {
				if _, _, err := f.s.AppendMessage(ctx, persistence.Message{
					SessionID: id, Seq: int64(i), Role: persistence.RoleUser, Content: "x",
				}); err != nil {
					errs <- err
				}
			}
		})
		wg.Go(func() { // readers run beside the writers
			for range perSession {
				if _, err := f.s.RecentMessages(ctx, id, 5); err != nil {
					errs <- err
				}
				if _, err := f.s.ListSessions(ctx, f.user.ID); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, id := range ids {
		x, err := f.s.GetSession(ctx, id)
		if err != nil || x.MessageCount != perSession || x.LastSeq != perSession {
			t.Errorf("session %s: count %d, last seq %d, %v", id, x.MessageCount, x.LastSeq, err)
		}
	}
}

func testAppendErrors(t *testing.T, open opener) {
	ctx := t.Context()
	f := newFixture(t, open)
	first := appendN(t, f.s, f.session.ID, 1)[0]
	base := persistence.Message{SessionID: f.session.ID, Seq: 2, Role: persistence.RoleAssistant}
	with := func(edit func(*persistence.Message)) persistence.Message {
		m := base
		edit(&m)
		return m
	}
	cases := []struct {
		name string
		m    persistence.Message
		want error
	}{
		{"seq taken", with(func(m *persistence.Message) { m.Seq = 1 }), persistence.ErrConflict},
		{"id taken", with(func(m *persistence.Message) { m.ID = first.ID }), persistence.ErrConflict},
		{"unknown session", with(func(m *persistence.Message) { m.SessionID = uuid.NewString() }), persistence.ErrNotFound},
		{"malformed session", with(func(m *persistence.Message) { m.SessionID = "s-1" }), persistence.ErrNotFound},
		{"no session", with(func(m *persistence.Message) { m.SessionID = "" }), persistence.ErrInvalid},
		{"seq zero", with(func(m *persistence.Message) { m.Seq = 0 }), persistence.ErrInvalid},
		{"end before seq", with(func(m *persistence.Message) { m.Seq, m.EndSeq = 5, 4 }), persistence.ErrInvalid},
		{"bad role", with(func(m *persistence.Message) { m.Role = "tool" }), persistence.ErrInvalid},
		{"bad status", with(func(m *persistence.Message) { m.Status = "done" }), persistence.ErrInvalid},
		{"bad turn", with(func(m *persistence.Message) { m.TurnID = "t-1" }), persistence.ErrInvalid},
		{"bad id", with(func(m *persistence.Message) { m.ID = "m-1" }), persistence.ErrInvalid},
		{"metadata array", with(func(m *persistence.Message) { m.Metadata = json.RawMessage(`[1]`) }), persistence.ErrInvalid},
		{"metadata broken", with(func(m *persistence.Message) { m.Metadata = json.RawMessage(`{"a":`) }), persistence.ErrInvalid},
		{"metadata NUL", with(func(m *persistence.Message) { m.Metadata = json.RawMessage(`{"a":"\u0000"}`) }), persistence.ErrInvalid},
		{"content NUL", with(func(m *persistence.Message) { m.Content = "a\x00" }), persistence.ErrInvalid},
		{"content not UTF-8", with(func(m *persistence.Message) { m.Content = "\xff" }), persistence.ErrInvalid},
	}
	for _, c := range cases {
		_, created, err := f.s.AppendMessage(ctx, c.m)
		if created {
			t.Errorf("%s: created", c.name)
		}
		wantErr(t, c.name, err, c.want)
	}
	x, err := f.s.GetSession(ctx, f.session.ID)
	if err != nil || x.MessageCount != 1 || x.LastSeq != 1 {
		t.Errorf("after failed appends: count %d, last seq %d, %v; want 1, 1", x.MessageCount, x.LastSeq, err)
	}
}

func testSessionCounters(t *testing.T, open opener) {
	ctx := t.Context()
	f := newFixture(t, open)
	before := f.session
	user, _, err := f.s.AppendMessage(ctx, persistence.Message{
		SessionID: f.session.ID, Seq: 1, Role: persistence.RoleUser,
		Content: "\n  Tell me about   John, a detective in 1940s Los Angeles who never sleeps\nmore",
	})
	if err != nil {
		t.Fatal(err)
	}
	reply, _, err := f.s.AppendMessage(ctx, persistence.Message{
		SessionID: f.session.ID, Seq: 2, EndSeq: 7, TurnID: user.ID, Role: persistence.RoleAssistant,
		Content: "John is a hardboiled detective.", Status: persistence.StatusPartial,
	})
	if err != nil {
		t.Fatal(err)
	}
	x, err := f.s.GetSession(ctx, f.session.ID)
	if err != nil {
		t.Fatal(err)
	}
	if x.MessageCount != 2 || x.LastSeq != 7 {
		t.Errorf("count %d, last seq %d; want 2, 7", x.MessageCount, x.LastSeq)
	}
	if x.LastMessageAt == nil || !x.LastMessageAt.Equal(reply.CreatedAt) || x.LastMessageAt.Location() != time.UTC {
		t.Errorf("last message at %v; want %v (UTC)", x.LastMessageAt, reply.CreatedAt)
	}
	if !x.UpdatedAt.After(before.UpdatedAt) {
		t.Errorf("updated at %v not after %v", x.UpdatedAt, before.UpdatedAt)
	}
	if want := persistence.DeriveTitle(user.Content); x.Title != want || want == "" {
		t.Errorf("title %q; want %q", x.Title, want)
	}
	// A message with a lower end seq never lowers last_seq.
	if _, _, err := f.s.AppendMessage(ctx, persistence.Message{
		SessionID: f.session.ID, Seq: 3, Role: persistence.RoleSystem, Content: "note",
	}); err != nil {
		t.Fatal(err)
	}
	if x, err := f.s.GetSession(ctx, f.session.ID); err != nil || x.LastSeq != 7 || x.MessageCount != 3 {
		t.Errorf("after a lower seq: last seq %d, count %d, %v; want 7, 3", x.LastSeq, x.MessageCount, err)
	}
	// A titled session keeps its title.
	titled, err := f.s.CreateSession(ctx, persistence.Session{UserID: f.user.ID, ProjectID: f.project.ID, Title: "Mine"})
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, f.s, titled.ID, 1)
	if x, err := f.s.GetSession(ctx, titled.ID); err != nil || x.Title != "Mine" {
		t.Errorf("titled session: %q, %v", x.Title, err)
	}
}

func testRecentMessages(t *testing.T, open opener) {
	ctx := t.Context()
	f := newFixture(t, open)
	all := appendN(t, f.s, f.session.ID, 10)
	cases := []struct {
		limit int
		want  []int64
	}{
		{3, []int64{8, 9, 10}},
		{1, []int64{10}},
		{10, []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
		{50, []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
	}
	for _, c := range cases {
		got, err := f.s.RecentMessages(ctx, f.session.ID, c.limit)
		if err != nil {
			t.Fatalf("RecentMessages(%d): %v", c.limit, err)
		}
		wantEqual(t, fmt.Sprintf("RecentMessages(%d) seqs", c.limit), seqs(got), c.want)
	}
	got, err := f.s.RecentMessages(ctx, f.session.ID, 3)
	if err != nil {
		t.Fatal(err)
	}
	wantEqual(t, "RecentMessages(3) rows", got, all[7:])
	_, err = f.s.RecentMessages(ctx, f.session.ID, 0)
	wantErr(t, "RecentMessages(0)", err, persistence.ErrInvalid)
	if got, err := f.s.RecentMessages(ctx, uuid.NewString(), 3); err != nil || got == nil || len(got) != 0 {
		t.Errorf("RecentMessages of unknown session = %v, %v; want empty", got, err)
	}
}

func testListMessages(t *testing.T, open opener) {
	ctx := t.Context()
	f := newFixture(t, open)
	all := appendN(t, f.s, f.session.ID, 10)
	cases := []struct {
		limit, offset int
		want          []int64
	}{
		{4, 0, []int64{1, 2, 3, 4}},
		{4, 4, []int64{5, 6, 7, 8}},
		{4, 8, []int64{9, 10}},
		{4, 12, []int64{}},
		{50, 0, []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
	}
	for _, c := range cases {
		got, err := f.s.ListMessages(ctx, f.session.ID, c.limit, c.offset)
		if err != nil {
			t.Fatalf("ListMessages(%d, %d): %v", c.limit, c.offset, err)
		}
		if got == nil {
			t.Errorf("ListMessages(%d, %d) returned nil", c.limit, c.offset)
		}
		wantEqual(t, fmt.Sprintf("ListMessages(%d, %d) seqs", c.limit, c.offset), seqs(got), c.want)
	}
	got, err := f.s.ListMessages(ctx, f.session.ID, 10, 0)
	if err != nil {
		t.Fatal(err)
	}
	wantEqual(t, "ListMessages rows", got, all)
	_, err = f.s.ListMessages(ctx, f.session.ID, 0, 0)
	wantErr(t, "ListMessages limit 0", err, persistence.ErrInvalid)
	_, err = f.s.ListMessages(ctx, f.session.ID, 5, -1)
	wantErr(t, "ListMessages offset -1", err, persistence.ErrInvalid)
}

func testMessagesAfter(t *testing.T, open opener) {
	ctx := t.Context()
	f := newFixture(t, open)
	// A user message at seq 1 and a reply spanning seqs 2..6.
	if _, _, err := f.s.AppendMessage(ctx, persistence.Message{SessionID: f.session.ID, Seq: 1, Role: persistence.RoleUser, Content: "q"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.s.AppendMessage(ctx, persistence.Message{SessionID: f.session.ID, Seq: 2, EndSeq: 6, Role: persistence.RoleAssistant, Content: "a"}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		after int64
		limit int
		want  []int64
	}{
		{0, 10, []int64{1, 2}},
		{1, 10, []int64{2}},
		{3, 10, []int64{2}}, // inside the reply: the reply is still missed in part
		{6, 10, []int64{}},
		{0, 1, []int64{1}},
	}
	for _, c := range cases {
		got, err := f.s.MessagesAfter(ctx, f.session.ID, c.after, c.limit)
		if err != nil {
			t.Fatalf("MessagesAfter(%d): %v", c.after, err)
		}
		wantEqual(t, fmt.Sprintf("MessagesAfter(%d, %d) seqs", c.after, c.limit), seqs(got), c.want)
	}
	_, err := f.s.MessagesAfter(ctx, f.session.ID, 0, 0)
	wantErr(t, "MessagesAfter limit 0", err, persistence.ErrInvalid)
}

func testReserveSeqs(t *testing.T, open opener) {
	ctx := t.Context()
	f := newFixture(t, open)
	from, to, err := f.s.ReserveSeqs(ctx, f.session.ID, 100)
	if err != nil || from != 0 || to != 100 {
		t.Fatalf("first block (%d, %d], %v; want (0, 100]", from, to, err)
	}
	// A stored message beyond the reservation moves the next block past it.
	if _, _, err := f.s.AppendMessage(ctx, persistence.Message{SessionID: f.session.ID, Seq: 150, Role: persistence.RoleUser, Content: "q"}); err != nil {
		t.Fatal(err)
	}
	from, to, err = f.s.ReserveSeqs(ctx, f.session.ID, 10)
	if err != nil || from != 150 || to != 160 {
		t.Fatalf("second block (%d, %d], %v; want (150, 160]", from, to, err)
	}
	// Blocks never overlap, stored or not.
	from, _, _ = f.s.ReserveSeqs(ctx, f.session.ID, 10)
	if from != 160 {
		t.Fatalf("third block starts after %d, want 160", from)
	}
	_, _, err = f.s.ReserveSeqs(ctx, "01a21402-aa2c-7e11-8450-d6830e250917", 10)
	wantErr(t, "ReserveSeqs of an unknown session", err, persistence.ErrNotFound)
	_, _, err = f.s.ReserveSeqs(ctx, f.session.ID, 0)
	wantErr(t, "ReserveSeqs of 0", err, persistence.ErrInvalid)
}

func testGetReply(t *testing.T, open opener) {
	ctx := t.Context()
	f := newFixture(t, open)
	user, _, err := f.s.AppendMessage(ctx, persistence.Message{
		SessionID: f.session.ID, Seq: 1, Role: persistence.RoleUser, Content: "hi",
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.s.GetReply(ctx, f.session.ID, user.ID)
	wantErr(t, "GetReply before the reply", err, persistence.ErrNotFound)
	reply, _, err := f.s.AppendMessage(ctx, persistence.Message{
		SessionID: f.session.ID, Seq: 2, EndSeq: 4, TurnID: user.ID, Role: persistence.RoleAssistant,
		Content: "hello", Status: persistence.StatusCancelled,
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := f.s.GetReply(ctx, f.session.ID, strings.ToUpper(user.ID))
	if err != nil {
		t.Fatalf("GetReply: %v", err)
	}
	wantEqual(t, "GetReply", got, reply)
	_, err = f.s.GetReply(ctx, f.session.ID, uuid.NewString())
	wantErr(t, "GetReply unknown turn", err, persistence.ErrNotFound)
	other := mustSession(t, f.s, f.user.ID, f.project.ID)
	_, err = f.s.GetReply(ctx, other.ID, user.ID)
	wantErr(t, "GetReply in another session", err, persistence.ErrNotFound)
}

func testListSessions(t *testing.T, open opener) {
	ctx := t.Context()
	f := newFixture(t, open) // f.session is the oldest
	b := mustSession(t, f.s, f.user.ID, f.project.ID)
	c := mustSession(t, f.s, f.user.ID, f.project.ID)
	stranger := mustUser(t, f.s)
	mustSession(t, f.s, stranger.ID, mustProject(t, f.s, stranger.ID).ID)

	order := func(what string, want ...string) {
		t.Helper()
		got, err := f.s.ListSessions(ctx, f.user.ID)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		ids := []string{}
		for _, x := range got {
			ids = append(ids, x.ID)
		}
		wantEqual(t, what, ids, want)
	}
	order("newest first", c.ID, b.ID, f.session.ID)
	appendN(t, f.s, f.session.ID, 1)
	order("a new message moves a session to the front", f.session.ID, c.ID, b.ID)
	if err := f.s.DeactivateSession(ctx, c.ID); err != nil {
		t.Fatalf("DeactivateSession: %v", err)
	}
	order("deactivated sessions are left out", f.session.ID, b.ID)
	if x, err := f.s.GetSession(ctx, c.ID); err != nil || x.IsActive {
		t.Errorf("GetSession of a deactivated session = %+v, %v", x, err)
	}
	if err := f.s.DeactivateSession(ctx, c.ID); err != nil {
		t.Errorf("DeactivateSession twice: %v", err)
	}
	wantErr(t, "DeactivateSession unknown", f.s.DeactivateSession(ctx, uuid.NewString()), persistence.ErrNotFound)
	if got, err := f.s.ListSessions(ctx, uuid.NewString()); err != nil || got == nil || len(got) != 0 {
		t.Errorf("ListSessions of unknown user = %v, %v; want empty", got, err)
	}
}

func testMetadata(t *testing.T, open opener) {
	ctx := t.Context()
	f := newFixture(t, open)
	cases := []struct {
		name string
		in   json.RawMessage
		want any // decoded; nil means Metadata must be nil
	}{
		{"nil", nil, nil},
		{"empty object", json.RawMessage(`{}`), nil},
		{"blank", json.RawMessage("  "), nil},
		{"spaced empty object", json.RawMessage(" { } "), nil},
		{"one key", json.RawMessage(`{ "model": "offline" }`), map[string]any{"model": "offline"}},
		{"nested", json.RawMessage(`{"zeta":1,"a":[true,"x",{"n":null}],"unicode":"é ✓"}`),
			map[string]any{"zeta": 1.0, "a": []any{true, "x", map[string]any{"n": nil}}, "unicode": "é ✓"}},
	}
	for i, c := range cases {
		stored, _, err := f.s.AppendMessage(ctx, persistence.Message{
			SessionID: f.session.ID, Seq: int64(i + 1), Role: persistence.RoleAssistant, Metadata: c.in,
		})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		read, err := f.s.ListMessages(ctx, f.session.ID, 1, i)
		if err != nil || len(read) != 1 {
			t.Fatalf("%s: read back %v, %v", c.name, read, err)
		}
		for _, m := range []persistence.Message{stored, read[0]} {
			if c.want == nil {
				if m.Metadata != nil {
					t.Errorf("%s: metadata %s; want nil", c.name, m.Metadata)
				}
				continue
			}
			var got any
			if err := json.Unmarshal(m.Metadata, &got); err != nil {
				t.Fatalf("%s: %s: %v", c.name, m.Metadata, err)
			}
			wantEqual(t, c.name, got, c.want)
		}
	}
	// Both stores return the same canonical bytes: compact, keys sorted,
	// no HTML escaping, numbers as spelled.
	in := json.RawMessage(`{ "z": {"b": 2, "a": 1.50}, "html": "<b>&</b>", "a": [ 3, "\u00e9" ] }`)
	const want = `{"a":[3,"é"],"html":"<b>&</b>","z":{"a":1.50,"b":2}}`
	stored, _, err := f.s.AppendMessage(ctx, persistence.Message{
		SessionID: f.session.ID, Seq: 100, Role: persistence.RoleAssistant, Metadata: in,
	})
	if err != nil {
		t.Fatal(err)
	}
	read, err := f.s.RecentMessages(ctx, f.session.ID, 1)
	if err != nil || len(read) != 1 {
		t.Fatalf("RecentMessages = %v, %v", read, err)
	}
	for _, got := range []json.RawMessage{stored.Metadata, read[0].Metadata} {
		if string(got) != want {
			t.Errorf("canonical metadata = %s; want %s", got, want)
		}
	}
}

func testDossier(t *testing.T, open opener) {
	ctx := t.Context()
	f := newFixture(t, open)
	snap1 := json.RawMessage(`{"characters":[],"themes":["Justice"]}`)
	d, err := f.s.CreateDossier(ctx, persistence.Dossier{ProjectID: f.project.ID, UserID: f.user.ID, Snapshot: snap1},
		persistence.DossierVersion{Source: persistence.SourceUser})
	if err != nil {
		t.Fatalf("CreateDossier: %v", err)
	}
	if d.Version != 1 || d.ProjectID != f.project.ID || d.UserID != f.user.ID {
		t.Errorf("CreateDossier returned %+v", d)
	}
	wantUTC(t, "dossier times", d.CreatedAt, d.UpdatedAt)
	got, err := f.s.GetDossier(ctx, f.project.ID)
	if err != nil {
		t.Fatalf("GetDossier: %v", err)
	}
	wantEqual(t, "GetDossier", got, d)

	_, err = f.s.CreateDossier(ctx, persistence.Dossier{ProjectID: f.project.ID, UserID: f.user.ID},
		persistence.DossierVersion{Source: persistence.SourceUser})
	wantErr(t, "CreateDossier twice", err, persistence.ErrConflict)
	stranger := mustUser(t, f.s)
	_, err = f.s.CreateDossier(ctx, persistence.Dossier{ProjectID: mustProject(t, f.s, f.user.ID).ID, UserID: stranger.ID},
		persistence.DossierVersion{Source: persistence.SourceUser})
	wantErr(t, "CreateDossier for another user's project", err, persistence.ErrNotFound)
	_, err = f.s.CreateDossier(ctx, persistence.Dossier{ProjectID: uuid.NewString(), UserID: f.user.ID},
		persistence.DossierVersion{Source: persistence.SourceUser})
	wantErr(t, "CreateDossier unknown project", err, persistence.ErrNotFound)
	_, err = f.s.CreateDossier(ctx, persistence.Dossier{ProjectID: mustProject(t, f.s, f.user.ID).ID, UserID: f.user.ID},
		persistence.DossierVersion{Source: "robot"})
	wantErr(t, "CreateDossier bad source", err, persistence.ErrInvalid)

	snap2 := json.RawMessage(`{"characters":[{"name":"John"}],"themes":["Justice"]}`)
	extraction := persistence.DossierVersion{Source: persistence.SourceExtraction, SeqFrom: 1, SeqTo: 12}
	d2, err := f.s.UpdateDossier(ctx, f.project.ID, 1, snap2, extraction)
	if err != nil {
		t.Fatalf("UpdateDossier: %v", err)
	}
	if d2.Version != 2 || !d2.CreatedAt.Equal(d.CreatedAt) || !d2.UpdatedAt.After(d.UpdatedAt) || d2.UserID != f.user.ID {
		t.Errorf("UpdateDossier returned %+v", d2)
	}
	got, err = f.s.GetDossier(ctx, f.project.ID)
	if err != nil {
		t.Fatal(err)
	}
	wantEqual(t, "GetDossier after update", got, d2)
	_, err = f.s.UpdateDossier(ctx, f.project.ID, 1, snap1, extraction)
	wantErr(t, "UpdateDossier stale", err, persistence.ErrConflict)
	_, err = f.s.UpdateDossier(ctx, uuid.NewString(), 1, snap1, extraction)
	wantErr(t, "UpdateDossier unknown", err, persistence.ErrNotFound)
	_, err = f.s.UpdateDossier(ctx, f.project.ID, 2, json.RawMessage(`"x"`), extraction)
	wantErr(t, "UpdateDossier not an object", err, persistence.ErrInvalid)

	versions, err := f.s.ListDossierVersions(ctx, f.project.ID)
	if err != nil {
		t.Fatalf("ListDossierVersions: %v", err)
	}
	if len(versions) != 2 {
		t.Fatalf("ListDossierVersions = %+v; want 2 versions", versions)
	}
	wantEqual(t, "version 1", versions[0], persistence.DossierVersion{
		ProjectID: f.project.ID, Version: 1, Snapshot: snap1, Source: persistence.SourceUser, CreatedAt: d.CreatedAt,
	})
	wantEqual(t, "version 2", versions[1], persistence.DossierVersion{
		ProjectID: f.project.ID, Version: 2, Snapshot: snap2, Source: persistence.SourceExtraction,
		SeqFrom: 1, SeqTo: 12, CreatedAt: d2.UpdatedAt,
	})
	v2, err := f.s.GetDossierVersion(ctx, f.project.ID, 2)
	if err != nil {
		t.Fatal(err)
	}
	wantEqual(t, "GetDossierVersion", v2, versions[1])
	_, err = f.s.GetDossierVersion(ctx, f.project.ID, 3)
	wantErr(t, "GetDossierVersion unknown", err, persistence.ErrNotFound)

	// A second dossier, updated later, lists first.
	p2 := mustProject(t, f.s, f.user.ID)
	if _, err := f.s.CreateDossier(ctx, persistence.Dossier{ProjectID: p2.ID, UserID: f.user.ID},
		persistence.DossierVersion{Source: persistence.SourceExtraction}); err != nil {
		t.Fatal(err)
	}
	list, err := f.s.ListDossiers(ctx, f.user.ID)
	if err != nil || len(list) != 2 || list[0].ProjectID != p2.ID || list[1].ProjectID != f.project.ID {
		t.Fatalf("ListDossiers = %+v, %v", list, err)
	}
	if string(list[0].Snapshot) != "{}" {
		t.Errorf("nil snapshot stored as %s; want {}", list[0].Snapshot)
	}
	if got, err := f.s.ListDossiers(ctx, stranger.ID); err != nil || got == nil || len(got) != 0 {
		t.Errorf("ListDossiers of a user without any = %v, %v", got, err)
	}

	if err := f.s.DeleteDossier(ctx, f.project.ID); err != nil {
		t.Fatalf("DeleteDossier: %v", err)
	}
	_, err = f.s.GetDossier(ctx, f.project.ID)
	wantErr(t, "GetDossier after delete", err, persistence.ErrNotFound)
	if vs, err := f.s.ListDossierVersions(ctx, f.project.ID); err != nil || len(vs) != 0 {
		t.Errorf("versions after delete = %v, %v", vs, err)
	}
	wantErr(t, "DeleteDossier twice", f.s.DeleteDossier(ctx, f.project.ID), persistence.ErrNotFound)
	again, err := f.s.CreateDossier(ctx, persistence.Dossier{ProjectID: f.project.ID, UserID: f.user.ID},
		persistence.DossierVersion{Source: persistence.SourceUser})
	if err != nil || again.Version != 1 {
		t.Errorf("CreateDossier after delete = %+v, %v", again, err)
	}
}

func testSaveDossier(t *testing.T, open opener) {
	ctx := t.Context()
	f := newFixture(t, open)
	user := persistence.DossierVersion{Source: persistence.SourceUser, SeqFrom: 3, SeqTo: 7}

	// Create (expected version 0) stores snapshot and protection.
	snap1 := json.RawMessage(`{"title":"Dune","characters":[{"name":"Paul"}]}`)
	prot1 := json.RawMessage(`{"title":true, "characters":{"Paul":["name"]}}`)
	d1, err := f.s.SaveDossier(ctx, persistence.Dossier{ProjectID: f.project.ID, UserID: f.user.ID, Snapshot: snap1, Protection: prot1}, 0, user)
	if err != nil {
		t.Fatalf("SaveDossier create: %v", err)
	}
	if d1.Version != 1 || d1.ProjectID != f.project.ID || d1.UserID != f.user.ID {
		t.Errorf("SaveDossier create returned %+v", d1)
	}
	wantEqual(t, "created protection", string(d1.Protection), `{"characters":{"Paul":["name"]},"title":true}`)
	got, err := f.s.GetDossier(ctx, f.project.ID)
	if err != nil {
		t.Fatalf("GetDossier: %v", err)
	}
	wantEqual(t, "GetDossier after create", got, d1)

	// Create errors match CreateDossier's.
	_, err = f.s.SaveDossier(ctx, persistence.Dossier{ProjectID: f.project.ID, UserID: f.user.ID}, 0, user)
	wantErr(t, "SaveDossier create twice", err, persistence.ErrConflict)
	stranger := mustUser(t, f.s)
	_, err = f.s.SaveDossier(ctx, persistence.Dossier{ProjectID: mustProject(t, f.s, f.user.ID).ID, UserID: stranger.ID}, 0, user)
	wantErr(t, "SaveDossier create for another user's project", err, persistence.ErrNotFound)
	_, err = f.s.SaveDossier(ctx, persistence.Dossier{ProjectID: uuid.NewString(), UserID: f.user.ID}, 0, user)
	wantErr(t, "SaveDossier create unknown project", err, persistence.ErrNotFound)
	_, err = f.s.SaveDossier(ctx, persistence.Dossier{ProjectID: mustProject(t, f.s, f.user.ID).ID, UserID: f.user.ID,
		Protection: json.RawMessage(`[1]`)}, 0, user)
	wantErr(t, "SaveDossier create protection not an object", err, persistence.ErrInvalid)

	// Update (compare-and-set) replaces snapshot and protection.
	snap2 := json.RawMessage(`{"title":"Dune Messiah"}`)
	prot2 := json.RawMessage(`{"title":true}`)
	extraction := persistence.DossierVersion{Source: persistence.SourceExtraction, SeqFrom: 8, SeqTo: 20}
	d2, err := f.s.SaveDossier(ctx, persistence.Dossier{ProjectID: f.project.ID, UserID: f.user.ID, Snapshot: snap2, Protection: prot2}, 1, extraction)
	if err != nil {
		t.Fatalf("SaveDossier update: %v", err)
	}
	if d2.Version != 2 || !d2.CreatedAt.Equal(d1.CreatedAt) || !d2.UpdatedAt.After(d1.UpdatedAt) || d2.UserID != f.user.ID {
		t.Errorf("SaveDossier update returned %+v", d2)
	}
	wantEqual(t, "updated protection", string(d2.Protection), `{"title":true}`)
	got, err = f.s.GetDossier(ctx, f.project.ID)
	if err != nil {
		t.Fatal(err)
	}
	wantEqual(t, "GetDossier after save", got, d2)

	_, err = f.s.SaveDossier(ctx, persistence.Dossier{ProjectID: f.project.ID, Snapshot: snap1, Protection: prot1}, 1, extraction)
	wantErr(t, "SaveDossier stale", err, persistence.ErrConflict)
	_, err = f.s.SaveDossier(ctx, persistence.Dossier{ProjectID: f.project.ID, UserID: f.user.ID}, 0, extraction)
	wantErr(t, "SaveDossier create over existing", err, persistence.ErrConflict)
	_, err = f.s.SaveDossier(ctx, persistence.Dossier{ProjectID: uuid.NewString()}, 1, extraction)
	wantErr(t, "SaveDossier unknown", err, persistence.ErrNotFound)
	_, err = f.s.SaveDossier(ctx, persistence.Dossier{ProjectID: f.project.ID, Protection: json.RawMessage(`"x"`)}, 2, extraction)
	wantErr(t, "SaveDossier protection not an object", err, persistence.ErrInvalid)
	_, err = f.s.SaveDossier(ctx, persistence.Dossier{ProjectID: f.project.ID}, -1, extraction)
	wantErr(t, "SaveDossier negative version", err, persistence.ErrInvalid)
	_, err = f.s.SaveDossier(ctx, persistence.Dossier{ProjectID: f.project.ID}, 2, persistence.DossierVersion{Source: "robot"})
	wantErr(t, "SaveDossier bad source", err, persistence.ErrInvalid)
	if got, err := f.s.GetDossier(ctx, f.project.ID); err != nil || !reflect.DeepEqual(got, d2) {
		t.Errorf("dossier after failed saves = %+v, %v; want %+v", got, err, d2)
	}

	// UpdateDossier keeps the protection; a nil protection saves as {}.
	snap3 := json.RawMessage(`{"title":"Children of Dune"}`)
	d3, err := f.s.UpdateDossier(ctx, f.project.ID, 2, snap3, extraction)
	if err != nil {
		t.Fatalf("UpdateDossier: %v", err)
	}
	wantEqual(t, "protection after UpdateDossier", string(d3.Protection), `{"title":true}`)
	got, err = f.s.GetDossier(ctx, f.project.ID)
	if err != nil {
		t.Fatal(err)
	}
	wantEqual(t, "GetDossier after UpdateDossier", got, d3)
	d4, err := f.s.SaveDossier(ctx, persistence.Dossier{ProjectID: f.project.ID, Snapshot: snap3}, 3, user)
	if err != nil {
		t.Fatalf("SaveDossier nil protection: %v", err)
	}
	wantEqual(t, "nil protection", string(d4.Protection), "{}")
	if got, err := f.s.GetDossier(ctx, f.project.ID); err != nil || !reflect.DeepEqual(got, d4) {
		t.Errorf("GetDossier after nil protection = %+v, %v; want %+v", got, err, d4)
	}

	// Every write kept a version row with its source and seq range.
	versions, err := f.s.ListDossierVersions(ctx, f.project.ID)
	if err != nil {
		t.Fatalf("ListDossierVersions: %v", err)
	}
	wantEqual(t, "versions", versions, []persistence.DossierVersion{
		{ProjectID: f.project.ID, Version: 1, Snapshot: d1.Snapshot, Source: persistence.SourceUser, SeqFrom: 3, SeqTo: 7, CreatedAt: d1.CreatedAt},
		{ProjectID: f.project.ID, Version: 2, Snapshot: snap2, Source: persistence.SourceExtraction, SeqFrom: 8, SeqTo: 20, CreatedAt: d2.UpdatedAt},
		{ProjectID: f.project.ID, Version: 3, Snapshot: snap3, Source: persistence.SourceExtraction, SeqFrom: 8, SeqTo: 20, CreatedAt: d3.UpdatedAt},
		{ProjectID: f.project.ID, Version: 4, Snapshot: snap3, Source: persistence.SourceUser, SeqFrom: 3, SeqTo: 7, CreatedAt: d4.UpdatedAt},
	})

	// CreateDossier stores an empty protection and ListDossiers returns it.
	p2 := mustProject(t, f.s, f.user.ID)
	c, err := f.s.CreateDossier(ctx, persistence.Dossier{ProjectID: p2.ID, UserID: f.user.ID, Protection: prot1}, user)
	if err != nil {
		t.Fatalf("CreateDossier: %v", err)
	}
	wantEqual(t, "CreateDossier protection", string(c.Protection), "{}")
	list, err := f.s.ListDossiers(ctx, f.user.ID)
	if err != nil || len(list) != 2 {
		t.Fatalf("ListDossiers = %+v, %v", list, err)
	}
	wantEqual(t, "ListDossiers", list, []persistence.Dossier{c, d4})
}

func testDossierConcurrentUpdates(t *testing.T, open opener) {
	ctx := t.Context()
	f := newFixture(t, open)
	if _, err := f.s.CreateDossier(ctx, persistence.Dossier{ProjectID: f.project.ID, UserID: f.user.ID},
		persistence.DossierVersion{Source: persistence.SourceUser}); err != nil {
		t.Fatal(err)
	}
	const n = 8
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			_, errs[i] = f.s.UpdateDossier(ctx, f.project.ID, 1, json.RawMessage(fmt.Sprintf(`{"writer":%d}`, i)),
				persistence.DossierVersion{Source: persistence.SourceExtraction})
		})
	}
	close(start)
	wg.Wait()
	won := 0
	for i, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, persistence.ErrConflict):
			t.Errorf("writer %d: %v", i, err)
		}
	}
	if won != 1 {
		t.Fatalf("%d writers won; want exactly 1", won)
	}
	versions, err := f.s.ListDossierVersions(ctx, f.project.ID)
	if err != nil || len(versions) != 2 {
		t.Fatalf("versions = %+v, %v; want 2", versions, err)
	}
}

func testClaimUser(t *testing.T, open opener) {
	ctx := t.Context()
	s := newFixture(t, open).s
	fresh := "01a21402-aa2c-7e11-8450-d6830e250901"
	u, err := s.ClaimUser(ctx, fresh, "a@example.com")
	if err != nil || u.IsAnonymous || u.Email != "a@example.com" {
		t.Fatalf("claim of a new id: %+v %v", u, err)
	}
	// A profile edit wins over the token's email.
	if _, err := s.UpsertUser(ctx, persistence.User{ID: fresh, Email: "b@example.com"}); err != nil {
		t.Fatal(err)
	}
	if u, _ := s.ClaimUser(ctx, fresh, "a@example.com"); u.Email != "b@example.com" {
		t.Fatalf("claim overwrote the profile email: %+v", u)
	}
	// An id an anonymous client squatted, then migrated away, is taken back
	// by the holder of its token.
	squatted, account := "01a21402-aa2c-7e11-8450-d6830e250902", "01a21402-aa2c-7e11-8450-d6830e250903"
	if _, err := s.EnsureUser(ctx, persistence.User{ID: squatted, IsAnonymous: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.MigrateUser(ctx, squatted, account); err != nil {
		t.Fatal(err)
	}
	u, err = s.ClaimUser(ctx, squatted, "")
	if err != nil || u.IsAnonymous || u.MigratedTo != "" {
		t.Fatalf("claim of a migrated id: %+v %v", u, err)
	}
	_, err = s.ClaimUser(ctx, "nope", "")
	wantErr(t, "ClaimUser of a malformed id", err, persistence.ErrInvalid)
}
