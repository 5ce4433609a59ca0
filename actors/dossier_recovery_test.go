package actors

// Tests of the dossier actor's durable batch: turns waiting for extraction
// are read back from the store (after each session's cursor) when the actor
// activates, so a restart loses none and extracts none twice.

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/google/uuid"

	"github.com/storyd/storyd/llm"
	"github.com/storyd/storyd/persistence"
	"github.com/storyd/storyd/story"
)

// openTestStore opens a migrated SQLite store that outlives the Sessions
// started over it, as a database outlives a server process.
func openTestStore(t testing.TB) *persistence.SQLite {
	t.Helper()
	store, err := persistence.OpenSQLite(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return store
}

// startSessions starts Sessions over store; stop shuts them down (a server
// stopping), and runs at cleanup if the test did not call it.
func startSessions(t testing.TB, store Store, model ChatModel, tweak func(*Config)) (s *Sessions, stop func()) {
	t.Helper()
	cfg := Config{Store: store, Model: model}
	if tweak != nil {
		tweak(&cfg)
	}
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.DiscardHandler)
	}))
	s, err := NewSessions(system, cfg)
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		system.Shutdown()
	}
	t.Cleanup(stop)
	return s, stop
}

// chatIn sends one chat in a session (or a new session of projectID) and
// waits for its reply.
func chatIn(t *testing.T, s *Sessions, user, sessionID, projectID, text string) ChatAccepted {
	t.Helper()
	rec := newRecorder()
	acc, err := s.Chat(ctx(t), ChatRequest{UserID: user, SessionID: sessionID, ProjectID: projectID, Text: text, Subscriber: rec})
	if err != nil {
		t.Fatal(err)
	}
	rec.untilDone(t)
	return acc
}

// request returns the i-th extraction request.
func (f *fakeExtractor) request(i int) llm.ExtractRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reqs[i]
}

func users(req llm.ExtractRequest) []string {
	var out []string
	for _, t := range req.Turns {
		out = append(out, t.User)
	}
	return out
}

// waitCursors polls the store until the project has cursors for exactly
// the sessions of want, each at least at its seq.
func waitCursors(t *testing.T, store Store, projectID string, want map[string]int64) {
	t.Helper()
	var got map[string]int64
	eventually(t, "cursors", func() bool {
		cs, err := store.DossierCursors(ctx(t), projectID)
		if err != nil {
			t.Fatal(err)
		}
		got = map[string]int64{}
		for _, c := range cs {
			got[c.SessionID] = c.ExtractedSeq
		}
		for id, seq := range want {
			if got[id] < seq {
				return false
			}
		}
		return len(got) == len(want)
	})
}

func lastSeq(t *testing.T, store Store, sessionID string) int64 {
	t.Helper()
	sess, err := store.GetSession(ctx(t), sessionID)
	if err != nil {
		t.Fatal(err)
	}
	return sess.LastSeq
}

func TestDossierPendingTurnsSurviveRestart(t *testing.T) {
	store := openTestStore(t)
	ex1 := newFakeExtractor()
	s1, stop1 := startSessions(t, store, newFakeModel(), func(c *Config) {
		c.Extractor, c.ExtractTurns, c.ExtractTokens, c.After = ex1, 10, 1_000_000, (&fakeClock{}).After
	})
	user := uuid.NewString()
	a := chatIn(t, s1, user, "", "", "My grandmother Ada kept a lighthouse")
	chatIn(t, s1, user, a.SessionID, "", "Tom brings the mail on Sundays")
	b := chatIn(t, s1, user, "", a.ProjectID, "Mei sails to the island") // a second session of the project
	// The server stops with the three turns waiting for the idle timer.
	stop1()
	if ex1.calls() != 0 {
		t.Fatalf("%d extractions before the restart", ex1.calls())
	}

	ex2 := newFakeExtractor(chars("Ada", "Tom", "Mei"))
	s2, _ := startSessions(t, store, newFakeModel(), func(c *Config) {
		c.Extractor, c.ExtractTurns, c.ExtractTokens, c.After = ex2, 4, 1_000_000, (&fakeClock{}).After
	})
	// The next turn activates the dossier actor, which reads the old
	// turns back, and makes the batch of four.
	chatIn(t, s2, user, a.SessionID, "", "The storm comes in October")
	<-ex2.called
	req := ex2.request(0)
	want := []string{"My grandmother Ada kept a lighthouse", "Tom brings the mail on Sundays",
		"Mei sails to the island", "The storm comes in October"}
	if got := users(req); !slices.Equal(got, want) {
		t.Fatalf("extraction after the restart saw %q, want %q (each once)", got, want)
	}
	for _, turn := range req.Turns {
		if turn.Assistant != "Tell me more." {
			t.Fatalf("turn %q lost its reply: %q", turn.User, turn.Assistant)
		}
	}
	// The live copy of the last turn was a duplicate of the one read back.
	if st := s2.Stats(); st.Recovered != 4 {
		t.Fatalf("recovered %d turns, want 4", st.Recovered)
	}
	// The version and the cursors past every turn are stored together.
	waitCursors(t, store, a.ProjectID, map[string]int64{a.SessionID: lastSeq(t, store, a.SessionID), b.SessionID: lastSeq(t, store, b.SessionID)})
	d, err := store.GetDossier(ctx(t), a.ProjectID)
	if err != nil || d.Version != 1 {
		t.Fatalf("dossier %+v, %v", d, err)
	}
	if ex2.calls() != 1 {
		t.Fatalf("%d extractions, want 1", ex2.calls())
	}
}

func TestDossierExtractedBatchIsNotExtractedAgain(t *testing.T) {
	cases := []struct {
		name     string
		results  []story.Snapshot // the first run's extractor answers
		calls    int              // its model calls
		failures int64
		version  int // the dossier version the first run leaves
	}{
		{"a version was written", []story.Snapshot{chars("Ada")}, 1, 0, 1},
		{"the merge changed nothing", []story.Snapshot{{}}, 1, 0, 0},
		{"the model failed twice", nil, 2, 1, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			store := openTestStore(t)
			ex1 := newFakeExtractor(tc.results...)
			s1, stop1 := startSessions(t, store, newFakeModel(), func(c *Config) {
				c.Extractor, c.ExtractTurns, c.ExtractTokens, c.After = ex1, 2, 1_000_000, (&fakeClock{}).After
			})
			user := uuid.NewString()
			a := chatIn(t, s1, user, "", "", "My grandmother Ada kept a lighthouse")
			second := chatIn(t, s1, user, a.SessionID, "", "Tom brings the mail")
			// The batch is done: the cursor moved past both turns. (Past
			// the second's reply too, unless the dossier actor read that
			// turn from the store while its reply was in flight.)
			waitCursors(t, store, a.ProjectID, map[string]int64{a.SessionID: second.Seq})
			stop1()
			if ex1.calls() != tc.calls || s1.Stats().Failures != tc.failures {
				t.Fatalf("%d calls, %d failures; want %d, %d", ex1.calls(), s1.Stats().Failures, tc.calls, tc.failures)
			}
			d, err := store.GetDossier(ctx(t), a.ProjectID)
			if got := d.Version; (err == nil) != (tc.version > 0) || got != tc.version {
				t.Fatalf("dossier version %d (%v), want %d", got, err, tc.version)
			}

			ex2 := newFakeExtractor(chars("Mei"))
			s2, _ := startSessions(t, store, newFakeModel(), func(c *Config) {
				c.Extractor, c.ExtractTurns, c.After = ex2, 1, (&fakeClock{}).After
			})
			chatIn(t, s2, user, a.SessionID, "", "Mei sails to the island")
			<-ex2.called
			if got := users(ex2.request(0)); !slices.Equal(got, []string{"Mei sails to the island"}) {
				t.Fatalf("after the restart the model saw %q; only the new turn is new", got)
			}
			if st := s2.Stats(); st.Recovered != 1 {
				t.Fatalf("recovered %d turns, want 1 (the new one, also live)", st.Recovered)
			}
		})
	}
}

func TestDossierLiveTurnReplacesItsRecoveredCopy(t *testing.T) {
	gate := make(chan struct{})
	model := newFakeModel(reply{tokens: []string{"Who ", "was ", "Ada?"}, gate: gate})
	ex := newFakeExtractor(chars("Ada"))
	s, store := newTestSessions(t, model, func(c *Config) {
		c.Extractor, c.ExtractTurns, c.ExtractTokens, c.After = ex, 10, 1_000_000, (&fakeClock{}).After
	})
	user := uuid.NewString()
	rec := newRecorder()
	acc, err := s.Chat(ctx(t), ChatRequest{UserID: user, Text: "My grandmother Ada kept a lighthouse", Subscriber: rec})
	if err != nil {
		t.Fatal(err)
	}
	<-model.started // the reply is in flight, not stored
	// A person's edit activates the dossier actor: it reads the user
	// message back from the store, without a reply.
	if _, err := s.EditDossier(ctx(t), DossierEdit{UserID: user, ProjectID: acc.ProjectID, Create: true, Snapshot: chars("Mei")}); err != nil {
		t.Fatal(err)
	}
	close(gate)
	rec.untilDone(t)
	// The session actor handed the turn over before its done event; the
	// refresh comes after it, through the same mailboxes.
	started, err := s.RefreshDossier(ctx(t), user, acc.ProjectID)
	if err != nil || !started {
		t.Fatalf("refresh: %v, %v", started, err)
	}
	<-ex.called
	req := ex.request(0)
	if len(req.Turns) != 1 || req.Turns[0].User != "My grandmother Ada kept a lighthouse" || req.Turns[0].Assistant != "Who was Ada?" {
		t.Fatalf("extraction saw %+v; want the turn once, with its reply", req.Turns)
	}
	waitCursors(t, store, acc.ProjectID, map[string]int64{acc.SessionID: lastSeq(t, store, acc.SessionID)})
	if started, err := s.RefreshDossier(ctx(t), user, acc.ProjectID); err != nil || started {
		t.Fatalf("second refresh: %v, %v; nothing should be pending", started, err)
	}
	if n := ex.calls(); n != 1 {
		t.Fatalf("%d extractions, want 1", n)
	}
}

// A backlog is read and extracted in bounded pieces, oldest first, and
// none of it is skipped: reads of at most RecoverTurns turns, batches of at
// most MaxBatchTokens, until the store has nothing left.
func TestDossierRecoveryIsBounded(t *testing.T) {
	texts := []string{"turn one!", "turn two!", "turn 3333", "turn four", "turn five", "turn six!"}
	perTurn := turnTokens(texts[0], "Tell me more.")
	cases := []struct {
		name     string
		turns    int // Config.RecoverTurns
		tokens   int // Config.MaxBatchTokens
		maxBatch int
	}{
		{"reads of 3", 3, 1_000_000, 3},
		{"batches of 2", 100, 2 * perTurn, 2},
		{"a turn over the budget alone", 100, 1, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			store := openTestStore(t)
			// A server without extraction stored six turns nobody extracted.
			s1, stop1 := startSessions(t, store, newFakeModel(), nil)
			user := uuid.NewString()
			acc := chatIn(t, s1, user, "", "", texts[0])
			for _, text := range texts[1:] {
				chatIn(t, s1, user, acc.SessionID, "", text)
			}
			stop1()

			ex := newFakeExtractor(chars("Ada"), chars("Tom"), chars("Mei"), chars("Eli"), chars("Jun"), chars("Amos"))
			s2, _ := startSessions(t, store, newFakeModel(), func(c *Config) {
				c.Extractor, c.After, c.RecoverTurns, c.MaxBatchTokens = ex, (&fakeClock{}).After, tc.turns, tc.tokens
				c.ExtractTurns = 1 // every read is due at once
			})
			if _, err := s2.WakeDossiers(ctx(t), 10); err != nil {
				t.Fatal(err)
			}
			eventually(t, "the backlog to drain", func() bool {
				left, err := store.PendingTurns(ctx(t), acc.ProjectID, 100)
				return err == nil && len(left) == 0
			})
			var got []string
			for i := range ex.calls() {
				batch := users(ex.request(i))
				if len(batch) > tc.maxBatch {
					t.Errorf("batch %d holds %d turns, over %d", i, len(batch), tc.maxBatch)
				}
				got = append(got, batch...)
			}
			if !slices.Equal(got, texts) {
				t.Fatalf("extracted %q, want %q once each, oldest first", got, texts)
			}
			waitCursors(t, store, acc.ProjectID, map[string]int64{acc.SessionID: lastSeq(t, store, acc.SessionID)})
		})
	}
}

// TestDossierBatchAcrossSessions: a batch's turns can come from sessions
// whose seqs are unrelated (here a later turn of one session, then the
// first of another); its version still gets a valid seq range.
func TestDossierBatchAcrossSessions(t *testing.T) {
	ex := newFakeExtractor(chars("Ada"), chars("Ada", "Mei"))
	s, store := newTestSessions(t, newFakeModel(), func(c *Config) {
		c.Extractor, c.ExtractTurns, c.ExtractTokens, c.After = ex, 2, 1_000_000, (&fakeClock{}).After
	})
	user := uuid.NewString()
	a := chatIn(t, s, user, "", "", "My grandmother Ada kept a lighthouse")
	chatIn(t, s, user, a.SessionID, "", "Tom brings the mail")
	<-ex.called
	late := chatIn(t, s, user, a.SessionID, "", "The storm comes")
	b := chatIn(t, s, user, "", a.ProjectID, "Mei sails to the island")
	<-ex.called
	eventually(t, "version 2", func() bool {
		d, err := store.GetDossier(ctx(t), a.ProjectID)
		return err == nil && d.Version == 2
	})
	v, err := store.GetDossierVersion(ctx(t), a.ProjectID, 2)
	if err != nil {
		t.Fatal(err)
	}
	if v.SeqFrom != b.Seq || v.SeqTo != lastSeq(t, store, a.SessionID) || late.Seq <= v.SeqFrom {
		t.Fatalf("version 2 covers seqs %d..%d", v.SeqFrom, v.SeqTo)
	}
	waitCursors(t, store, a.ProjectID, map[string]int64{a.SessionID: lastSeq(t, store, a.SessionID), b.SessionID: lastSeq(t, store, b.SessionID)})
}

// A starting server wakes the dossier actors of projects with turns left
// unextracted: their batch follows the batching rules without waiting for
// the project's next turn.
func TestWakeDossiersAfterRestart(t *testing.T) {
	store := openTestStore(t)
	s1, stop1 := startSessions(t, store, newFakeModel(), func(c *Config) {
		c.Extractor, c.ExtractTurns, c.ExtractTokens, c.After = newFakeExtractor(), 10, 1_000_000, (&fakeClock{}).After
	})
	user := uuid.NewString()
	a := chatIn(t, s1, user, "", "", "My grandmother Ada kept a lighthouse")
	chatIn(t, s1, user, "", "", "A heist in Taipei") // a second project
	stop1()

	ex := newFakeExtractor(chars("Ada"), chars("Mei"))
	clock := &fakeClock{}
	s2, _ := startSessions(t, store, newFakeModel(), func(c *Config) {
		c.Extractor, c.ExtractTurns, c.ExtractTokens, c.After = ex, 10, 1_000_000, clock.After
	})
	n, err := s2.WakeDossiers(ctx(t), 100)
	if err != nil || n != 2 {
		t.Fatalf("woke %d, %v; want the 2 projects", n, err)
	}
	// One turn each is below the batch size: the idle timers extract them.
	eventually(t, "two idle timers", func() bool { return clock.Pending() == 2 })
	clock.Fire()
	eventually(t, "both extracted", func() bool { return ex.calls() == 2 })
	eventually(t, "the dossier of the first project", func() bool {
		d, err := store.GetDossier(ctx(t), a.ProjectID)
		return err == nil && d.Version == 1
	})
	// Nothing is left to wake.
	eventually(t, "the cursors to move", func() bool {
		ids, err := store.ProjectsWithPendingTurns(ctx(t), 100)
		return err == nil && len(ids) == 0
	})
	if n, err := s2.WakeDossiers(ctx(t), 100); err != nil || n != 0 {
		t.Fatalf("woke %d again, %v", n, err)
	}
}
