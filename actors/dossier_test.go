package actors

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/storyd/storyd/llm"
	"github.com/storyd/storyd/persistence"
	"github.com/storyd/storyd/story"
)

// fakeClock collects the timers the dossier actor sets; Fire runs them.
type fakeClock struct {
	mu     sync.Mutex
	timers []func()
}

func (c *fakeClock) After(_ time.Duration, f func()) func() {
	c.mu.Lock()
	defer c.mu.Unlock()
	i := len(c.timers)
	c.timers = append(c.timers, f)
	return func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.timers[i] = nil
	}
}

// Fire runs every timer still set.
func (c *fakeClock) Fire() {
	c.mu.Lock()
	var due []func()
	for i, f := range c.timers {
		if f != nil {
			due = append(due, f)
			c.timers[i] = nil
		}
	}
	c.mu.Unlock()
	for _, f := range due {
		f()
	}
}

// Pending counts the timers set and not fired or stopped.
func (c *fakeClock) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, f := range c.timers {
		if f != nil {
			n++
		}
	}
	return n
}

// fakeExtractor returns scripted snapshots and records the requests.
type fakeExtractor struct {
	mu       sync.Mutex
	reqs     []llm.ExtractRequest
	results  []story.Snapshot
	gate     chan struct{} // when set, each call waits for it
	inFlight int
	maxIn    int
	called   chan struct{}
}

func newFakeExtractor(results ...story.Snapshot) *fakeExtractor {
	return &fakeExtractor{results: results, called: make(chan struct{}, 64)}
}

func (f *fakeExtractor) Extract(ctx context.Context, req llm.ExtractRequest) (llm.ExtractResult, error) {
	f.mu.Lock()
	n := len(f.reqs)
	f.reqs = append(f.reqs, req)
	f.inFlight++
	f.maxIn = max(f.maxIn, f.inFlight)
	gate := f.gate
	f.mu.Unlock()
	f.called <- struct{}{}
	defer func() {
		f.mu.Lock()
		f.inFlight--
		f.mu.Unlock()
	}()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return llm.ExtractResult{}, ctx.Err()
		}
	}
	if n < len(f.results) {
		return llm.ExtractResult{Snapshot: f.results[n], PromptTokens: 100}, nil
	}
	return llm.ExtractResult{}, errors.New("no more scripted results")
}

func (f *fakeExtractor) calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.reqs)
}

func chars(names ...string) story.Snapshot {
	var s story.Snapshot
	for _, n := range names {
		s.Characters = append(s.Characters, story.Character{Name: n, Description: "someone called " + n})
	}
	return s
}

// chatTurn sends one chat and waits for its reply.
func chatTurn(t *testing.T, s *Sessions, user, sessionID, text string) ChatAccepted {
	t.Helper()
	rec := newRecorder()
	acc, err := s.Chat(ctx(t), ChatRequest{UserID: user, SessionID: sessionID, Text: text, Subscriber: rec})
	if err != nil {
		t.Fatal(err)
	}
	rec.untilDone(t)
	return acc
}

func TestDossierBatchesTurns(t *testing.T) {
	clock := &fakeClock{}
	ex := newFakeExtractor(chars("Ada"), chars("Ada", "Tom"))
	s, store := newTestSessions(t, newFakeModel(), func(c *Config) {
		c.Extractor, c.ExtractTurns, c.ExtractTokens, c.After = ex, 2, 1_000_000, clock.After
	})
	user := uuid.NewString()
	acc := chatTurn(t, s, user, "", "My grandmother Ada kept a lighthouse")
	if ex.calls() != 0 {
		t.Fatal("extracted after one turn; the batch is two")
	}
	chatTurn(t, s, user, acc.SessionID, "Tom brings the mail")
	<-ex.called
	eventually(t, "version 1", func() bool {
		d, err := store.GetDossier(ctx(t), acc.ProjectID)
		return err == nil && d.Version == 1
	})
	if got := len(ex.reqs[0].Turns); got != 2 {
		t.Fatalf("first extraction saw %d turns, want 2", got)
	}
	// One more turn waits for the idle timer.
	chatTurn(t, s, user, acc.SessionID, "The storm comes")
	if ex.calls() != 1 {
		t.Fatal("extracted before the batch was full or idle")
	}
	eventually(t, "the idle timer", func() bool { return clock.Pending() > 0 })
	clock.Fire()
	<-ex.called
	eventually(t, "version 2", func() bool {
		d, err := store.GetDossier(ctx(t), acc.ProjectID)
		return err == nil && d.Version == 2
	})
	// Only the new turn went to the model, with the dossier so far.
	if req := ex.reqs[1]; len(req.Turns) != 1 || req.Turns[0].User != "The storm comes" || len(req.Current.Characters) != 1 {
		t.Fatalf("second request %+v", req)
	}
	vs, _ := store.ListDossierVersions(ctx(t), acc.ProjectID)
	if vs[0].Source != "extraction" || vs[0].SeqFrom == 0 || vs[0].SeqTo <= vs[0].SeqFrom {
		t.Fatalf("version source/seqs %+v", vs[0])
	}
}

func TestOneExtractionInFlight(t *testing.T) {
	ex := newFakeExtractor(chars("Ada"), chars("Tom"), chars("Mei"))
	ex.gate = make(chan struct{})
	s, _ := newTestSessions(t, newFakeModel(), func(c *Config) {
		c.Extractor, c.ExtractTurns, c.After = ex, 1, (&fakeClock{}).After
	})
	user := uuid.NewString()
	acc := chatTurn(t, s, user, "", "Ada")
	<-ex.called
	chatTurn(t, s, user, acc.SessionID, "Tom")
	chatTurn(t, s, user, acc.SessionID, "more")
	if ex.calls() != 1 {
		t.Fatalf("%d extractions while one was in flight", ex.calls())
	}
	close(ex.gate)
	// The turns that arrived meanwhile go to later batches: none is lost,
	// and no two extractions ever overlap.
	eventually(t, "every turn extracted", func() bool {
		ex.mu.Lock()
		defer ex.mu.Unlock()
		n := 0
		for _, r := range ex.reqs {
			n += len(r.Turns)
		}
		return n == 3
	})
	ex.mu.Lock()
	defer ex.mu.Unlock()
	if ex.maxIn != 1 {
		t.Fatalf("%d extractions in flight at once", ex.maxIn)
	}
}

func TestEditSurvivesExtraction(t *testing.T) {
	ex := newFakeExtractor(story.Snapshot{Characters: []story.Character{{Name: "Ada", Description: "a lighthouse keeper who hates the sea"}}})
	ex.gate = make(chan struct{}) // the extraction answers once the edit is in
	s, store := newTestSessions(t, newFakeModel(), func(c *Config) {
		c.Extractor, c.ExtractTurns, c.After = ex, 1, (&fakeClock{}).After
	})
	user := uuid.NewString()
	acc, err := s.Chat(ctx(t), ChatRequest{UserID: user, Text: "hi"})
	if err != nil {
		t.Fatal(err)
	}
	// The person writes the dossier first.
	d, err := s.EditDossier(ctx(t), DossierEdit{UserID: user, ProjectID: acc.ProjectID, Create: true,
		Snapshot: story.Snapshot{Characters: []story.Character{{Name: "Ada", Description: "loves the sea"}}}})
	if err != nil || d.Version != 1 {
		t.Fatalf("create: %+v %v", d, err)
	}
	<-ex.called // the first turn's extraction contradicts the edit
	close(ex.gate)
	eventually(t, "extraction applied", func() bool { return ex.calls() == 1 })
	chatTurn(t, s, user, acc.SessionID, "flush") // let the actor settle
	got, _ := store.GetDossier(ctx(t), acc.ProjectID)
	var snap story.Snapshot
	if err := jsonUnmarshal(got.Snapshot, &snap); err != nil {
		t.Fatal(err)
	}
	if len(snap.Characters) != 1 || snap.Characters[0].Description != "loves the sea" {
		t.Fatalf("the person's edit was overwritten: %+v", snap.Characters)
	}
}

func TestConcurrentEditsOneConflict(t *testing.T) {
	s, _ := newTestSessions(t, newFakeModel(), nil)
	user, project := uuid.NewString(), uuid.NewString()
	if _, err := s.EditDossier(ctx(t), DossierEdit{UserID: user, ProjectID: project, Create: true, Snapshot: chars("Ada")}); err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 2)
	for _, name := range []string{"Tom", "Mei"} {
		go func() {
			_, err := s.EditDossier(context.Background(), DossierEdit{UserID: user, ProjectID: project, ExpectedVersion: 1, Snapshot: chars("Ada", name)})
			errs <- err
		}()
	}
	e1, e2 := <-errs, <-errs
	if (e1 == nil) == (e2 == nil) || !errors.Is(errors.Join(e1, e2), ErrVersionConflict) {
		t.Fatalf("two edits of version 1: %v, %v", e1, e2)
	}
	if _, err := s.EditDossier(ctx(t), DossierEdit{UserID: uuid.NewString(), ProjectID: project, ExpectedVersion: 2, Snapshot: chars("X")}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a stranger's edit: %v", err)
	}
}

func TestDossierEventsReachFollowers(t *testing.T) {
	ex := newFakeExtractor(chars("Ada"), story.Snapshot{})
	s, _ := newTestSessions(t, newFakeModel(), func(c *Config) {
		c.Extractor, c.ExtractTurns, c.After = ex, 1, (&fakeClock{}).After
	})
	user := uuid.NewString()
	follower := newRecorder()
	acc, err := s.Chat(ctx(t), ChatRequest{UserID: user, Text: "Ada", Subscriber: follower, Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	var dossierEv *Event
	for dossierEv == nil {
		if ev := follower.next(t); ev.Type == EventDossier {
			dossierEv = &ev
		}
	}
	if u := dossierEv.Dossier; u.ProjectID != acc.ProjectID || u.Version != 1 || len(u.Changed) != 1 || u.Changed[0] != "characters" {
		t.Fatalf("dossier event %+v", u)
	}
	// The next reply's metadata says the dossier changed; the one after
	// (garbage extraction: no new version) says it did not.
	evs := chatAndCollect(t, s, user, acc.SessionID, "next")
	if m := metaOf(evs); m == nil || !m.DossierUpdated {
		t.Fatalf("metadata after an update: %+v", m)
	}
	<-ex.called
	evs = chatAndCollect(t, s, user, acc.SessionID, "again")
	if m := metaOf(evs); m == nil || m.DossierUpdated {
		t.Fatalf("metadata without an update: %+v", m)
	}
}

func chatAndCollect(t *testing.T, s *Sessions, user, sessionID, text string) []Event {
	rec := newRecorder()
	if _, err := s.Chat(ctx(t), ChatRequest{UserID: user, SessionID: sessionID, Text: text, Subscriber: rec}); err != nil {
		t.Fatal(err)
	}
	return rec.untilDone(t)
}

func metaOf(evs []Event) *Metadata {
	for _, ev := range evs {
		if ev.Type == EventMetadata {
			return ev.Metadata
		}
	}
	return nil
}

// The dossier is the story's memory: once it holds something, every reply's
// prompt carries it (llm.DossierContext) — in the session that filled it,
// from the next reply on, and in a new session of the same project from
// its first reply.
func TestDossierIsTheStorysMemory(t *testing.T) {
	ex := newFakeExtractor(chars("Ada Whitlock"), story.Snapshot{}, story.Snapshot{})
	model := newFakeModel()
	s, store := newTestSessions(t, model, func(c *Config) {
		c.Extractor, c.ExtractTurns, c.After = ex, 1, (&fakeClock{}).After
	})
	user := uuid.NewString()
	memoryIn := func(prompt []llm.Message) string {
		for _, m := range prompt {
			if m.Role == llm.RoleSystem && strings.HasPrefix(m.Content, llm.DossierContextLead) {
				return m.Content
			}
		}
		return ""
	}
	first := chatTurn(t, s, user, "", "It's about my grandmother Ada.")
	if got := memoryIn(model.prompt(0)); got != "" {
		t.Fatalf("first prompt carries a dossier that does not exist yet:\n%s", got)
	}
	eventually(t, "the dossier to exist", func() bool {
		_, err := store.GetDossier(ctx(t), first.ProjectID)
		return err == nil
	})
	// The live session learns of the new version through dossierChanged.
	eventually(t, "the next prompt to carry the dossier", func() bool {
		chatTurn(t, s, user, first.SessionID, "She kept a lighthouse.")
		return strings.Contains(memoryIn(model.prompt(model.calls()-1)), "- Ada Whitlock: someone called Ada Whitlock")
	})
	// A new session of the project reads it at creation.
	n := model.calls()
	rec := newRecorder()
	if _, err := s.Chat(ctx(t), ChatRequest{UserID: user, ProjectID: first.ProjectID, Text: "hi again", Subscriber: rec}); err != nil {
		t.Fatal(err)
	}
	rec.untilDone(t)
	mem := memoryIn(model.prompt(n))
	if !strings.Contains(mem, "Ada Whitlock") || !strings.Contains(mem, "no setting yet") {
		t.Errorf("a new session's first prompt lacks the dossier and its gaps:\n%s", mem)
	}
}

func TestEditThatChangesNothingWritesNoVersion(t *testing.T) {
	s, store := newTestSessions(t, newFakeModel(), nil)
	user, project := uuid.NewString(), uuid.NewString()
	if _, err := s.EditDossier(ctx(t), DossierEdit{UserID: user, ProjectID: project, Create: true, Snapshot: chars("Ada")}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.EditDossier(ctx(t), DossierEdit{UserID: user, ProjectID: project, ExpectedVersion: 1, Snapshot: chars("Ada", "Tom")}); err != nil {
		t.Fatal(err)
	}
	// The same snapshot again: no version 3, the answer is version 2.
	d, err := s.EditDossier(ctx(t), DossierEdit{UserID: user, ProjectID: project, ExpectedVersion: 2, Snapshot: chars("Ada", "Tom")})
	if err != nil || d.Version != 2 {
		t.Fatalf("an edit that changes nothing: %+v, %v; want version 2", d, err)
	}
	if vs, err := store.ListDossierVersions(ctx(t), project); err != nil || len(vs) != 2 {
		t.Fatalf("%d versions, %v; want 2", len(vs), err)
	}
	if _, err := s.EditDossier(ctx(t), DossierEdit{UserID: user, ProjectID: project, ExpectedVersion: 1, Snapshot: chars("Ada", "Tom")}); !errors.Is(err, ErrVersionConflict) {
		t.Fatalf("a stale edit that changes nothing: %v, want a conflict", err)
	}
}

// flakyExtractor fails its first calls with err, then answers snap.
type flakyExtractor struct {
	mu    sync.Mutex
	fails int
	err   error
	snap  story.Snapshot
	reqs  []llm.ExtractRequest
}

func (f *flakyExtractor) Extract(ctx context.Context, req llm.ExtractRequest) (llm.ExtractResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reqs = append(f.reqs, req)
	if f.fails > 0 {
		f.fails--
		return llm.ExtractResult{}, f.err
	}
	return llm.ExtractResult{Snapshot: f.snap}, nil
}

func (f *flakyExtractor) requests() []llm.ExtractRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.reqs)
}

// A provider outage loses no turns: a batch that failed for a reason of the
// provider's waits for the idle timer and is extracted again, with what
// arrived meanwhile; a batch the model answered badly is not retried.
func TestExtractionRetriesAfterAnOutage(t *testing.T) {
	for _, tc := range []struct {
		name  string
		err   error
		retry bool
	}{
		{"provider down", &llm.Error{Code: llm.CodeUpstreamUnavailable, Err: llm.ErrUpstreamUnavailable}, true},
		{"rate limited", &llm.Error{Code: llm.CodeRateLimited, Err: llm.ErrRateLimited}, true},
		{"invalid answer", &llm.Error{Code: llm.CodeExtractionInvalid, Err: llm.ErrExtractionInvalid}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := &fakeClock{}
			// Two calls fail: the first attempt and its immediate retry.
			ex := &flakyExtractor{fails: 2, err: tc.err, snap: chars("Ada")}
			s, store := newTestSessions(t, newFakeModel(), func(c *Config) {
				c.Extractor, c.ExtractTurns, c.ExtractTokens, c.After = ex, 1, 1_000_000, clock.After
			})
			user := uuid.NewString()
			acc := chatTurn(t, s, user, "", "My grandmother Ada kept a lighthouse")
			eventually(t, "both attempts", func() bool { return len(ex.requests()) == 2 })
			if !tc.retry {
				eventually(t, "the cursor to move past the batch", func() bool {
					cs, err := store.DossierCursors(ctx(t), acc.ProjectID)
					return err == nil && len(cs) == 1 && cs[0].ExtractedSeq > 0
				})
				if clock.Pending() != 0 {
					t.Fatalf("a batch the model answered badly waits for a retry")
				}
				return
			}
			eventually(t, "the retry timer", func() bool { return clock.Pending() > 0 })
			clock.Fire()
			eventually(t, "version 1", func() bool {
				d, err := store.GetDossier(ctx(t), acc.ProjectID)
				return err == nil && d.Version == 1
			})
			reqs := ex.requests()
			if len(reqs) != 3 || len(reqs[2].Turns) != 1 || reqs[2].Turns[0].User != "My grandmother Ada kept a lighthouse" {
				t.Fatalf("requests after the outage: %+v", reqs)
			}
		})
	}
}

// Deleting a dossier goes through its actor: followers hear version 0, the
// model's context forgets it, and the next extraction starts a new one.
func TestDeleteDossier(t *testing.T) {
	ex := newFakeExtractor(chars("Ada"), chars("Tom"))
	model := newFakeModel()
	s, store := newTestSessions(t, model, func(c *Config) {
		c.Extractor, c.ExtractTurns, c.After = ex, 1, (&fakeClock{}).After
	})
	user := uuid.NewString()
	follower := newRecorder()
	acc, err := s.Chat(ctx(t), ChatRequest{UserID: user, Text: "Ada", Subscriber: follower, Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	nextDossierEvent := func() DossierUpdate {
		for {
			if ev := follower.next(t); ev.Type == EventDossier {
				return *ev.Dossier
			}
		}
	}
	if u := nextDossierEvent(); u.Version != 1 {
		t.Fatalf("first event %+v", u)
	}
	if err := s.DeleteDossier(ctx(t), uuid.NewString(), acc.ProjectID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("someone else's delete: %v", err)
	}
	if err := s.DeleteDossier(ctx(t), user, acc.ProjectID); err != nil {
		t.Fatal(err)
	}
	if u := nextDossierEvent(); u.Version != 0 || !slices.Equal(u.Changed, []string{"characters"}) {
		t.Fatalf("delete event %+v", u)
	}
	if _, err := store.GetDossier(ctx(t), acc.ProjectID); !errors.Is(err, persistence.ErrNotFound) {
		t.Fatalf("stored dossier after delete: %v", err)
	}
	if err := s.DeleteDossier(ctx(t), user, acc.ProjectID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	// The next reply's prompt has no dossier; its extraction makes version 1
	// of a new one, holding only what came after.
	chatTurn(t, s, user, acc.SessionID, "Tom")
	for _, m := range model.prompt(model.calls() - 1) {
		if strings.HasPrefix(m.Content, llm.DossierContextLead) {
			t.Fatalf("the prompt after the delete still carries the dossier:\n%s", m.Content)
		}
	}
	if u := nextDossierEvent(); u.Version != 1 {
		t.Fatalf("event after the delete %+v", u)
	}
	d, err := store.GetDossier(ctx(t), acc.ProjectID)
	if err != nil || d.Version != 1 || !strings.Contains(string(d.Snapshot), "Tom") || strings.Contains(string(d.Snapshot), "Ada") {
		t.Fatalf("new dossier %s (version %d), %v", d.Snapshot, d.Version, err)
	}
}

// After a migration the live dossier actor serves the new owner: their
// edits and their delete work, the old id's do not.
func TestDossierFollowsAMigration(t *testing.T) {
	s, store := newTestSessions(t, newFakeModel(), nil)
	anon, perm, project := uuid.NewString(), uuid.NewString(), uuid.NewString()
	if _, err := s.EditDossier(ctx(t), DossierEdit{UserID: anon, Anonymous: true, ProjectID: project, Create: true, Snapshot: chars("Ada")}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.EnsureUser(ctx(t), persistence.User{ID: perm}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.MigrateUser(ctx(t), anon, perm); err != nil {
		t.Fatal(err)
	}
	s.OwnerChanged(anon, perm)
	if _, err := s.EditDossier(ctx(t), DossierEdit{UserID: anon, ProjectID: project, ExpectedVersion: 1, Snapshot: chars("Ada", "Tom")}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the dead anonymous id's edit: %v", err)
	}
	d, err := s.EditDossier(ctx(t), DossierEdit{UserID: perm, ProjectID: project, ExpectedVersion: 1, Snapshot: chars("Ada", "Tom")})
	if err != nil || d.Version != 2 || d.UserID != perm {
		t.Fatalf("the new owner's edit: %+v, %v", d, err)
	}
	if err := s.DeleteDossier(ctx(t), perm, project); err != nil {
		t.Fatalf("the new owner's delete: %v", err)
	}
	if _, err := store.GetDossier(ctx(t), project); !errors.Is(err, persistence.ErrNotFound) {
		t.Fatalf("dossier after the delete: %v", err)
	}
}

// failingSaves holds each SaveDossier until released, then fails it.
type failingSaves struct {
	Store
	called  chan struct{}
	release chan struct{}
}

func (f *failingSaves) SaveDossier(ctx context.Context, d persistence.Dossier, expected int, src persistence.DossierVersion) (persistence.Dossier, error) {
	f.called <- struct{}{}
	<-f.release
	return persistence.Dossier{}, errors.New("store down")
}

// Commands queued behind a store write that fails are answered with its
// error at once, whatever they are (an edit, a delete), not left to time out.
func TestCommandsQueuedBehindAFailedWriteAreAnswered(t *testing.T) {
	s0, store := newTestSessions(t, newFakeModel(), nil)
	user, project := uuid.NewString(), uuid.NewString()
	if _, err := s0.EditDossier(ctx(t), DossierEdit{UserID: user, Anonymous: true, ProjectID: project, Create: true, Snapshot: chars("Ada")}); err != nil {
		t.Fatal(err)
	}
	fs := &failingSaves{Store: store, called: make(chan struct{}, 4), release: make(chan struct{})}
	s, _ := startSessions(t, fs, newFakeModel(), func(c *Config) { c.CommandTimeout = time.Hour })
	editErr, deleteErr := make(chan error, 1), make(chan error, 1)
	go func() {
		_, err := s.EditDossier(ctx(t), DossierEdit{UserID: user, ProjectID: project, ExpectedVersion: 1, Snapshot: chars("Ada", "Tom")})
		editErr <- err
	}()
	<-fs.called // the edit's write is in flight
	// The delete, sent as DeleteDossier sends it; the refresh after it from
	// the same sender answers once the actor has queued the delete.
	s.root.Send(s.manager, routed{sessionID: dossierKeyPrefix + project, msg: &deleteDossier{userID: user, reply: deleteErr}})
	if _, err := s.RefreshDossier(ctx(t), user, project); err != nil {
		t.Fatal(err)
	}
	close(fs.release) // the edit's write fails
	c, cancel := context.WithTimeout(ctx(t), 30*time.Second)
	defer cancel()
	for name, ch := range map[string]chan error{"edit": editErr, "delete": deleteErr} {
		select {
		case err := <-ch:
			if !errors.Is(err, ErrUnavailable) {
				t.Errorf("%s: %v, want unavailable", name, err)
			}
		case <-c.Done():
			t.Fatalf("%s never answered", name)
		}
	}
}

// switchExtractor fails with a provider error while down is set.
type switchExtractor struct {
	mu     sync.Mutex
	down   bool
	failed int
	reqs   []llm.ExtractRequest
}

func (f *switchExtractor) Extract(ctx context.Context, req llm.ExtractRequest) (llm.ExtractResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		f.failed++
		return llm.ExtractResult{}, &llm.Error{Code: llm.CodeUpstreamUnavailable, Err: llm.ErrUpstreamUnavailable}
	}
	f.reqs = append(f.reqs, req)
	return llm.ExtractResult{Snapshot: chars("Ada")}, nil
}

func (f *switchExtractor) set(down bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = down
}

func (f *switchExtractor) failures() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.failed
}

func (f *switchExtractor) answered() []llm.ExtractRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.reqs)
}

// The backlog of an outage is extracted in bounded batches, oldest first:
// no prompt grows past MaxBatchTokens, and no turn is lost or repeated.
func TestOutageBacklogGoesInBoundedBatches(t *testing.T) {
	texts := []string{"turn one!", "turn two!", "turn 3333", "turn four", "turn five"}
	perTurn := turnTokens(texts[0], "Tell me more.")
	clock := &fakeClock{}
	ex := &switchExtractor{down: true}
	s, _ := newTestSessions(t, newFakeModel(), func(c *Config) {
		c.Extractor, c.ExtractTurns, c.ExtractTokens, c.MaxBatchTokens, c.After = ex, len(texts), 1_000_000, 2*perTurn, clock.After
	})
	user := uuid.NewString()
	acc := chatTurn(t, s, user, "", texts[0])
	for _, text := range texts[1:] {
		chatTurn(t, s, user, acc.SessionID, text)
	}
	// The fifth turn makes the batch; the provider is down for the first
	// attempt and its immediate retry; then only the retry timer is set.
	eventually(t, "the attempt and its retry", func() bool { return ex.failures() >= 2 })
	t.Logf("failures %d", ex.failures())
	eventually(t, "the retry timer", func() bool { return clock.Pending() > 0 })
	ex.set(false)
	clock.Fire()
	eventually(t, "three batches", func() bool { return len(ex.answered()) == 3 })
	var got []string
	for i, req := range ex.answered() {
		if len(req.Turns) > 2 {
			t.Errorf("batch %d has %d turns, over the bound of 2", i, len(req.Turns))
		}
		for _, turn := range req.Turns {
			got = append(got, turn.User)
		}
	}
	if !slices.Equal(got, texts) {
		t.Fatalf("extracted %q, want %q once each, in order", got, texts)
	}
}

// A turn whose reply could not be stored still goes to the dossier with
// the person's words: their message is stored and carries the facts.
func TestTurnWithUnstoredReplyIsExtracted(t *testing.T) {
	ex := newFakeExtractor(chars("Ada"))
	s, _ := newTestSessions(t, newFakeModel(), func(c *Config) {
		c.Store = &flakyStore{Store: c.Store, failAppend: func(m persistence.Message) bool { return m.Role == persistence.RoleAssistant }}
		c.Extractor, c.ExtractTurns, c.After = ex, 1, (&fakeClock{}).After
	})
	chatTurn(t, s, uuid.NewString(), "", "My grandmother Ada kept a lighthouse")
	<-ex.called
	req := ex.reqs[0]
	if len(req.Turns) != 1 || req.Turns[0].User != "My grandmother Ada kept a lighthouse" || req.Turns[0].Assistant != "" {
		t.Fatalf("extraction request %+v", req.Turns)
	}
}

// Extractions across projects run at most ExtractConcurrency at a time;
// the others wait for a slot, and all run.
func TestExtractionConcurrencyIsBounded(t *testing.T) {
	ex := newFakeExtractor(chars("A"), chars("B"), chars("C"), chars("D"), chars("E"))
	ex.gate = make(chan struct{})
	s, _ := newTestSessions(t, newFakeModel(), func(c *Config) {
		c.Extractor, c.ExtractTurns, c.ExtractConcurrency, c.After = ex, 1, 2, (&fakeClock{}).After
	})
	for range 5 { // five projects
		chatTurn(t, s, uuid.NewString(), "", "Ada")
	}
	<-ex.called
	<-ex.called
	if n := ex.calls(); n != 2 {
		t.Fatalf("%d extractions started with 2 slots", n)
	}
	close(ex.gate)
	eventually(t, "all five", func() bool { return ex.calls() == 5 })
	ex.mu.Lock()
	defer ex.mu.Unlock()
	if ex.maxIn > 2 {
		t.Fatalf("%d extractions at once, over 2", ex.maxIn)
	}
}

// The dossier memory shares the context budget: with it in the prompt, the
// oldest messages give way, and the newest one always stays.
func TestMemoryCountsInTheContextBudget(t *testing.T) {
	model := newFakeModel()
	s, _ := newTestSessions(t, model, func(c *Config) { c.ContextTokens = 400 })
	user := uuid.NewString()
	acc := chatTurn(t, s, user, "", "hello")
	snap := chars("Ada")
	snap.Characters[0].Description = strings.Repeat("keeps the light ", 60) // ~240 tokens
	if _, err := s.EditDossier(ctx(t), DossierEdit{UserID: user, ProjectID: acc.ProjectID, Create: true, Snapshot: snap}); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("word ", 100) // ~125 tokens
	eventually(t, "a prompt with the memory", func() bool {
		chatTurn(t, s, user, acc.SessionID, long)
		p := model.prompt(model.calls() - 1)
		return len(p) > 1 && strings.HasPrefix(p[1].Content, llm.DossierContextLead)
	})
	prompt := model.prompt(model.calls() - 1)
	used, history := 0, 0
	for _, m := range prompt[1:] { // the memory and the history, not the instructions
		used += llm.EstimateMessageTokens(m)
		if m.Role != llm.RoleSystem {
			history++
		}
	}
	if history > 1 && used > 400 {
		t.Fatalf("memory and %d messages use %d tokens, over the budget of 400", history, used)
	}
	if last := prompt[len(prompt)-1]; last.Role != llm.RoleUser || last.Content != long {
		t.Fatalf("the newest message is not last: %+v", last)
	}
}
