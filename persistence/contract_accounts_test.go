package persistence_test

// Contract cases for user profiles, anonymous-to-registered migration, paged
// session lists and dossier summaries; runContract runs them on both stores.

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/storyd/storyd/persistence"
)

func testUpsertUser(t *testing.T, open opener) {
	ctx := t.Context()
	s, _ := migrated(t, open)
	id := uuid.New()

	// Each step upserts in on the same user; want is the stored profile after
	// it, and touched says whether the step had anything to change.
	type profile struct {
		Email, DisplayName, AvatarURL string
		IsAnonymous                   bool
	}
	steps := []struct {
		name    string
		in      persistence.User
		want    profile
		touched bool
	}{
		{"create anonymous", persistence.User{IsAnonymous: true},
			profile{IsAnonymous: true}, true},
		{"name an anonymous user", persistence.User{DisplayName: "Ada", IsAnonymous: true},
			profile{DisplayName: "Ada", IsAnonymous: true}, true},
		{"register keeps the name", persistence.User{Email: "ada@example.com"},
			profile{Email: "ada@example.com", DisplayName: "Ada"}, true},
		{"never anonymous again", persistence.User{AvatarURL: "https://example.com/a.png", IsAnonymous: true},
			profile{Email: "ada@example.com", DisplayName: "Ada", AvatarURL: "https://example.com/a.png"}, true},
		{"empty fields change nothing", persistence.User{IsAnonymous: true},
			profile{Email: "ada@example.com", DisplayName: "Ada", AvatarURL: "https://example.com/a.png"}, false},
		{"same values change nothing", persistence.User{Email: "ada@example.com", DisplayName: "Ada"},
			profile{Email: "ada@example.com", DisplayName: "Ada", AvatarURL: "https://example.com/a.png"}, false},
		{"new email and name", persistence.User{Email: "ada@lovelace.org", DisplayName: "Ada L. ✓"},
			profile{Email: "ada@lovelace.org", DisplayName: "Ada L. ✓", AvatarURL: "https://example.com/a.png"}, true},
	}
	var prev persistence.User
	for i, step := range steps {
		in := step.in
		in.ID = id.String()
		if i%2 == 1 {
			in.ID = strings.ToUpper(in.ID) // any case names the same user
		}
		u, err := s.UpsertUser(ctx, in)
		if err != nil {
			t.Fatalf("%s: UpsertUser: %v", step.name, err)
		}
		got := profile{u.Email, u.DisplayName, u.AvatarURL, u.IsAnonymous}
		wantEqual(t, step.name, got, step.want)
		if u.ID != id.String() || u.MigratedTo != "" {
			t.Errorf("%s: id %q, migrated to %q", step.name, u.ID, u.MigratedTo)
		}
		wantUTC(t, step.name, u.CreatedAt, u.UpdatedAt)
		if i > 0 {
			if !u.CreatedAt.Equal(prev.CreatedAt) {
				t.Errorf("%s: CreatedAt moved from %v to %v", step.name, prev.CreatedAt, u.CreatedAt)
			}
			if touched := u.UpdatedAt.After(prev.UpdatedAt); touched != step.touched {
				t.Errorf("%s: UpdatedAt %v -> %v; want touched=%v", step.name, prev.UpdatedAt, u.UpdatedAt, step.touched)
			}
		}
		stored, err := s.GetUser(ctx, id.String())
		if err != nil {
			t.Fatalf("%s: GetUser: %v", step.name, err)
		}
		wantEqual(t, step.name+": GetUser", stored, u)
		prev = u
	}

	// A JWT user first seen: registered from the start. MigratedTo is not
	// part of a profile.
	jwt, err := s.UpsertUser(ctx, persistence.User{ID: uuid.NewString(), Email: "jwt@example.com", MigratedTo: id.String()})
	if err != nil || jwt.IsAnonymous || jwt.Email != "jwt@example.com" || jwt.MigratedTo != "" {
		t.Errorf("UpsertUser of a new registered user = %+v, %v", jwt, err)
	}

	for _, c := range []struct {
		name string
		in   persistence.User
		want error
	}{
		{"no id", persistence.User{Email: "x@example.com"}, persistence.ErrInvalid},
		{"malformed id", persistence.User{ID: "not-a-uuid"}, persistence.ErrInvalid},
		{"NUL in name", persistence.User{ID: id.String(), DisplayName: "a\x00b"}, persistence.ErrInvalid},
		{"invalid UTF-8 email", persistence.User{ID: uuid.NewString(), Email: "\xff"}, persistence.ErrInvalid},
	} {
		_, err := s.UpsertUser(ctx, c.in)
		wantErr(t, "UpsertUser "+c.name, err, c.want)
	}

	// A migrated user's id is dead: its profile cannot change.
	anon := mustUser(t, s)
	if _, err := s.MigrateUser(ctx, anon.ID, jwt.ID); err != nil {
		t.Fatalf("MigrateUser: %v", err)
	}
	_, err = s.UpsertUser(ctx, persistence.User{ID: anon.ID, DisplayName: "Ghost"})
	wantErr(t, "UpsertUser of a migrated user", err, persistence.ErrConflict)
	_, err = s.UpsertUser(ctx, persistence.User{ID: anon.ID, IsAnonymous: true})
	wantErr(t, "no-op UpsertUser of a migrated user", err, persistence.ErrConflict)
	if got, err := s.GetUser(ctx, anon.ID); err != nil || got.DisplayName != "" || !got.IsAnonymous || got.MigratedTo != jwt.ID {
		t.Errorf("migrated user after refused upserts = %+v, %v", got, err)
	}
}

// owned is what a user owns as seen through the store's read methods.
type owned struct {
	sessions, dossiers []string // active session ids; dossier project ids
}

func ownedBy(t *testing.T, s store, userID string) owned {
	t.Helper()
	ss, err := s.ListSessions(t.Context(), userID)
	if err != nil {
		t.Fatalf("ListSessions: %v", err)
	}
	ds, err := s.ListDossiers(t.Context(), userID)
	if err != nil {
		t.Fatalf("ListDossiers: %v", err)
	}
	o := owned{sessions: []string{}, dossiers: []string{}}
	for _, x := range ss {
		o.sessions = append(o.sessions, x.ID)
	}
	for _, d := range ds {
		o.dossiers = append(o.dossiers, d.ProjectID)
	}
	return o
}

// anonymousWithData is an anonymous user with two projects, three sessions
// (one inactive) and one dossier.
type anonymousWithData struct {
	user     persistence.User
	projects []persistence.Project
	sessions []persistence.Session // the inactive one last
	dossier  persistence.Dossier
}

func newAnonymousWithData(t *testing.T, s store) anonymousWithData {
	t.Helper()
	a := anonymousWithData{user: mustUser(t, s)}
	a.projects = []persistence.Project{mustProject(t, s, a.user.ID), mustProject(t, s, a.user.ID)}
	a.sessions = []persistence.Session{
		mustSession(t, s, a.user.ID, a.projects[0].ID),
		mustSession(t, s, a.user.ID, a.projects[1].ID),
		mustSession(t, s, a.user.ID, a.projects[1].ID),
	}
	appendN(t, s, a.sessions[0].ID, 2)
	if err := s.DeactivateSession(t.Context(), a.sessions[2].ID); err != nil {
		t.Fatal(err)
	}
	var err error
	a.dossier, err = s.CreateDossier(t.Context(), persistence.Dossier{
		ProjectID: a.projects[0].ID, UserID: a.user.ID, Snapshot: json.RawMessage(`{"themes":["Loss"]}`),
	}, persistence.DossierVersion{Source: persistence.SourceExtraction})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// wantOwner checks the owner of every row of a through the single-row reads.
func (a anonymousWithData) wantOwner(t *testing.T, s store, what, userID string) {
	t.Helper()
	ctx := t.Context()
	for _, p := range a.projects {
		if got, err := s.GetProject(ctx, p.ID); err != nil || got.UserID != userID {
			t.Errorf("%s: project %s owned by %q (%v); want %s", what, p.ID, got.UserID, err, userID)
		}
	}
	for _, x := range a.sessions {
		if got, err := s.GetSession(ctx, x.ID); err != nil || got.UserID != userID {
			t.Errorf("%s: session %s owned by %q (%v); want %s", what, x.ID, got.UserID, err, userID)
		}
	}
	if got, err := s.GetDossier(ctx, a.dossier.ProjectID); err != nil || got.UserID != userID {
		t.Errorf("%s: dossier %s owned by %q (%v); want %s", what, a.dossier.ProjectID, got.UserID, err, userID)
	}
}

func testMigrateUser(t *testing.T, open opener) {
	ctx := t.Context()
	s, _ := migrated(t, open)
	a := newAnonymousWithData(t, s)
	before := ownedBy(t, s, a.user.ID)
	permanent := uuid.New()

	res, err := s.MigrateUser(ctx, strings.ToUpper(a.user.ID), strings.ToUpper(permanent.String()))
	if err != nil {
		t.Fatalf("MigrateUser: %v", err)
	}
	wantEqual(t, "MigrateUser result", res, persistence.MigrationResult{Sessions: 3, Projects: 2, Dossiers: 1})
	a.wantOwner(t, s, "after migration", permanent.String())
	wantEqual(t, "owned by the permanent user", ownedBy(t, s, permanent.String()), before)
	wantEqual(t, "owned by the migrated user", ownedBy(t, s, a.user.ID), owned{sessions: []string{}, dossiers: []string{}})

	// What the HTTP layer checks before accepting an anonymous id.
	temp, err := s.GetUser(ctx, a.user.ID)
	if err != nil || !temp.IsAnonymous || temp.MigratedTo != permanent.String() || !temp.UpdatedAt.After(a.user.UpdatedAt) {
		t.Errorf("GetUser of the migrated user = %+v, %v", temp, err)
	}
	perm, err := s.GetUser(ctx, permanent.String())
	if err != nil || perm.IsAnonymous || perm.MigratedTo != "" {
		t.Errorf("GetUser of the created permanent user = %+v, %v", perm, err)
	}
	wantUTC(t, "created permanent user", perm.CreatedAt, perm.UpdatedAt)
	// Moved rows keep working for their new owner.
	if _, err := s.CreateSession(ctx, persistence.Session{UserID: permanent.String(), ProjectID: a.projects[1].ID}); err != nil {
		t.Errorf("CreateSession in a moved project: %v", err)
	}
	if _, err := s.CreateSession(ctx, persistence.Session{UserID: a.user.ID, ProjectID: a.projects[1].ID}); !errors.Is(err, persistence.ErrNotFound) {
		t.Errorf("CreateSession for the old owner: %v; want ErrNotFound", err)
	}

	// A second anonymous user joins the same, existing registered user,
	// whose profile stays as it was.
	b := newAnonymousWithData(t, s)
	res, err = s.MigrateUser(ctx, b.user.ID, permanent.String())
	if err != nil {
		t.Fatalf("second MigrateUser: %v", err)
	}
	wantEqual(t, "second MigrateUser result", res, persistence.MigrationResult{Sessions: 3, Projects: 2, Dossiers: 1})
	if again, err := s.GetUser(ctx, permanent.String()); err != nil || !again.UpdatedAt.Equal(perm.UpdatedAt) {
		t.Errorf("existing registered user changed: %+v, %v", again, err)
	}
	// Two active sessions from each anonymous user, and the one created above.
	if got := ownedBy(t, s, permanent.String()); len(got.sessions) != 5 || len(got.dossiers) != 2 {
		t.Errorf("after two migrations the permanent user owns %+v", got)
	}

	// An anonymous user with nothing, into an existing anonymous user, which
	// becomes registered.
	empty, target := mustUser(t, s), mustUser(t, s)
	res, err = s.MigrateUser(ctx, empty.ID, target.ID)
	if err != nil || res != (persistence.MigrationResult{}) {
		t.Errorf("MigrateUser of an empty user = %+v, %v", res, err)
	}
	if got, err := s.GetUser(ctx, target.ID); err != nil || got.IsAnonymous || got.MigratedTo != "" {
		t.Errorf("anonymous permanent user after migration = %+v, %v", got, err)
	}
}

func testMigrateUserErrors(t *testing.T, open opener) {
	ctx := t.Context()
	s, _ := migrated(t, open)
	anon := mustUser(t, s)
	registered, err := s.UpsertUser(ctx, persistence.User{ID: uuid.NewString(), Email: "r@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	migratedUser, into := mustUser(t, s), uuid.NewString()
	if _, err := s.MigrateUser(ctx, migratedUser.ID, into); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name            string
		temp, permanent string
		want            error
	}{
		{"to itself", anon.ID, anon.ID, persistence.ErrInvalid},
		{"to itself in another case", anon.ID, strings.ToUpper(anon.ID), persistence.ErrInvalid},
		{"no temporary id", "", registered.ID, persistence.ErrInvalid},
		{"no permanent id", anon.ID, "", persistence.ErrInvalid},
		{"malformed permanent id", anon.ID, "not-a-uuid", persistence.ErrInvalid},
		{"malformed temporary id", "not-a-uuid", registered.ID, persistence.ErrNotFound},
		{"unknown temporary user", uuid.NewString(), registered.ID, persistence.ErrNotFound},
		{"registered temporary user", registered.ID, uuid.NewString(), persistence.ErrConflict},
		{"already migrated", migratedUser.ID, registered.ID, persistence.ErrConflict},
		{"already migrated, same target", migratedUser.ID, into, persistence.ErrConflict},
		{"into a migrated user", anon.ID, migratedUser.ID, persistence.ErrConflict},
	}
	for _, c := range cases {
		res, err := s.MigrateUser(ctx, c.temp, c.permanent)
		wantErr(t, c.name, err, c.want)
		if err != nil && res != (persistence.MigrationResult{}) {
			t.Errorf("%s: result %+v with an error", c.name, res)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "persistence: migrate user ") {
			t.Errorf("%s: error lacks the operation: %v", c.name, err)
		}
	}
	// None of the refusals changed anything.
	if got, err := s.GetUser(ctx, anon.ID); err != nil || got != anon {
		t.Errorf("anonymous user after refusals = %+v, %v; want %+v", got, err, anon)
	}
	if got, err := s.GetUser(ctx, migratedUser.ID); err != nil || got.MigratedTo != into || got.IsAnonymous != true {
		t.Errorf("migrated user after refusals = %+v, %v", got, err)
	}
}

// refuseDossierMove installs a trigger that fails any change of a dossier's
// owner: MigrateUser then fails on its third move, after it has moved the
// sessions and projects. It returns a function that removes the trigger.
func refuseDossierMove(t *testing.T, s store) (remove func()) {
	t.Helper()
	ctx := t.Context()
	var install, uninstall []string
	switch s.Kind() {
	case "postgres":
		install = []string{
			`CREATE FUNCTION refuse_dossier_move() RETURNS trigger LANGUAGE plpgsql AS
				$$BEGIN RAISE EXCEPTION 'dossier move refused'; END$$`,
			`CREATE TRIGGER refuse_dossier_move BEFORE UPDATE OF user_id ON dossiers
				FOR EACH ROW EXECUTE FUNCTION refuse_dossier_move()`,
		}
		uninstall = []string{`DROP TRIGGER refuse_dossier_move ON dossiers`, `DROP FUNCTION refuse_dossier_move()`}
	case "sqlite":
		install = []string{`CREATE TRIGGER refuse_dossier_move BEFORE UPDATE OF user_id ON dossiers
			BEGIN SELECT RAISE(ABORT, 'dossier move refused'); END`}
		uninstall = []string{`DROP TRIGGER refuse_dossier_move`}
	default:
		t.Fatalf("unknown store kind %q", s.Kind())
	}
	for _, q := range install {
		if err := persistence.ExecForTest(ctx, s, q); err != nil {
			t.Fatalf("install trigger: %v", err)
		}
	}
	return func() {
		t.Helper()
		for _, q := range uninstall {
			if err := persistence.ExecForTest(ctx, s, q); err != nil {
				t.Fatalf("remove trigger: %v", err)
			}
		}
	}
}

// testMigrateUserAtomic makes a migration fail after it has moved sessions
// and projects: nothing may have moved, and the permanent user it created
// must be gone.
func testMigrateUserAtomic(t *testing.T, open opener) {
	ctx := t.Context()
	s, _ := migrated(t, open)
	a := newAnonymousWithData(t, s)
	before := ownedBy(t, s, a.user.ID)
	permanent := uuid.NewString()

	remove := refuseDossierMove(t, s)
	res, err := s.MigrateUser(ctx, a.user.ID, permanent)
	if err == nil || !strings.Contains(err.Error(), "dossier move refused") {
		t.Fatalf("MigrateUser with a failing dossier move = %+v, %v; want the trigger's error", res, err)
	}
	a.wantOwner(t, s, "after a failed migration", a.user.ID)
	wantEqual(t, "owned after a failed migration", ownedBy(t, s, a.user.ID), before)
	if got, err := s.GetUser(ctx, a.user.ID); err != nil || got != a.user {
		t.Errorf("temporary user after a failed migration = %+v, %v; want %+v", got, err, a.user)
	}
	_, err = s.GetUser(ctx, permanent)
	wantErr(t, "permanent user after a failed migration", err, persistence.ErrNotFound)

	// Once the cause is gone, the same migration goes through.
	remove()
	res, err = s.MigrateUser(ctx, a.user.ID, permanent)
	if err != nil || res != (persistence.MigrationResult{Sessions: 3, Projects: 2, Dossiers: 1}) {
		t.Fatalf("MigrateUser after removing the trigger = %+v, %v", res, err)
	}
	a.wantOwner(t, s, "after the retried migration", permanent)
}

// testMigrateUserConcurrently races migrations of one anonymous user to
// different permanent users (two tabs signing in at once): exactly one
// wins, the others get ErrConflict, and every row belongs to the winner.
// Then it races migrations between two users in opposite directions, which
// must not deadlock.
func testMigrateUserConcurrently(t *testing.T, open opener) {
	ctx := t.Context()
	s, _ := migrated(t, open)
	a := newAnonymousWithData(t, s)
	before := ownedBy(t, s, a.user.ID)
	const n = 4
	targets := make([]string, n)
	results := make([]persistence.MigrationResult, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		targets[i] = uuid.NewString()
		wg.Go(func() {
			<-start
			results[i], errs[i] = s.MigrateUser(ctx, a.user.ID, targets[i])
		})
	}
	close(start)
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner < 0:
			winner = i
		case err == nil:
			t.Fatalf("migrations %d and %d both succeeded", winner, i)
		case !errors.Is(err, persistence.ErrConflict):
			t.Errorf("migration %d: %v; want ErrConflict", i, err)
		}
	}
	if winner < 0 {
		t.Fatalf("no migration succeeded: %v", errs)
	}
	wantEqual(t, "winner's result", results[winner], persistence.MigrationResult{Sessions: 3, Projects: 2, Dossiers: 1})
	a.wantOwner(t, s, "after concurrent migrations", targets[winner])
	wantEqual(t, "owned by the winner", ownedBy(t, s, targets[winner]), before)
	if got, err := s.GetUser(ctx, a.user.ID); err != nil || got.MigratedTo != targets[winner] {
		t.Errorf("temporary user = %+v, %v; want migrated to %s", got, err, targets[winner])
	}
	for i, target := range targets {
		if i == winner {
			continue
		}
		_, err := s.GetUser(ctx, target)
		wantErr(t, fmt.Sprintf("loser %d's permanent user", i), err, persistence.ErrNotFound)
	}

	// Opposite directions: whichever commits first makes the other a
	// migration of a registered or migrated user.
	for round := range 5 {
		x, y := mustUser(t, s), mustUser(t, s)
		var errXY, errYX error
		var wg sync.WaitGroup
		start := make(chan struct{})
		wg.Go(func() { <-start; _, errXY = s.MigrateUser(ctx, x.ID, y.ID) })
		wg.Go(func() { <-start; _, errYX = s.MigrateUser(ctx, y.ID, x.ID) })
		close(start)
		wg.Wait()
		if (errXY == nil) == (errYX == nil) {
			t.Fatalf("round %d: x->y %v, y->x %v; want exactly one success", round, errXY, errYX)
		}
		for _, err := range []error{errXY, errYX} {
			if err != nil && !errors.Is(err, persistence.ErrConflict) {
				t.Errorf("round %d: %v; want ErrConflict", round, err)
			}
		}
	}
}

func testListSessionsPage(t *testing.T, open opener) {
	ctx := t.Context()
	f := newFixture(t, open)
	for range 4 {
		mustSession(t, f.s, f.user.ID, f.project.ID)
	}
	// f.session is the oldest; a message brings it to the front with a title.
	msgs := appendN(t, f.s, f.session.ID, 3)
	inactive := mustSession(t, f.s, f.user.ID, f.project.ID)
	if err := f.s.DeactivateSession(ctx, inactive.ID); err != nil {
		t.Fatal(err)
	}
	all, err := f.s.ListSessions(ctx, f.user.ID)
	if err != nil || len(all) != 5 {
		t.Fatalf("ListSessions = %d sessions, %v; want 5", len(all), err)
	}
	first := all[0]
	if first.ID != f.session.ID || first.Title != "message 1" || first.MessageCount != 3 || !first.IsActive ||
		first.LastMessageAt == nil || !first.LastMessageAt.Equal(msgs[2].CreatedAt) {
		t.Errorf("first listed session = %+v; want %s titled from its first message, 3 messages, last at %v",
			first, f.session.ID, msgs[2].CreatedAt)
	}
	for _, x := range all {
		if x.ID == inactive.ID || x.UserID != f.user.ID {
			t.Errorf("ListSessions lists %+v", x)
		}
	}

	cases := []struct {
		limit, offset int
		want          []persistence.Session
	}{
		{2, 0, all[0:2]},
		{2, 2, all[2:4]},
		{2, 4, all[4:5]},
		{200, 0, all},
		{1, 4, all[4:5]},
		{3, 5, []persistence.Session{}},
		{1, 1000, []persistence.Session{}},
	}
	for _, c := range cases {
		got, err := f.s.ListSessionsPage(ctx, f.user.ID, c.limit, c.offset)
		if err != nil {
			t.Fatalf("ListSessionsPage(%d, %d): %v", c.limit, c.offset, err)
		}
		wantEqual(t, fmt.Sprintf("ListSessionsPage(%d, %d)", c.limit, c.offset), got, c.want)
	}
	_, err = f.s.ListSessionsPage(ctx, f.user.ID, 0, 0)
	wantErr(t, "limit 0", err, persistence.ErrInvalid)
	_, err = f.s.ListSessionsPage(ctx, f.user.ID, 10, -1)
	wantErr(t, "negative offset", err, persistence.ErrInvalid)
	for _, id := range []string{uuid.NewString(), "not-a-uuid"} {
		if got, err := f.s.ListSessionsPage(ctx, id, 10, 0); err != nil || got == nil || len(got) != 0 {
			t.Errorf("ListSessionsPage of %q = %v, %v; want empty", id, got, err)
		}
	}

	// The order follows the last message's time, not the time it was
	// stored: a message dated before every other session's creation moves
	// its session to the back, though it updated the session last.
	old := all[1]
	if _, _, err := f.s.AppendMessage(ctx, persistence.Message{
		SessionID: old.ID, Seq: 1, Role: persistence.RoleUser, Content: "imported",
		CreatedAt: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC),
	}); err != nil {
		t.Fatal(err)
	}
	got, err := f.s.ListSessionsPage(ctx, f.user.ID, 200, 0)
	if err != nil || len(got) != 5 || got[4].ID != old.ID || got[0].ID != f.session.ID {
		ids := []string{}
		for _, x := range got {
			ids = append(ids, x.ID)
		}
		t.Errorf("after an old-dated message: %v, %v; want %s last", ids, err, old.ID)
	}
}

func testDossierSummaries(t *testing.T, open opener) {
	ctx := t.Context()
	s, _ := migrated(t, open)
	u := mustUser(t, s)
	cases := []struct {
		name               string
		snapshot           string
		title              string // "" means the project's title
		characters, themes int
	}{
		{"empty", `{}`, "", 0, 0},
		{"full", `{"title":"Noir","characters":[{"name":"John"},{"name":"Mary"}],"themes":["Justice"]}`, "Noir", 2, 1},
		{"empty title and arrays", `{"title":"","characters":[],"themes":[]}`, "", 0, 0},
		{"not arrays", `{"characters":"many","themes":{"a":["x","y"]}}`, "", 0, 0},
		{"title not a string", `{"title":42,"characters":[null,null,null],"themes":[[],[1,2]]}`, "", 3, 2},
		{"title null", `{"title":null,"themes":["a","b","c","d"]}`, "", 0, 4},
		{"escaped unicode title", `{"title":"Épopée \"✓\" \\ \u00e9\n","characters":[1]}`, "Épopée \"✓\" \\ é\n", 1, 0},
		{"nested keys do not count", `{"dossier":{"title":"x","characters":[1],"themes":[1]}}`, "", 0, 0},
	}
	type want struct {
		title              string
		characters, themes int
	}
	wants := map[string]want{}
	var order []string // newest first
	for i, c := range cases {
		p, err := s.CreateProject(ctx, persistence.Project{UserID: u.ID, Title: fmt.Sprintf("Project %d", i)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreateDossier(ctx, persistence.Dossier{ProjectID: p.ID, UserID: u.ID, Snapshot: json.RawMessage(c.snapshot)},
			persistence.DossierVersion{Source: persistence.SourceUser}); err != nil {
			t.Fatalf("%s: CreateDossier: %v", c.name, err)
		}
		title := c.title
		if title == "" {
			title = p.Title
		}
		wants[p.ID] = want{title, c.characters, c.themes}
		order = append([]string{p.ID}, order...)
	}
	// A project without a dossier is not listed.
	mustProject(t, s, u.ID)

	check := func(what string) {
		t.Helper()
		got, err := s.ListDossierSummaries(ctx, u.ID)
		if err != nil {
			t.Fatalf("%s: ListDossierSummaries: %v", what, err)
		}
		full, err := s.ListDossiers(ctx, u.ID)
		if err != nil || len(full) != len(got) {
			t.Fatalf("%s: ListDossiers = %d, %v; want %d", what, len(full), err, len(got))
		}
		ids := []string{}
		for i, d := range got {
			ids = append(ids, d.ProjectID)
			w := wants[d.ProjectID]
			wantEqual(t, what+": summary of "+d.ProjectID,
				want{d.Title, d.CharacterCount, d.ThemeCount}, w)
			f := full[i]
			if d.ProjectID != f.ProjectID || d.UserID != u.ID || d.Version != f.Version ||
				!d.CreatedAt.Equal(f.CreatedAt) || !d.UpdatedAt.Equal(f.UpdatedAt) {
				t.Errorf("%s: summary %+v does not match dossier %+v", what, d, f)
			}
			wantUTC(t, what, d.CreatedAt, d.UpdatedAt)
		}
		wantEqual(t, what+": order", ids, order)
	}
	check("created")

	// An update changes the counts and moves the dossier to the front.
	last := order[len(order)-1]
	if _, err := s.UpdateDossier(ctx, last, 1, json.RawMessage(`{"title":"Renamed","characters":[1,2,3,4,5]}`),
		persistence.DossierVersion{Source: persistence.SourceExtraction}); err != nil {
		t.Fatal(err)
	}
	wants[last] = want{"Renamed", 5, 0}
	order = append([]string{last}, order[:len(order)-1]...)
	check("updated")

	for _, id := range []string{uuid.NewString(), "not-a-uuid"} {
		if got, err := s.ListDossierSummaries(ctx, id); err != nil || got == nil || len(got) != 0 {
			t.Errorf("ListDossierSummaries of %q = %v, %v; want empty", id, got, err)
		}
	}
}
