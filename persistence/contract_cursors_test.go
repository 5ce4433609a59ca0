package persistence_test

// Contract tests of the dossier extraction cursors (migration 00004):
// AdvanceDossierCursors, DossierCursors, PendingTurns and SaveExtraction.

import (
	"encoding/json"
	"testing"

	"github.com/google/uuid"

	"github.com/storyd/storyd/persistence"
)

// appendTurn stores a user message at seq and, unless replyStatus is "",
// a reply spanning seq+1..seq+3; it returns the user message.
func appendTurn(t *testing.T, s store, sessionID string, seq int64, user, reply, replyStatus string) persistence.Message {
	t.Helper()
	u, _, err := s.AppendMessage(t.Context(), persistence.Message{SessionID: sessionID, Seq: seq, Role: persistence.RoleUser, Content: user})
	if err != nil {
		t.Fatalf("append user message %d: %v", seq, err)
	}
	if replyStatus != "" {
		if _, _, err := s.AppendMessage(t.Context(), persistence.Message{SessionID: sessionID, Seq: seq + 1, EndSeq: seq + 3,
			TurnID: u.ID, Role: persistence.RoleAssistant, Content: reply, Status: replyStatus}); err != nil {
			t.Fatalf("append reply %d: %v", seq+1, err)
		}
	}
	return u
}

func cursorMap(t *testing.T, s store, projectID string) map[string]int64 {
	t.Helper()
	cs, err := s.DossierCursors(t.Context(), projectID)
	if err != nil {
		t.Fatalf("DossierCursors: %v", err)
	}
	out := map[string]int64{}
	for _, c := range cs {
		if c.ProjectID != projectID || c.UpdatedAt.IsZero() {
			t.Errorf("cursor %+v", c)
		}
		out[c.SessionID] = c.ExtractedSeq
	}
	return out
}

func testDossierCursors(t *testing.T, open opener) {
	ctx := t.Context()
	f := newFixture(t, open)
	other := mustSession(t, f.s, f.user.ID, f.project.ID)
	wantEqual(t, "no cursors", cursorMap(t, f.s, f.project.ID), map[string]int64{})

	if err := f.s.AdvanceDossierCursors(ctx, f.project.ID, map[string]int64{f.session.ID: 7, other.ID: 3}); err != nil {
		t.Fatalf("AdvanceDossierCursors: %v", err)
	}
	wantEqual(t, "cursors", cursorMap(t, f.s, f.project.ID), map[string]int64{f.session.ID: 7, other.ID: 3})
	// Forward only: a lower seq leaves the cursor; upper-case ids name the
	// same session.
	if err := f.s.AdvanceDossierCursors(ctx, f.project.ID, map[string]int64{f.session.ID: 5, uppercase(other.ID): 9}); err != nil {
		t.Fatalf("AdvanceDossierCursors again: %v", err)
	}
	wantEqual(t, "cursors after a lower seq", cursorMap(t, f.s, f.project.ID), map[string]int64{f.session.ID: 7, other.ID: 9})
	if err := f.s.AdvanceDossierCursors(ctx, f.project.ID, nil); err != nil {
		t.Fatalf("AdvanceDossierCursors of nothing: %v", err)
	}

	// A session of another project, an unknown one or a malformed id is
	// not found, and the call writes nothing at all.
	elsewhere := mustSession(t, f.s, f.user.ID, mustProject(t, f.s, f.user.ID).ID)
	for _, c := range []struct {
		what    string
		project string
		seqs    map[string]int64
		want    error
	}{
		{"another project's session", f.project.ID, map[string]int64{f.session.ID: 50, elsewhere.ID: 1}, persistence.ErrNotFound},
		{"unknown session", f.project.ID, map[string]int64{f.session.ID: 50, uuid.NewString(): 1}, persistence.ErrNotFound},
		{"malformed session id", f.project.ID, map[string]int64{"nope": 1}, persistence.ErrNotFound},
		{"malformed project id", "nope", map[string]int64{f.session.ID: 50}, persistence.ErrNotFound},
		{"unknown project", uuid.NewString(), map[string]int64{f.session.ID: 50}, persistence.ErrNotFound},
		{"negative seq", f.project.ID, map[string]int64{f.session.ID: -1}, persistence.ErrInvalid},
	} {
		wantErr(t, "AdvanceDossierCursors: "+c.what, f.s.AdvanceDossierCursors(ctx, c.project, c.seqs), c.want)
	}
	wantEqual(t, "cursors after refused calls", cursorMap(t, f.s, f.project.ID), map[string]int64{f.session.ID: 7, other.ID: 9})
	if cs, err := f.s.DossierCursors(ctx, "nope"); err != nil || len(cs) != 0 {
		t.Errorf("DossierCursors of a malformed id = %v, %v", cs, err)
	}

	// A cursor goes with its session.
	if err := persistence.ExecForTest(ctx, f.s, `DELETE FROM chat_sessions WHERE id = '`+other.ID+`'`); err != nil {
		t.Fatal(err)
	}
	wantEqual(t, "cursors after the session is gone", cursorMap(t, f.s, f.project.ID), map[string]int64{f.session.ID: 7})
}

func uppercase(id string) string {
	b := []byte(id)
	for i, c := range b {
		if c >= 'a' && c <= 'f' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

func testPendingTurns(t *testing.T, open opener) {
	ctx := t.Context()
	f := newFixture(t, open)
	a, b := f.session, mustSession(t, f.s, f.user.ID, f.project.ID)
	pending := func(limit int) []persistence.PendingTurn {
		t.Helper()
		got, err := f.s.PendingTurns(ctx, f.project.ID, limit)
		if err != nil {
			t.Fatalf("PendingTurns: %v", err)
		}
		return got
	}
	wantEqual(t, "pending of an empty project", pending(10), []persistence.PendingTurn{})

	a1 := appendTurn(t, f.s, a.ID, 1, "Ada keeps the light", "Tell me about Ada.", persistence.StatusComplete)
	b1 := appendTurn(t, f.s, b.ID, 1, "Tom brings the mail", "", persistence.StatusFailed)
	a5 := appendTurn(t, f.s, a.ID, 5, "The storm comes", "", "") // its reply is not stored
	b5 := appendTurn(t, f.s, b.ID, 5, "Mei sails", "And then?", persistence.StatusCancelled)
	// Noise: a system message, another project's session and a deleted
	// session. (A session of the project always has the project's owner:
	// CreateSession refuses anyone else, MigrateUser moves both.)
	if _, _, err := f.s.AppendMessage(ctx, persistence.Message{SessionID: a.ID, Seq: 9, Role: persistence.RoleSystem, Content: "sys"}); err != nil {
		t.Fatal(err)
	}
	appendTurn(t, f.s, mustSession(t, f.s, f.user.ID, mustProject(t, f.s, f.user.ID).ID).ID, 1, "elsewhere", "x", persistence.StatusComplete)
	deleted := mustSession(t, f.s, f.user.ID, f.project.ID)
	appendTurn(t, f.s, deleted.ID, 1, "deleted", "x", persistence.StatusComplete)
	if err := f.s.DeactivateSession(ctx, deleted.ID); err != nil {
		t.Fatal(err)
	}

	turn := func(u persistence.Message, seqTo int64, assistant, status string) persistence.PendingTurn {
		return persistence.PendingTurn{SessionID: u.SessionID, UserMessageID: u.ID, SeqFrom: u.Seq, SeqTo: seqTo,
			User: u.Content, Assistant: assistant, ReplyStatus: status, CreatedAt: u.CreatedAt}
	}
	all := []persistence.PendingTurn{
		turn(a1, 4, "Tell me about Ada.", persistence.StatusComplete),
		turn(b1, 4, "", persistence.StatusFailed),
		turn(a5, 5, "", ""),
		turn(b5, 8, "And then?", persistence.StatusCancelled),
	}
	wantEqual(t, "pending turns, oldest first", pending(10), all)
	wantEqual(t, "the oldest 3", pending(3), all[:3])

	// The cursor hides what extraction read, per session.
	if err := f.s.AdvanceDossierCursors(ctx, f.project.ID, map[string]int64{a.ID: 4, b.ID: 8}); err != nil {
		t.Fatal(err)
	}
	wantEqual(t, "pending after the cursors", pending(10), []persistence.PendingTurn{all[2]})
	// A reply stored later still belongs to its turn.
	if _, _, err := f.s.AppendMessage(ctx, persistence.Message{SessionID: a.ID, Seq: 6, EndSeq: 7, TurnID: a5.ID,
		Role: persistence.RoleAssistant, Content: "Go on."}); err != nil {
		t.Fatal(err)
	}
	wantEqual(t, "pending with the late reply", pending(10), []persistence.PendingTurn{turn(a5, 7, "Go on.", persistence.StatusComplete)})

	_, err := f.s.PendingTurns(ctx, f.project.ID, 0)
	wantErr(t, "PendingTurns limit 0", err, persistence.ErrInvalid)
	for _, id := range []string{"nope", uuid.NewString()} {
		if got, err := f.s.PendingTurns(ctx, id, 10); err != nil || len(got) != 0 {
			t.Errorf("PendingTurns(%q) = %v, %v", id, got, err)
		}
	}
}

func testSaveExtraction(t *testing.T, open opener) {
	ctx := t.Context()
	f := newFixture(t, open)
	src := persistence.DossierVersion{Source: persistence.SourceExtraction, SeqFrom: 1, SeqTo: 4}
	d := persistence.Dossier{ProjectID: f.project.ID, UserID: f.user.ID, Snapshot: json.RawMessage(`{"title":"Gull Rock"}`)}

	// Version 1 and the cursor commit together.
	d1, err := f.s.SaveExtraction(ctx, d, 0, src, map[string]int64{f.session.ID: 4})
	if err != nil || d1.Version != 1 {
		t.Fatalf("SaveExtraction create = %+v, %v", d1, err)
	}
	wantEqual(t, "cursor after create", cursorMap(t, f.s, f.project.ID), map[string]int64{f.session.ID: 4})
	d2, err := f.s.SaveExtraction(ctx, d, 1, src, map[string]int64{f.session.ID: 9})
	if err != nil || d2.Version != 2 {
		t.Fatalf("SaveExtraction update = %+v, %v", d2, err)
	}
	wantEqual(t, "cursor after update", cursorMap(t, f.s, f.project.ID), map[string]int64{f.session.ID: 9})

	// Neither commits without the other.
	elsewhere := mustSession(t, f.s, f.user.ID, mustProject(t, f.s, f.user.ID).ID)
	_, err = f.s.SaveExtraction(ctx, d, 1, src, map[string]int64{f.session.ID: 20})
	wantErr(t, "SaveExtraction stale", err, persistence.ErrConflict)
	_, err = f.s.SaveExtraction(ctx, d, 2, src, map[string]int64{f.session.ID: 20, elsewhere.ID: 1})
	wantErr(t, "SaveExtraction with another project's session", err, persistence.ErrNotFound)
	_, err = f.s.SaveExtraction(ctx, d, 2, src, map[string]int64{f.session.ID: -2})
	wantErr(t, "SaveExtraction negative seq", err, persistence.ErrInvalid)
	if got, err := f.s.GetDossier(ctx, f.project.ID); err != nil || got.Version != 2 {
		t.Errorf("dossier after refused saves = %+v, %v", got, err)
	}
	wantEqual(t, "cursor after refused saves", cursorMap(t, f.s, f.project.ID), map[string]int64{f.session.ID: 9})
	// A create refused keeps the cursor too.
	p2 := mustProject(t, f.s, f.user.ID)
	s2 := mustSession(t, f.s, f.user.ID, p2.ID)
	_, err = f.s.SaveExtraction(ctx, persistence.Dossier{ProjectID: p2.ID, UserID: mustUser(t, f.s).ID}, 0, src, map[string]int64{s2.ID: 3})
	wantErr(t, "SaveExtraction create for a stranger", err, persistence.ErrNotFound)
	wantEqual(t, "cursor of a refused create", cursorMap(t, f.s, p2.ID), map[string]int64{})
}

// testDossierCursorsBackfill checks that migration 00004 counts what was
// stored before it as read, so an upgrade does not re-extract histories.
func testDossierCursorsBackfill(t *testing.T, open opener) {
	ctx := t.Context()
	s := open(t, persistence.WithClock(newClock().Now))
	if err := persistence.MigrateUpToForTest(ctx, s, 3); err != nil {
		t.Fatalf("migrate to 3: %v", err)
	}
	u := mustUser(t, s)
	p := mustProject(t, s, u.ID)
	old := mustSession(t, s, u.ID, p.ID)
	empty := mustSession(t, s, u.ID, p.ID)
	appendTurn(t, s, old.ID, 1, "before the upgrade", "ok", persistence.StatusComplete)
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	wantEqual(t, "backfilled cursors", cursorMap(t, s, p.ID), map[string]int64{old.ID: 4, empty.ID: 0})
	if got, err := s.PendingTurns(ctx, p.ID, 10); err != nil || len(got) != 0 {
		t.Errorf("PendingTurns after the upgrade = %v, %v", got, err)
	}
	after := appendTurn(t, s, old.ID, 5, "after the upgrade", "", "")
	got, err := s.PendingTurns(ctx, p.ID, 10)
	if err != nil || len(got) != 1 || got[0].UserMessageID != after.ID {
		t.Errorf("PendingTurns of a new turn = %v, %v", got, err)
	}
}

func testProjectsWithPendingTurns(t *testing.T, open opener) {
	ctx := t.Context()
	f := newFixture(t, open)
	projects := func() []string {
		t.Helper()
		got, err := f.s.ProjectsWithPendingTurns(ctx, 10)
		if err != nil {
			t.Fatalf("ProjectsWithPendingTurns: %v", err)
		}
		return got
	}
	wantEqual(t, "a store without turns", projects(), []string{})
	appendTurn(t, f.s, f.session.ID, 1, "Ada keeps the light", "Tell me more.", persistence.StatusComplete)
	// Not pending: a session with only a system message, a deleted session.
	quiet := mustSession(t, f.s, f.user.ID, mustProject(t, f.s, f.user.ID).ID)
	if _, _, err := f.s.AppendMessage(ctx, persistence.Message{SessionID: quiet.ID, Seq: 1, Role: persistence.RoleSystem, Content: "sys"}); err != nil {
		t.Fatal(err)
	}
	gone := mustSession(t, f.s, f.user.ID, mustProject(t, f.s, f.user.ID).ID)
	appendTurn(t, f.s, gone.ID, 1, "deleted", "x", persistence.StatusComplete)
	if err := f.s.DeactivateSession(ctx, gone.ID); err != nil {
		t.Fatal(err)
	}
	wantEqual(t, "the project with a turn", projects(), []string{f.project.ID})
	if err := f.s.AdvanceDossierCursors(ctx, f.project.ID, map[string]int64{f.session.ID: 4}); err != nil {
		t.Fatal(err)
	}
	wantEqual(t, "after its cursor moved", projects(), []string{})
	appendTurn(t, f.s, f.session.ID, 5, "The storm comes", "", "")
	wantEqual(t, "a new turn after the cursor", projects(), []string{f.project.ID})
	_, err := f.s.ProjectsWithPendingTurns(ctx, 0)
	wantErr(t, "limit 0", err, persistence.ErrInvalid)
}
