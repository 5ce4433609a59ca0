package actors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
	// refreshDossier: extract now from what is pending.
	refreshDossier struct {
		userID string
		reply  chan<- refreshResult
	}
	dossierLoaded struct {
		d       persistence.Dossier
		project persistence.Project
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
	saving        bool
	writes        []func() // store writes waiting for the one in flight
	debounce      int      // generation of the idle timer
	stopTimer     func()
	pendingIO     int
	draining      bool
	refreshAsked  bool // a refresh came while an extraction was in flight
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
	case *turnCompleted, *editDossier, *refreshDossier:
		if !a.loaded {
			a.stash = append(a.stash, msg)
			if !a.loading {
				a.load(ctx)
			}
			return
		}
		a.command(ctx, msg)
	case debounceFired:
		if msg.gen == a.debounce && len(a.pending) > 0 {
			a.extract(ctx)
		}
	case extractionDone:
		a.pendingIO--
		a.extracted(ctx, msg)
	case dossierSaved:
		a.pendingIO--
		a.saved(ctx, msg)
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
	case *refreshDossier:
		if m.userID != a.owner {
			m.fail(ErrNotFound)
			return
		}
		started := len(a.pending) > 0 && !a.extracting
		if started {
			a.extract(ctx)
		} else if a.extracting && len(a.pending) > 0 {
			a.refreshAsked = true // extract the rest as soon as this one is done
		}
		m.reply <- refreshResult{started: started || a.extracting}
	}
}

func (a *dossierActor) load(ctx actor.Context) {
	a.loading = true
	store, id := a.s.cfg.Store, a.projectID
	a.goIO(ctx, func(c context.Context) any {
		p, err := store.GetProject(c, id)
		if err != nil {
			return dossierLoaded{err: err}
		}
		d, err := store.GetDossier(c, id)
		if errors.Is(err, persistence.ErrNotFound) {
			return dossierLoaded{project: p}
		}
		return dossierLoaded{d: d, project: p, err: err}
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
	}
	stash := a.stash
	a.stash = nil
	for _, m := range stash {
		a.command(ctx, m)
	}
}

// turn adds a finished turn to the batch and extracts when the batch is
// big enough; otherwise an idle timer extracts it later.
func (a *dossierActor) turn(ctx actor.Context, t *turnCompleted) {
	if a.owner != "" && t.userID != a.owner {
		return // the session moved; its project's owner decides
	}
	a.pending = append(a.pending, *t)
	a.pendingTokens += llm.EstimateTokens(t.user) + llm.EstimateTokens(t.assistant)
	a.maybeExtract(ctx)
}

// maybeExtract extracts the pending batch if it is big enough (or a
// refresh asked for it); otherwise it (re)arms the idle timer.
func (a *dossierActor) maybeExtract(ctx actor.Context) {
	if len(a.pending) == 0 {
		return
	}
	cfg := a.s.cfg
	if a.refreshAsked || a.pendingTokens >= cfg.ExtractTokens || len(a.pending) >= cfg.ExtractTurns {
		a.extract(ctx)
		return
	}
	a.debounce++
	if a.stopTimer != nil {
		a.stopTimer()
	}
	gen, root, self := a.debounce, a.s.root, ctx.Self()
	a.stopTimer = cfg.After(cfg.ExtractIdle, func() { root.Send(self, debounceFired{gen: gen}) })
}

// extract runs the model on the pending batch, unless an extraction is in
// flight (the batch then waits for it).
func (a *dossierActor) extract(ctx actor.Context) {
	if a.extracting || len(a.pending) == 0 || a.s.cfg.Extractor == nil {
		return
	}
	batch := a.pending
	a.pending, a.pendingTokens = nil, 0
	a.extracting, a.refreshAsked = true, false
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
		a.extracting = false
	}
}

func (a *dossierActor) extracted(ctx actor.Context, msg extractionDone) {
	a.extracting = false
	a.s.extractions.Add(1)
	if msg.err != nil {
		a.s.extractionFailures.Add(1)
		a.s.cfg.Logger.Warn("extraction failed; the dossier is unchanged", "project_id", a.projectID, "err", msg.err)
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
		first, last := msg.batch[0], msg.batch[len(msg.batch)-1]
		a.write(ctx, merged, a.protect, persistence.DossierVersion{
			Source: persistence.SourceExtraction, SeqFrom: first.seqFrom, SeqTo: last.seqTo,
		}, changed, nil)
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
	a.write(ctx, after, prot, persistence.DossierVersion{Source: persistence.SourceUser}, changed, cmd)
}

// write stores a new version; writes run one at a time, in order.
func (a *dossierActor) write(ctx actor.Context, snap story.Snapshot, prot story.Protection,
	src persistence.DossierVersion, changed []string, cmd *editDossier) {
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
	run := func() {
		a.saving = true
		a.goIO(ctx, func(c context.Context) any {
			if create {
				if err := ensureProject(c, store, a.projectID, userID, cmd.edit.Anonymous, snap.Title); err != nil {
					return dossierSaved{edit: cmd, err: err}
				}
			}
			saved, err := store.SaveDossier(c, d, expected, src)
			return dossierSaved{d: saved, changed: changed, source: src.Source, edit: cmd, err: err}
		})
	}
	if a.saving {
		a.writes = append(a.writes, run)
		return
	}
	run()
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
		// The store refused (a concurrent writer elsewhere, or it is down):
		// reload the truth before anything else builds on memory.
		a.s.cfg.Logger.Error("save dossier", "project_id", a.projectID, "err", msg.err)
		if msg.edit != nil {
			msg.edit.fail(dossierError(msg.err))
		}
		a.loaded, a.exists, a.writes = false, false, nil
		a.snap, a.protect = story.Snapshot{}, story.Protection{}
		a.load(ctx)
		return
	}
	a.d = msg.d
	a.owner = msg.d.UserID
	if msg.edit != nil {
		msg.edit.reply <- editResult{d: msg.d}
	}
	if len(msg.changed) > 0 {
		a.s.root.Send(a.s.manager, &dossierChanged{update: DossierUpdate{
			ProjectID: a.projectID, Version: msg.d.Version, Changed: msg.changed, Source: msg.source,
		}, memory: memoryOf(msg.d.Snapshot)})
	}
	if len(a.writes) > 0 {
		next := a.writes[0]
		a.writes = a.writes[1:]
		next()
	}
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
