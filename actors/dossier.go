package actors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/storyd/storyd/llm"
	"github.com/storyd/storyd/persistence"
	"github.com/storyd/storyd/story"
)

// Extractor reads story facts from new conversation turns (llm's offline
// and OpenAI extractors).
type Extractor interface {
	Extract(ctx context.Context, req llm.ExtractRequest) (llm.ExtractResult, error)
}

// dossierKeyPrefix marks the manager's children that are dossier actors.
const dossierKeyPrefix = "dossier:"

// DossierEdit is a person's edit of a dossier.
type DossierEdit struct {
	UserID string
	// Anonymous marks UserID as an anonymous id, for a user seen first here.
	Anonymous bool
	ProjectID string
	Snapshot  story.Snapshot
	// Create makes version 1 (the project is created for the user when it
	// does not exist); otherwise ExpectedVersion must be the current one.
	Create          bool
	ExpectedVersion int
}

// DossierUpdate says a dossier has a new version.
type DossierUpdate struct {
	ProjectID string   `json:"project_id"`
	Version   int      `json:"version"`
	Changed   []string `json:"changed"`
	Source    string   `json:"source"`
}

// Messages of the dossier actor.
type (
	// turnCompleted: a session stored a finished turn of the project.
	turnCompleted struct {
		sessionID       string
		userID          string
		user, assistant string
		seqFrom, seqTo  int64
	}
	// editDossier: a person edits the dossier.
	editDossier struct {
		edit  DossierEdit
		reply chan<- editResult
	}
	// dossierSettled: does the actor have nothing to do (no turn waiting,
	// no extraction or write in flight)?
	dossierSettled struct{ reply chan<- bool }
	// wakeDossier: activate to extract the turns left from before a
	// restart (loading recovers them; nothing else to do).
	wakeDossier struct{}
	// deleteDossier: a person deletes the dossier.
	deleteDossier struct {
		userID string
		reply  chan<- error
	}
	// dossierDeleted: the store deleted the dossier.
	dossierDeleted struct {
		cmd     *deleteDossier
		changed []string
		err     error
	}
	// refreshDossier: extract now from what is pending.
	refreshDossier struct {
		userID string
		reply  chan<- refreshResult
	}
	// pendingRead: the next stored turns extraction has not read.
	pendingRead struct {
		turns []persistence.PendingTurn
		err   error
	}
	dossierLoaded struct {
		d       persistence.Dossier
		project persistence.Project
		// cursors and turns: how far extraction read each session, and the
		// stored turns after that (the oldest RecoverTurns).
		cursors []persistence.DossierCursor
		turns   []persistence.PendingTurn
		err     error
	}
	extractionDone struct {
		batch []turnCompleted
		res   llm.ExtractResult
		// estimate is the request's prompt tokens, for results that report
		// none (the offline extractor).
		estimate int
		err      error
	}
	dossierSaved struct {
		d       persistence.Dossier
		changed []string
		source  string
		edit    *editDossier
		err     error
	}
	// cursorsSaved: a batch that wrote no version moved the cursors.
	cursorsSaved  struct{ err error }
	debounceFired struct{ gen int }
)

type editResult struct {
	d   persistence.Dossier
	err error
}

type refreshResult struct {
	started bool
	err     error
}

func (c *editDossier) fail(err error)    { c.reply <- editResult{err: err} }
func (c *refreshDossier) fail(err error) { c.reply <- refreshResult{err: err} }
func (c *deleteDossier) fail(err error)  { c.reply <- err }
func (*wakeDossier) fail(error)          {}
func (c *dossierSettled) fail(error)     { c.reply <- false }
func (t *turnCompleted) fail(error)      {}

// dossierActor is the single writer of one project's dossier: it batches
// finished turns, runs at most one extraction at a time, merges the result
// under the protection of people's edits, applies people's edits in order,
// and tells the project's sessions when a new version exists.
type dossierActor struct {
	s         *Sessions
	projectID string
	loaded    bool
	loading   bool
	stash     []any

	exists  bool
	d       persistence.Dossier
	owner   string
	snap    story.Snapshot
	protect story.Protection

	pending       []turnCompleted
	pendingTokens int
	extracting    bool
	inflight      []turnCompleted // the batch being extracted
	// extractedTo is, per session, the highest seq of the turns extraction
	// has read or is reading (the stored cursor, raised when a batch is
	// handed to the model): a turn at or below it is a duplicate.
	extractedTo map[string]int64
	saving      bool
	writes      []storeWrite // store writes waiting for the one in flight
	debounce    int          // generation of the idle timer
	stopTimer   func()
	pendingIO   int
	draining    bool
	// due: the pending turns are to be extracted as soon as the
	// extraction in flight is done (a refresh came meanwhile, or they are
	// the rest of a batch cut at MaxBatchTokens).
	due bool
	// more: the last read of stored turns was full, so more may wait in
	// the store; reading: such a read is in flight.
	more, reading bool
	lastActive    time.Time
}

func newDossierActor(s *Sessions, projectID string) *dossierActor {
	return &dossierActor{s: s, projectID: projectID}
}

// Receive implements actor.Actor.
func (a *dossierActor) Receive(ctx actor.Context) {
	if _, check := ctx.Message().(idleCheck); !check {
		a.lastActive = time.Now()
	}
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		a.load(ctx)
	case dossierLoaded:
		a.pendingIO--
		a.loadedMsg(ctx, msg)
	case *turnCompleted, *editDossier, *refreshDossier, *deleteDossier, *wakeDossier, *ownerChanged, *dossierSettled:
		if !a.loaded {
			a.stash = append(a.stash, msg)
			if !a.loading {
				a.load(ctx)
			}
			return
		}
		a.command(ctx, msg)
	case debounceFired:
		if msg.gen == a.debounce && a.loaded && len(a.pending) > 0 {
			a.extract(ctx)
		}
	case extractionDone:
		a.pendingIO--
		a.extracted(ctx, msg)
	case dossierSaved:
		a.pendingIO--
		a.saved(ctx, msg)
	case dossierDeleted:
		a.pendingIO--
		a.deleted(ctx, msg)
	case pendingRead:
		a.pendingIO--
		a.reading = false
		if msg.err != nil {
			a.s.cfg.Logger.Error("read pending dossier turns", "project_id", a.projectID, "err", msg.err)
			a.more = false // the next activation reads them
		} else {
			a.recover(msg.turns)
			a.maybeExtract(ctx)
		}
	case cursorsSaved:
		a.pendingIO--
		if msg.err != nil {
			// The batch is read again at the next activation: extracted twice
			// rather than lost.
			a.s.cfg.Logger.Error("save dossier cursors", "project_id", a.projectID, "err", msg.err)
		}
		a.nextWrite()
	case idleCheck:
		if a.idle() && time.Since(a.lastActive) >= a.s.cfg.IdleTimeout {
			ctx.Send(ctx.Parent(), passivationRequest{sessionID: dossierKeyPrefix + a.projectID})
		}
	case passivate:
		if a.idle() {
			ctx.Stop(ctx.Self())
		} else {
			ctx.Send(ctx.Parent(), passivationDeclined{sessionID: dossierKeyPrefix + a.projectID})
		}
	case *drain, *abortAll:
		a.draining = true
	case *actor.Stopping:
		if a.stopTimer != nil {
			a.stopTimer()
		}
		failAll(a.stash, ErrSessionClosed)
		a.stash = nil
		return
	case *actor.Stopped:
		return
	}
	a.readMore(ctx)
	if a.draining && a.pendingIO == 0 {
		ctx.Stop(ctx.Self())
	}
}

func (a *dossierActor) command(ctx actor.Context, m any) {
	switch m := m.(type) {
	case *turnCompleted:
		a.turn(ctx, m)
	case *editDossier:
		a.edit(ctx, m)
	case *deleteDossier:
		a.delete(ctx, m)
	case *dossierSettled:
		m.reply <- a.idle() && !a.more
	case *ownerChanged:
		// The project moved to an account (POST /sessions/migrate).
		if a.owner == m.from {
			a.owner = m.to
			a.d.UserID = m.to
		}
	case *refreshDossier:
		if m.userID != a.owner {
			m.fail(ErrNotFound)
			return
		}
		started := len(a.pending) > 0 && !a.extracting
		if started {
			a.extract(ctx)
		} else if a.extracting && len(a.pending) > 0 {
			a.due = true // extract the rest as soon as this one is done
		}
		m.reply <- refreshResult{started: started || a.extracting}
	}
}

// load reads the project, its dossier and, when extraction is on, the
// stored turns extraction has not read yet.
func (a *dossierActor) load(ctx actor.Context) {
	if a.loading {
		return // the load in flight reads the latest
	}
	a.loading = true
	store, id, recover, limit := a.s.cfg.Store, a.projectID, a.s.cfg.Extractor != nil, a.s.cfg.RecoverTurns
	a.goIO(ctx, func(c context.Context) any {
		p, err := store.GetProject(c, id)
		if err != nil {
			return dossierLoaded{err: err}
		}
		out := dossierLoaded{project: p}
		switch d, err := store.GetDossier(c, id); {
		case err == nil:
			out.d = d
		case !errors.Is(err, persistence.ErrNotFound):
			return dossierLoaded{err: err}
		}
		if recover {
			if out.cursors, err = store.DossierCursors(c, id); err != nil {
				return dossierLoaded{err: err}
			}
			if out.turns, err = store.PendingTurns(c, id, limit); err != nil {
				return dossierLoaded{err: err}
			}
		}
		return out
	})
}

func (a *dossierActor) loadedMsg(ctx actor.Context, msg dossierLoaded) {
	a.loading = false
	switch {
	case errors.Is(msg.err, persistence.ErrNotFound):
		// No such project yet: an edit may create it.
		a.loaded = true
	case msg.err != nil:
		a.s.cfg.Logger.Error("load dossier", "project_id", a.projectID, "err", msg.err)
		failAll(a.stash, ErrUnavailable)
		a.stash = nil
		return // the next command loads again
	default:
		a.loaded = true
		a.owner = msg.project.UserID
		if msg.d.ProjectID != "" {
			a.exists = true
			a.d = msg.d
			_ = json.Unmarshal(msg.d.Snapshot, &a.snap)
			a.snap.Normalize()
			_ = json.Unmarshal(msg.d.Protection, &a.protect)
		}
		a.setCursors(msg.cursors)
		a.recover(msg.turns)
	}
	stash := a.stash
	a.stash = nil
	for _, m := range stash {
		a.command(ctx, m)
	}
	if !a.extracting {
		a.maybeExtract(ctx) // the recovered turns follow the batching rules
	}
}

// setCursors starts extractedTo from the stored cursors, and the batch in
// flight (a reload while it is extracted).
func (a *dossierActor) setCursors(cursors []persistence.DossierCursor) {
	a.extractedTo = make(map[string]int64, len(cursors))
	for _, c := range cursors {
		a.extractedTo[c.SessionID] = c.ExtractedSeq
	}
	for _, t := range a.inflight {
		a.extractedTo[t.sessionID] = max(a.extractedTo[t.sessionID], t.seqTo)
	}
}

// recover puts stored turns that extraction has not read (turns after each
// session's cursor: they were waiting in a batch when the server last
// stopped, or did not fit the last read) in front of the batch, oldest
// first, leaving out those already extracted or pending. A read that
// filled Config.RecoverTurns may have left more in the store: they are
// read once these are extracted (readMore).
func (a *dossierActor) recover(turns []persistence.PendingTurn) {
	var back []turnCompleted
	tokens := 0
	for _, pt := range turns {
		t := turnCompleted{sessionID: pt.SessionID, userID: a.owner, user: pt.User, assistant: pt.Assistant,
			seqFrom: pt.SeqFrom, seqTo: pt.SeqTo}
		if t.seqFrom <= a.extractedTo[t.sessionID] || slices.ContainsFunc(a.pending, func(p turnCompleted) bool {
			return p.sessionID == t.sessionID && p.seqFrom == t.seqFrom
		}) {
			continue
		}
		back = append(back, t)
		tokens += turnTokens(t.user, t.assistant)
	}
	// A full read that brought nothing new (its cursors are not stored
	// yet: a failed write) must not be read again and again.
	a.more = len(turns) >= a.s.cfg.RecoverTurns && len(back) > 0
	if len(back) == 0 {
		return
	}
	a.pending = append(back, a.pending...)
	a.pendingTokens += tokens
	a.s.recoveredTurns.Add(int64(len(back)))
	a.s.cfg.Logger.Info("dossier turns recovered from the store", "project_id", a.projectID,
		"turns", len(back), "more_in_store", a.more)
}

// readMore reads the next stored turns that extraction has not read, once
// the batch is extracted and the cursors are stored (so the read does not
// return what was just extracted).
func (a *dossierActor) readMore(ctx actor.Context) {
	if !a.more || a.reading || !a.loaded || a.draining || a.extracting || a.saving || len(a.pending) > 0 {
		return
	}
	a.reading = true
	store, id, limit := a.s.cfg.Store, a.projectID, a.s.cfg.RecoverTurns
	a.goIO(ctx, func(c context.Context) any {
		turns, err := store.PendingTurns(c, id, limit)
		return pendingRead{turns: turns, err: err}
	})
}

// addPending adds t to the batch unless it is a turn extraction has read
// or is reading, or one already pending (the same session and seq): a turn
// can arrive both from the store (recovery) and from its session actor.
// A pending copy is replaced by one with more of its reply. It reports
// whether t was new.
func (a *dossierActor) addPending(t turnCompleted) bool {
	if t.seqFrom <= a.extractedTo[t.sessionID] {
		return false
	}
	for i := range a.pending {
		p := &a.pending[i]
		if p.sessionID == t.sessionID && p.seqFrom == t.seqFrom {
			if t.seqTo > p.seqTo {
				a.pendingTokens += turnTokens(t.user, t.assistant) - turnTokens(p.user, p.assistant)
				*p = t
			}
			return false
		}
	}
	a.pending = append(a.pending, t)
	a.pendingTokens += turnTokens(t.user, t.assistant)
	return true
}

func turnTokens(user, assistant string) int {
	return llm.EstimateTokens(user) + llm.EstimateTokens(assistant)
}

// turn adds a finished turn to the batch and extracts when the batch is
// big enough; otherwise an idle timer extracts it later.
func (a *dossierActor) turn(ctx actor.Context, t *turnCompleted) {
	if a.owner != "" && t.userID != a.owner {
		return // the session moved; its project's owner decides
	}
	if a.addPending(*t) {
		a.maybeExtract(ctx)
	}
}

// maybeExtract extracts the pending batch if it is big enough (or a
// refresh asked for it); otherwise it (re)arms the idle timer.
func (a *dossierActor) maybeExtract(ctx actor.Context) {
	if len(a.pending) == 0 {
		return
	}
	cfg := a.s.cfg
	if a.due || a.pendingTokens >= cfg.ExtractTokens || len(a.pending) >= cfg.ExtractTurns {
		a.extract(ctx)
		return
	}
	a.armIdle(ctx, 1)
}

// armIdle (re)starts the idle timer, which extracts the pending batch
// after ExtractIdle times scale.
func (a *dossierActor) armIdle(ctx actor.Context, scale float64) {
	a.debounce++
	if a.stopTimer != nil {
		a.stopTimer()
	}
	gen, root, self := a.debounce, a.s.root, ctx.Self()
	d := time.Duration(float64(a.s.cfg.ExtractIdle) * scale)
	a.stopTimer = a.s.cfg.After(d, func() { root.Send(self, debounceFired{gen: gen}) })
}

// retryJitter spreads the retries of projects that failed together (a
// provider outage) over 1–1.5 idle periods, so they do not all come back
// at the same moment.
func retryJitter() float64 { return 1 + rand.Float64()/2 }

// transientExtractionError reports whether an extraction failed for a
// reason outside its turns — the provider rate-limiting, down, timing out
// or cutting the connection — so the same turns are worth another try.
// A refused, truncated or invalid answer, or refused credentials, is not:
// those turns are skipped (see docs/dossier.md).
func transientExtractionError(err error) bool {
	switch llm.CodeOf(err) {
	case llm.CodeRateLimited, llm.CodeUpstreamUnavailable, llm.CodeUpstreamTimeout, llm.CodeStreamCut:
		return true
	}
	return errors.Is(err, context.DeadlineExceeded)
}

// extract runs the model on the pending batch, unless an extraction is in
// flight (the batch then waits for it) or the server is stopping (the
// batch stays after the stored cursors and is read again at the next
// start).
func (a *dossierActor) extract(ctx actor.Context) {
	if a.extracting || a.draining || len(a.pending) == 0 || a.s.cfg.Extractor == nil {
		return
	}
	// The oldest turns, up to MaxBatchTokens: a backlog (after an outage,
	// or read back from the store) goes in several bounded prompts.
	n, used := 0, 0
	for n < len(a.pending) {
		tk := turnTokens(a.pending[n].user, a.pending[n].assistant)
		if n > 0 && used+tk > a.s.cfg.MaxBatchTokens {
			break
		}
		used += tk
		n++
	}
	batch := a.pending[:n:n]
	a.pending = slices.Clone(a.pending[n:])
	a.pendingTokens -= used
	a.extracting, a.due = true, len(a.pending) > 0 // a backlog drains batch after batch
	a.inflight = batch
	if a.extractedTo == nil {
		a.extractedTo = map[string]int64{}
	}
	for _, t := range batch {
		a.extractedTo[t.sessionID] = max(a.extractedTo[t.sessionID], t.seqTo)
	}
	if a.stopTimer != nil {
		a.stopTimer() // the batch it waited for is on its way
		a.stopTimer = nil
	}
	req := llm.ExtractRequest{Current: a.snap}
	for _, t := range batch {
		req.Turns = append(req.Turns, llm.Turn{User: t.user, Assistant: t.assistant})
	}
	extractor, root, self := a.s.cfg.Extractor, a.s.root, ctx.Self()
	a.pendingIO++
	started := a.s.work.Go(func() {
		select { // a slot among ExtractConcurrency
		case a.s.extractSlots <- struct{}{}:
			defer func() { <-a.s.extractSlots }()
		case <-a.s.life.Done():
			root.Send(self, extractionDone{batch: batch, err: a.s.life.Err()})
			return
		}
		c, cancel := context.WithTimeout(a.s.life, 3*a.s.cfg.StoreTimeout+2*time.Minute)
		defer cancel()
		res, err := extractor.Extract(c, req)
		if err != nil && !errors.Is(err, context.Canceled) {
			res, err = extractor.Extract(c, req) // one retry, as the issue says
		}
		root.Send(self, extractionDone{batch: batch, res: res, estimate: llm.ExtractionPromptTokens(req), err: err})
	})
	if !started {
		a.pendingIO--
		a.extracting, a.inflight = false, nil
	}
}

// extracted merges an extraction's result and moves the cursors past its
// batch: with the new version when the merge changed something, alone
// otherwise. A batch the model failed on twice moves them too (logged and
// counted): retrying it forever would stall the project on one poisoned
// turn. Only an extraction cut short by shutdown leaves them, so its batch
// is read again at the next start.
func (a *dossierActor) extracted(ctx actor.Context, msg extractionDone) {
	a.extracting, a.inflight = false, nil
	a.s.extractions.Add(1)
	if msg.err != nil && errors.Is(msg.err, context.Canceled) && a.s.life.Err() != nil {
		a.s.cfg.Logger.Info("extraction stopped by shutdown; its turns are read again at the next start",
			"project_id", a.projectID)
		return
	}
	if !a.loaded {
		// A store write failed meanwhile and the dossier is being
		// reloaded: this answer builds on what may not be stored. Its
		// turns are after the stored cursors; the reload reads them back.
		return
	}
	cursors := map[string]int64{}
	for _, t := range msg.batch {
		cursors[t.sessionID] = max(cursors[t.sessionID], t.seqTo)
	}
	if msg.err != nil {
		a.s.extractionFailures.Add(1)
		if transientExtractionError(msg.err) {
			// The provider is down, slow or limiting us: the turns are
			// fine. Keep them, in front of what arrived meanwhile, and
			// try again when the idle timer fires (not at once: no
			// hammering a provider that is down).
			a.s.cfg.Logger.Warn("extraction failed; its turns wait for the next attempt",
				"project_id", a.projectID, "turns", len(msg.batch), "retry_in", a.s.cfg.ExtractIdle, "err", msg.err)
			for _, t := range msg.batch {
				a.pendingTokens += turnTokens(t.user, t.assistant)
			}
			a.pending = append(msg.batch, a.pending...)
			a.armIdle(ctx, retryJitter())
			return
		}
		a.s.cfg.Logger.Warn("extraction failed; the dossier is unchanged and its turns are not extracted again",
			"project_id", a.projectID, "turns", len(msg.batch), "err", msg.err)
		a.advance(ctx, cursors)
		a.maybeExtract(ctx) // turns that arrived meanwhile
		return
	}
	tokens := msg.res.PromptTokens
	if tokens == 0 {
		tokens = msg.estimate
	}
	a.s.extractionPromptTokens.Add(int64(tokens))
	a.s.extractionCompletionTokens.Add(int64(msg.res.CompletionTokens))
	merged, changed := story.Merge(a.snap, a.protect, msg.res.Snapshot)
	if len(changed) > 0 {
		// A batch can hold turns of several sessions, whose seqs are
		// unrelated: the range covers them all.
		src := persistence.DossierVersion{Source: persistence.SourceExtraction,
			SeqFrom: msg.batch[0].seqFrom, SeqTo: msg.batch[0].seqTo}
		for _, t := range msg.batch {
			src.SeqFrom, src.SeqTo = min(src.SeqFrom, t.seqFrom), max(src.SeqTo, t.seqTo)
		}
		a.write(ctx, merged, a.protect, src, changed, nil, cursors)
	} else {
		a.advance(ctx, cursors)
	}
	a.maybeExtract(ctx) // turns that arrived meanwhile form the next batch
}

// edit applies a person's edit: their changes become protected.
func (a *dossierActor) edit(ctx actor.Context, cmd *editDossier) {
	e := cmd.edit
	switch {
	case a.owner != "" && e.UserID != a.owner:
		cmd.fail(ErrNotFound)
		return
	case e.Create && a.exists:
		cmd.fail(ErrDossierExists)
		return
	case !e.Create && !a.exists:
		cmd.fail(ErrNotFound)
		return
	case !e.Create && e.ExpectedVersion != a.d.Version:
		cmd.fail(ErrVersionConflict)
		return
	}
	after := e.Snapshot
	after.Normalize()
	before := a.snap
	prot := a.protect.Edited(before, after)
	changed := story.Changed(before, after)
	if !e.Create && len(changed) == 0 && sameProtection(prot, a.protect) {
		// Nothing changed: no new version (and no dossier event, no
		// dossier_updated). The answer is the current version, once the
		// writes before it are stored.
		a.enqueue(storeWrite{fail: cmd.fail, run: func() {
			cmd.reply <- editResult{d: a.d}
			a.nextWrite()
		}})
		return
	}
	a.write(ctx, after, prot, persistence.DossierVersion{Source: persistence.SourceUser}, changed, cmd, nil)
}

func sameProtection(p, q story.Protection) bool {
	a, errA := json.Marshal(p)
	b, errB := json.Marshal(q)
	return errA == nil && errB == nil && string(a) == string(b)
}

// storeWrite is a store write waiting for the one in flight; edit, when
// set, is the person's edit it answers.
type storeWrite struct {
	run func()
	// fail answers the command the write is for (nil: none) when an
	// earlier write failed and this one is dropped.
	fail func(error)
}

// enqueue runs w now, or after the writes before it: writes run one at a
// time, in order, so a cursor never passes a version that is not stored.
func (a *dossierActor) enqueue(w storeWrite) {
	if a.saving {
		a.writes = append(a.writes, w)
		return
	}
	a.saving = true
	w.run()
}

// nextWrite starts the next queued write, the one in flight being done.
func (a *dossierActor) nextWrite() {
	a.saving = false
	if len(a.writes) > 0 {
		next := a.writes[0]
		a.writes = a.writes[1:]
		a.saving = true
		next.run()
	}
}

// advance moves the cursors past a batch that wrote no version.
func (a *dossierActor) advance(ctx actor.Context, cursors map[string]int64) {
	store, id := a.s.cfg.Store, a.projectID
	a.enqueue(storeWrite{run: func() {
		a.goIO(ctx, func(c context.Context) any {
			return cursorsSaved{err: store.AdvanceDossierCursors(c, id, cursors)}
		})
	}})
}

// write stores a new version (with the cursors of the batch it came from,
// for an extraction) after the writes before it.
func (a *dossierActor) write(ctx actor.Context, snap story.Snapshot, prot story.Protection,
	src persistence.DossierVersion, changed []string, cmd *editDossier, cursors map[string]int64) {
	// Apply in memory now so the next merge or edit builds on it.
	prevExists, prevVersion := a.exists, a.d.Version
	a.snap, a.protect = snap, prot
	expected := 0
	if prevExists {
		expected = prevVersion
	}
	a.exists = true
	a.d.Version = prevVersion + 1
	protJSON, _ := json.Marshal(prot)
	userID := a.owner
	if cmd != nil {
		userID = cmd.edit.UserID
	}
	d := persistence.Dossier{ProjectID: a.projectID, UserID: userID, Snapshot: snap.JSON(), Protection: protJSON}
	store, create := a.s.cfg.Store, cmd != nil && cmd.edit.Create
	w := storeWrite{}
	if cmd != nil {
		w.fail = cmd.fail
	}
	w.run = func() {
		a.goIO(ctx, func(c context.Context) any {
			if create {
				if err := ensureProject(c, store, a.projectID, userID, cmd.edit.Anonymous, snap.Title); err != nil {
					return dossierSaved{edit: cmd, err: err}
				}
			}
			var saved persistence.Dossier
			var err error
			if cursors != nil {
				saved, err = store.SaveExtraction(c, d, expected, src, cursors)
			} else {
				saved, err = store.SaveDossier(c, d, expected, src)
			}
			return dossierSaved{d: saved, changed: changed, source: src.Source, edit: cmd, err: err}
		})
	}
	a.enqueue(w)
}

func ensureProject(ctx context.Context, store Store, projectID, userID string, anonymous bool, title string) error {
	if _, err := store.EnsureUser(ctx, persistence.User{ID: userID, IsAnonymous: anonymous}); err != nil {
		return err
	}
	if title == "" {
		title = "Untitled story"
	}
	p, err := store.GetProject(ctx, projectID)
	if errors.Is(err, persistence.ErrNotFound) {
		p, err = store.CreateProject(ctx, persistence.Project{ID: projectID, UserID: userID, Title: title})
		if errors.Is(err, persistence.ErrConflict) {
			p, err = store.GetProject(ctx, projectID)
		}
	}
	if err != nil {
		return err
	}
	if p.UserID != userID {
		return ErrNotFound
	}
	return nil
}

func (a *dossierActor) saved(ctx actor.Context, msg dossierSaved) {
	a.saving = false
	if msg.err != nil {
		a.s.cfg.Logger.Error("save dossier", "project_id", a.projectID, "err", msg.err)
		if msg.edit != nil {
			msg.edit.fail(dossierError(msg.err))
		}
		a.writeFailed(ctx, msg.err)
		return
	}
	// Memory may be ahead: writes queued behind this one already counted
	// their versions (the next expected version builds on them).
	ahead := a.d.Version
	a.d = msg.d
	a.d.Version = max(a.d.Version, ahead)
	a.owner = msg.d.UserID
	if msg.edit != nil {
		msg.edit.reply <- editResult{d: msg.d}
	}
	// Every version written is announced (only a person's creation of an
	// empty dossier changes no section: changed is then empty).
	changed := msg.changed
	if changed == nil {
		changed = []string{}
	}
	a.s.root.Send(a.s.manager, &dossierChanged{update: DossierUpdate{
		ProjectID: a.projectID, Version: msg.d.Version, Changed: changed, Source: msg.source,
	}, memory: memoryOf(msg.d.Snapshot)})
	a.nextWrite()
}

// delete deletes the dossier after the writes before it. Memory forgets it
// at once, so what comes after (an extraction, an edit) starts a new one;
// the extraction cursors stay, so it starts from the turns after them.
func (a *dossierActor) delete(ctx actor.Context, cmd *deleteDossier) {
	if !a.exists || a.owner != "" && cmd.userID != a.owner {
		cmd.fail(ErrNotFound)
		return
	}
	changed := story.Changed(a.snap, story.Snapshot{})
	a.exists, a.d = false, persistence.Dossier{}
	a.snap, a.protect = story.Snapshot{}, story.Protection{}
	store, id := a.s.cfg.Store, a.projectID
	a.enqueue(storeWrite{fail: cmd.fail, run: func() {
		a.goIO(ctx, func(c context.Context) any {
			return dossierDeleted{cmd: cmd, changed: changed, err: store.DeleteDossier(c, id)}
		})
	}})
}

func (a *dossierActor) deleted(ctx actor.Context, msg dossierDeleted) {
	if msg.err != nil && !errors.Is(msg.err, persistence.ErrNotFound) {
		a.s.cfg.Logger.Error("delete dossier", "project_id", a.projectID, "err", msg.err)
		msg.cmd.fail(dossierError(msg.err))
		a.writeFailed(ctx, msg.err)
		return
	}
	msg.cmd.reply <- nil
	if msg.changed == nil {
		msg.changed = []string{}
	}
	// Version 0: there is no dossier any more (docs/protocol.md).
	a.s.root.Send(a.s.manager, &dossierChanged{update: DossierUpdate{
		ProjectID: a.projectID, Version: 0, Changed: msg.changed, Source: persistence.SourceUser,
	}})
	a.nextWrite()
}

// writeFailed handles a store write the store refused (a concurrent writer
// elsewhere, or the store is down): memory may be ahead of the store, so
// it is reloaded before anything else builds on it. The writes queued
// behind the failed one built on it too: the commands among them get the
// same error; extraction batches among them stay after the stored
// cursors, so the reload reads their turns again.
func (a *dossierActor) writeFailed(ctx actor.Context, err error) {
	for _, w := range a.writes {
		if w.fail != nil {
			w.fail(dossierError(err))
		}
	}
	a.saving, a.writes = false, nil
	a.loaded, a.exists, a.d = false, false, persistence.Dossier{}
	a.snap, a.protect = story.Snapshot{}, story.Protection{}
	a.pending, a.pendingTokens = nil, 0 // the reload reads them back
	a.load(ctx)
}

func dossierError(err error) error {
	switch {
	case errors.Is(err, ErrNotFound), errors.Is(err, persistence.ErrNotFound):
		return ErrNotFound
	case errors.Is(err, persistence.ErrConflict):
		return ErrVersionConflict
	case errors.Is(err, persistence.ErrInvalid):
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return ErrUnavailable
}

func (a *dossierActor) goIO(ctx actor.Context, f func(context.Context) any) {
	a.pendingIO++
	root, self, life, timeout := a.s.root, ctx.Self(), a.s.life, a.s.cfg.StoreTimeout
	if !a.s.work.Go(func() {
		c, cancel := context.WithTimeout(life, timeout)
		defer cancel()
		root.Send(self, f(c))
	}) {
		a.pendingIO--
	}
}

func (a *dossierActor) idle() bool {
	return !a.loading && !a.extracting && !a.saving && len(a.pending) == 0 && a.pendingIO == 0 && len(a.stash) == 0
}
