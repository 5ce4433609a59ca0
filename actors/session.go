package actors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/storyd/storyd/llm"
	"github.com/storyd/storyd/persistence"
	"github.com/storyd/storyd/story"
)

// Messages a session actor sends itself from its worker goroutines.
type (
	// sessionLoaded: activation finished reading the store.
	sessionLoaded struct {
		sess     persistence.Session
		msgs     []persistence.Message
		from, to int64 // the reserved seq block
		memory   memory
		err      error
	}
	// sessionCreated: the session (and its project and user) was created.
	sessionCreated struct {
		sess     persistence.Session
		from, to int64
		memory   memory
		err      error
	}
	// sessionDeactivated: the store marked the session inactive.
	sessionDeactivated struct {
		cmd *deleteSession
		err error
	}
	// seqsReserved: another block of seqs was reserved.
	seqsReserved struct {
		to  int64
		err error
	}
	// userMessageStored: the user message of cmd was stored (or found).
	userMessageStored struct {
		cmd     *sendChat
		msg     persistence.Message
		created bool
		err     error
	}
	// replyLoaded: the stored reply to a duplicate message was read.
	replyLoaded struct {
		sub    Subscriber
		follow bool
		turn   *turn
		msg    persistence.Message
		err    error
	}
	// backlogLoaded: stored messages after a subscriber's after_seq were read.
	backlogLoaded struct {
		sub   Subscriber
		after int64
		msgs  []persistence.Message
		err   error
	}
	// tokenArrived: the model produced more text for generation gen.
	tokenArrived struct {
		gen   int
		delta string
	}
	// generationEnded: the model stream of generation gen returned.
	generationEnded struct {
		gen int
		err error
	}
	// replyStored: the assistant message of generation gen was stored.
	replyStored struct {
		gen int
		err error
	}
)

type phase int

const (
	phaseLoading  phase = iota // reading the store; commands are stashed
	phaseAbsent                // no such session yet; a chat creates it
	phaseCreating              // creating it; commands are stashed
	phaseReady
	phaseUnloaded // loading failed; the next command loads again
)

// seqBlock is how many event seqs a session actor reserves at a time.
const seqBlock = 1024

// maxPendingChats bounds the chats a session holds waiting for their reply.
const maxPendingChats = 32

// turn is one user message and its reply.
type turn struct {
	user persistence.Message
	gen  int
	// Filled while generating:
	cancel    context.CancelFunc
	firstSeq  int64 // seq of the reply's first event, 0 until one is published
	text      strings.Builder
	cancelled bool
	// Filled when the model stream ended:
	status      string
	errInfo     *ErrorInfo
	assistantID string
	metaSeq     int64
	doneSeq     int64
}

// historyEntry is one message of the context window.
type historyEntry struct {
	id     string
	role   string
	text   string
	tokens int
}

type subscription struct {
	turnID string // non-empty: only this turn's events, removed after its done
	// pending: registered, waiting for its catch-up from the store; it gets
	// no live events until then (they are in the ring), and an unsubscribe
	// meanwhile removes it for good.
	pending bool
}

// sessionActor owns one chat session. See the package doc for its rules.
type sessionActor struct {
	s     *Sessions
	id    string
	phase phase
	stash []any

	sess     persistence.Session
	nextSeq  int64
	reserved int64 // the highest seq reserved in the store
	// reserving is true while a seq block reservation is in flight.
	reserving bool
	// creating is the chat whose session is being created.
	creating *sendChat
	history  []historyEntry
	tokens   int
	ring     *eventRing
	subs     map[Subscriber]subscription

	incoming  []*sendChat // chats waiting to be stored, one store call at a time
	storing   bool
	queue     []*turn // stored user messages waiting for their reply
	cur       *turn   // the turn generating or storing its reply
	gens      int
	pendingIO int // store calls in flight besides the above
	draining  bool
	// lastActive is when the actor last got a message other than an
	// idleCheck; an actor idle for Config.IdleTimeout offers to passivate.
	lastActive time.Time
	// dossierUpdated: the project's dossier got a new version since the
	// last metadata event.
	dossierUpdated bool
	// memory is the project's dossier as a system message for the model.
	// It is read at activation and replaced by every dossierChanged; one
	// that comes while the session loads waits in early.
	memory memory
	early  *dossierChanged
}

// memory is a dossier version as the chat model's context
// (llm.DossierContext; "" while the dossier is empty or deleted).
type memory struct {
	text    string
	version int
}

func newSessionActor(s *Sessions, id string) *sessionActor {
	return &sessionActor{s: s, id: id, subs: map[Subscriber]subscription{}}
}

// Receive implements actor.Actor.
func (a *sessionActor) Receive(ctx actor.Context) {
	if _, check := ctx.Message().(idleCheck); !check {
		a.lastActive = time.Now()
	}
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		a.activate(ctx)
	case sessionLoaded:
		a.loaded(ctx, msg)
	case sessionCreated:
		a.created(ctx, msg)
	case sessionDeactivated:
		a.pendingIO--
		a.deactivated(ctx, msg)
	case backlogLoaded:
		a.pendingIO--
		a.backlog(msg)
	case *unsubscribe:
		if _, ok := a.subs[msg.sub]; ok {
			delete(a.subs, msg.sub)
			msg.sub.Drop(nil)
		}
	case userMessageStored:
		a.userStored(ctx, msg)
	case replyLoaded:
		a.pendingIO--
		a.replayStored(ctx, msg)
	case tokenArrived:
		a.token(ctx, msg)
	case generationEnded:
		a.generationEnded(ctx, msg)
	case replyStored:
		a.replyStored(ctx, msg)
	case seqsReserved:
		a.pendingIO--
		a.reserving = false
		if msg.err != nil {
			a.s.cfg.Logger.Error("reserve seqs", "session_id", a.id, "err", msg.err)
		} else if msg.to > a.reserved {
			a.reserved = msg.to
		}
	case idleCheck:
		if a.idle() && time.Since(a.lastActive) >= a.s.cfg.IdleTimeout {
			ctx.Send(ctx.Parent(), passivationRequest{sessionID: a.id})
		}
		return
	case passivate:
		if a.idle() {
			ctx.Stop(ctx.Self())
		} else {
			ctx.Send(ctx.Parent(), passivationDeclined{sessionID: a.id})
		}
	case *drain:
		a.draining = true
	case *abortAll:
		a.draining = true
		if a.cur != nil && a.cur.cancel != nil {
			a.cur.cancel()
		}
	case *actor.Stopping:
		a.stopping()
		return
	case *actor.Stopped:
		return
	default:
		a.command(ctx, msg)
	}
	if a.draining {
		a.stopIfDrained(ctx)
	}
}

func (a *sessionActor) activate(ctx actor.Context) {
	a.load(ctx)
}

// load reads the session, its context window and a block of seqs.
func (a *sessionActor) load(ctx actor.Context) {
	a.phase = phaseLoading
	store, limit, id := a.s.cfg.Store, a.s.cfg.HistoryLimit, a.id
	a.goIO(ctx, func(c context.Context) any {
		sess, err := store.GetSession(c, id)
		if err != nil {
			return sessionLoaded{err: err}
		}
		msgs, err := store.RecentMessages(c, id, limit)
		if err != nil {
			return sessionLoaded{err: err}
		}
		from, to, err := store.ReserveSeqs(c, id, seqBlock)
		return sessionLoaded{sess: sess, msgs: msgs, from: from, to: to, memory: a.readMemory(c, sess.ProjectID), err: err}
	})
}

func (a *sessionActor) loaded(ctx actor.Context, msg sessionLoaded) {
	a.pendingIO--
	switch {
	case errors.Is(msg.err, persistence.ErrNotFound):
		a.phase = phaseAbsent
	case msg.err != nil:
		// Stay alive (stopping here would lose commands the manager is
		// forwarding); the next command tries to load again.
		a.s.cfg.Logger.Error("load session", "session_id", a.id, "err", msg.err)
		a.phase = phaseUnloaded
		a.failStash(ErrUnavailable)
		return
	default:
		a.ready(msg.sess, msg.from, msg.to)
		a.takeMemory(msg.memory)
		for _, m := range msg.msgs {
			a.remember(m.ID, m.Role, m.Content)
		}
	}
	a.unstash(ctx)
}

// ready moves the actor to phaseReady with sess as its session and the
// seqs (from, to] to number its events with.
func (a *sessionActor) ready(sess persistence.Session, from, to int64) {
	a.phase = phaseReady
	a.sess = sess
	a.nextSeq = from + 1
	a.reserved = to
	a.ring = newEventRing(a.s.cfg.ReplayEvents, sess.LastSeq, from)
}

// waiting reports whether commands must wait for the store (stashing them),
// starting a new load when the last one failed.
func (a *sessionActor) waiting(ctx actor.Context, cmd any) bool {
	switch a.phase {
	case phaseUnloaded:
		a.stash = append(a.stash, cmd)
		a.load(ctx)
		return true
	case phaseLoading, phaseCreating:
		a.stash = append(a.stash, cmd)
		return true
	}
	return false
}

func (a *sessionActor) unstash(ctx actor.Context) {
	stash := a.stash
	a.stash = nil
	for i, m := range stash {
		if a.phase == phaseLoading || a.phase == phaseCreating {
			a.stash = append(a.stash, stash[i:]...)
			return
		}
		a.command(ctx, m)
	}
}

// command handles a command from outside the actor (possibly stashed
// earlier); it reports whether m was one.
func (a *sessionActor) command(ctx actor.Context, m any) bool {
	switch m := m.(type) {
	case *sendChat:
		a.chat(ctx, m)
	case *subscribe:
		a.subscribe(ctx, m)
	case *cancelReply:
		a.cancel(ctx, m)
	case *deleteSession:
		a.delete(ctx, m)
	case *ownerChanged:
		a.ownerChanged(m)
	case *dossierChanged:
		a.dossierChanged(m)
	default:
		return false
	}
	return true
}

// readMemory reads the project's dossier for the model's context. It runs
// in an I/O goroutine and touches no actor state. A dossier that cannot be
// read leaves the context without it (logged): the conversation goes on.
func (a *sessionActor) readMemory(ctx context.Context, projectID string) memory {
	d, err := a.s.cfg.Store.GetDossier(ctx, projectID)
	if err != nil {
		if !errors.Is(err, persistence.ErrNotFound) {
			a.s.cfg.Logger.Warn("read dossier for the context", "session_id", a.id, "project_id", projectID, "err", err)
		}
		return memory{}
	}
	return memory{text: memoryOf(d.Snapshot), version: d.Version}
}

// takeMemory takes the memory read at activation, unless a dossierChanged
// that came while the session loaded is newer (the read may predate it).
func (a *sessionActor) takeMemory(m memory) {
	a.memory = m
	if e := a.early; e != nil && e.update.ProjectID == a.sess.ProjectID && (e.update.Version > m.version || e.update.Version == 0) {
		a.memory = memory{text: e.memory, version: e.update.Version}
		a.dossierUpdated = true
	}
	a.early = nil
}

// memoryOf renders a stored snapshot as the model's dossier context.
func memoryOf(raw json.RawMessage) string {
	var snap story.Snapshot
	if err := json.Unmarshal(raw, &snap); err != nil {
		return ""
	}
	snap.Normalize()
	return llm.DossierContext(snap)
}

// dossierChanged tells the session's followers that the project's dossier
// has a new version, makes the next reply's metadata say so, and puts the
// new dossier into the model's context from the next reply on.
func (a *sessionActor) dossierChanged(m *dossierChanged) {
	if a.phase == phaseLoading || a.phase == phaseCreating {
		a.early = m // applied once the session is known (takeMemory)
		return
	}
	if a.phase != phaseReady || m.update.ProjectID != a.sess.ProjectID {
		return
	}
	a.dossierUpdated = true
	a.memory = memory{text: m.memory, version: m.update.Version}
	u := m.update
	ev := Event{Type: EventDossier, SessionID: a.id, Dossier: &u}
	for sub, s := range a.subs {
		if s.turnID == "" && !s.pending && !sub.Deliver(ev) {
			a.drop(sub, ErrSlowSubscriber)
		}
	}
}

func (a *sessionActor) failStash(err error) {
	failAll(a.stash, err)
	a.stash = nil
}

func (a *sessionActor) chat(ctx actor.Context, cmd *sendChat) {
	switch {
	case a.draining:
		cmd.fail(ErrShuttingDown)
		return
	case a.waiting(ctx, cmd):
		return
	case a.phase == phaseAbsent:
		a.create(ctx, cmd)
		return
	}
	req := cmd.req
	if req.UserID != a.sess.UserID || !a.sess.IsActive {
		cmd.fail(ErrNotFound)
		return
	}
	if req.ProjectID != "" && req.ProjectID != a.sess.ProjectID {
		cmd.fail(ErrProjectMismatch)
		return
	}
	if len(a.incoming)+len(a.queue) >= maxPendingChats {
		cmd.fail(ErrTooManyPending)
		return
	}
	a.incoming = append(a.incoming, cmd)
	a.storeNext(ctx)
}

// create makes the session (and, when needed, its user and project) for the
// chat cmd, which is then processed like any other.
func (a *sessionActor) create(ctx actor.Context, cmd *sendChat) {
	a.phase = phaseCreating
	a.creating = cmd
	req, store, id := cmd.req, a.s.cfg.Store, a.id
	a.goIO(ctx, func(c context.Context) any {
		sess, err := createSession(c, store, id, req)
		if err != nil {
			return sessionCreated{err: err}
		}
		from, to, err := store.ReserveSeqs(c, id, seqBlock)
		return sessionCreated{sess: sess, from: from, to: to, memory: a.readMemory(c, sess.ProjectID), err: err}
	})
}

func createSession(ctx context.Context, store Store, id string, req ChatRequest) (persistence.Session, error) {
	u, err := store.EnsureUser(ctx, persistence.User{ID: req.UserID, IsAnonymous: req.Anonymous})
	if err != nil {
		return persistence.Session{}, fmt.Errorf("ensure user: %w", err)
	}
	if u.MigratedTo != "" || req.Anonymous && !u.IsAnonymous {
		// A dead anonymous id, or an anonymous client naming an account.
		return persistence.Session{}, ErrNotFound
	}
	title := persistence.DeriveTitle(req.Text)
	projectID := req.ProjectID
	if projectID == "" {
		projectID = newID()
	}
	p, err := store.GetProject(ctx, projectID)
	if errors.Is(err, persistence.ErrNotFound) {
		p, err = store.CreateProject(ctx, persistence.Project{ID: projectID, UserID: req.UserID, Title: title})
		if errors.Is(err, persistence.ErrConflict) {
			// Another session created it meanwhile: use it if it is theirs.
			p, err = store.GetProject(ctx, projectID)
		}
	}
	switch {
	case err != nil:
		return persistence.Session{}, fmt.Errorf("get project: %w", err)
	case p.UserID != req.UserID:
		return persistence.Session{}, ErrNotFound
	}
	sess, err := store.CreateSession(ctx, persistence.Session{ID: id, UserID: req.UserID, ProjectID: p.ID, Title: title})
	if err != nil {
		return persistence.Session{}, fmt.Errorf("create session: %w", err)
	}
	return sess, nil
}

func (a *sessionActor) created(ctx actor.Context, msg sessionCreated) {
	a.pendingIO--
	cmd := a.creating
	a.creating = nil
	if msg.err != nil {
		a.phase = phaseAbsent
		if cmd != nil {
			cmd.fail(storeError(msg.err))
		}
		if !errors.Is(msg.err, ErrNotFound) && !errors.Is(msg.err, persistence.ErrInvalid) {
			a.s.cfg.Logger.Error("create session", "session_id", a.id, "err", msg.err)
		}
	} else {
		a.ready(msg.sess, msg.from, msg.to)
		a.takeMemory(msg.memory)
		if cmd != nil {
			a.chat(ctx, cmd)
		}
	}
	a.unstash(ctx)
}

// storeError maps a store failure to the error a caller gets: a client
// mistake stays one; anything else is the store being unavailable.
func storeError(err error) error {
	switch {
	case errors.Is(err, ErrNotFound), errors.Is(err, persistence.ErrNotFound):
		return ErrNotFound
	case errors.Is(err, persistence.ErrInvalid):
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return ErrUnavailable
}

// storeNext stores the next incoming user message, one at a time, so that
// seqs are stored in the order they were given.
func (a *sessionActor) storeNext(ctx actor.Context) {
	if a.storing || len(a.incoming) == 0 {
		return
	}
	cmd := a.incoming[0]
	a.incoming = a.incoming[1:]
	a.storing = true
	seq := a.takeSeq(ctx)
	id := newID()
	m := persistence.Message{
		ID:              id,
		SessionID:       a.id,
		Seq:             seq,
		EndSeq:          seq,
		TurnID:          id,
		Role:            persistence.RoleUser,
		Content:         cmd.req.Text,
		Status:          persistence.StatusComplete,
		ClientMessageID: cmd.req.ClientMessageID,
	}
	store := a.s.cfg.Store
	a.goIO(ctx, func(c context.Context) any {
		stored, created, err := store.AppendMessage(c, m)
		return userMessageStored{cmd: cmd, msg: stored, created: created, err: err}
	})
}

func (a *sessionActor) userStored(ctx actor.Context, msg userMessageStored) {
	a.pendingIO--
	a.storing = false
	defer a.storeNext(ctx)
	cmd := msg.cmd
	if msg.err != nil {
		if !errors.Is(msg.err, persistence.ErrInvalid) {
			a.s.cfg.Logger.Error("store user message", "session_id", a.id, "err", msg.err)
		}
		cmd.fail(storeError(msg.err))
		return
	}
	acc := ChatAccepted{
		SessionID:       a.id,
		ProjectID:       a.sess.ProjectID,
		UserID:          a.sess.UserID,
		MessageID:       msg.msg.ID,
		ClientMessageID: msg.msg.ClientMessageID,
		Seq:             msg.msg.Seq,
		Duplicate:       !msg.created,
	}
	cmd.reply <- chatResult{accepted: acc}
	sub, follow := cmd.req.Subscriber, cmd.req.Follow
	if sub != nil && !sub.Deliver(Event{Type: EventAck, SessionID: a.id, Seq: acc.Seq, TurnID: msg.msg.ID, Ack: &acc}) {
		a.drop(sub, ErrSlowSubscriber)
		sub = nil
	}
	if !msg.created {
		a.duplicate(ctx, msg.msg, sub, follow)
		return
	}
	t := &turn{user: msg.msg}
	if sub != nil {
		a.addSub(sub, t.user.ID, follow)
	}
	a.publish(Event{Type: EventMessage, SessionID: a.id, Seq: t.user.Seq, TurnID: t.user.ID, Message: &UserMessage{
		MessageID: t.user.ID, Role: t.user.Role, Content: t.user.Content, ClientMessageID: t.user.ClientMessageID,
	}})
	a.queue = append(a.queue, t)
	a.startNext(ctx)
}

// addSub registers sub for one turn, or for the whole session when follow
// is set; a subscriber that already follows the session keeps doing so.
func (a *sessionActor) addSub(sub Subscriber, turnID string, follow bool) {
	if cur, ok := a.subs[sub]; ok && cur.turnID == "" {
		return
	}
	if follow {
		turnID = ""
	}
	a.subs[sub] = subscription{turnID: turnID}
}

// drop removes sub (if registered) and tells it why.
func (a *sessionActor) drop(sub Subscriber, err error) {
	delete(a.subs, sub)
	sub.Drop(err)
}

// duplicate brings sub up to date with the turn of an already stored user
// message: it follows it if it is still in flight, is replayed what the
// ring or the store holds, and the reply is generated if none was stored.
func (a *sessionActor) duplicate(ctx actor.Context, user persistence.Message, sub Subscriber, follow bool) {
	if cur, ok := a.subs[sub]; sub != nil && ok && cur.turnID == "" {
		return // it already follows the session, this turn included
	}
	if t := a.findTurn(user.ID); t != nil {
		if sub != nil {
			evs, _, ok := a.ring.turn(user.ID, user.Seq)
			if !ok && t.firstSeq > 0 {
				// The start of the reply left memory: send what it has so far
				// as one piece.
				evs = []Event{{Type: EventText, SessionID: a.id, Seq: t.firstSeq, TurnID: user.ID, Content: t.text.String()}}
			}
			if a.deliverAll(sub, evs) {
				a.addSub(sub, user.ID, follow)
			}
		}
		return
	}
	if evs, complete, ok := a.ring.turn(user.ID, user.Seq); ok && complete {
		if sub != nil && a.deliverAll(sub, evs) {
			a.finishReplay(sub, follow)
		}
		return
	}
	store := a.s.cfg.Store
	t := &turn{user: user}
	a.goIO(ctx, func(c context.Context) any {
		reply, err := store.GetReply(c, user.SessionID, user.ID)
		return replyLoaded{sub: sub, follow: follow, turn: t, msg: reply, err: err}
	})
}

// finishReplay ends a replay of a finished turn: a follower goes on with
// live events, a turn subscriber is done.
func (a *sessionActor) finishReplay(sub Subscriber, follow bool) {
	if follow {
		a.subs[sub] = subscription{}
		return
	}
	sub.Drop(nil)
}

// replayStored answers a duplicate whose turn is no longer in memory.
func (a *sessionActor) replayStored(ctx actor.Context, msg replyLoaded) {
	switch {
	case errors.Is(msg.err, persistence.ErrNotFound):
		// The message was stored but its reply never was (the server stopped
		// mid-way): generate it now, unless another retry already queued it.
		if t := a.findTurn(msg.turn.user.ID); t != nil {
			if msg.sub != nil {
				a.addSub(msg.sub, t.user.ID, msg.follow)
			}
			return
		}
		if msg.sub != nil {
			a.addSub(msg.sub, msg.turn.user.ID, msg.follow)
		}
		a.queue = append(a.queue, msg.turn)
		a.startNext(ctx)
		return
	case msg.err != nil:
		a.s.cfg.Logger.Error("load reply", "session_id", a.id, "err", msg.err)
		if msg.sub != nil {
			a.deliverAll(msg.sub, []Event{
				{Type: EventError, SessionID: a.id, Seq: msg.turn.user.Seq, TurnID: msg.turn.user.ID,
					Err: &ErrorInfo{Code: "store_unavailable", Message: "the stored reply could not be read; retry later"}},
			})
			msg.sub.Drop(ErrUnavailable)
		}
		return
	}
	if msg.sub == nil {
		return
	}
	if a.deliverAll(msg.sub, a.storedEvents(msg.msg)) {
		a.finishReplay(msg.sub, msg.follow)
	}
}

// storedEvents rebuilds the events of a stored message. A user message is
// its message event; a reply is one text event with the whole content (at
// the reply's first seq), its error if it had one, metadata and done, at the
// seqs they had when streamed.
func (a *sessionActor) storedEvents(m persistence.Message) []Event {
	if m.Role == persistence.RoleUser {
		return []Event{{Type: EventMessage, SessionID: a.id, Seq: m.Seq, TurnID: m.TurnID, Message: &UserMessage{
			MessageID: m.ID, Role: m.Role, Content: m.Content, ClientMessageID: m.ClientMessageID,
		}}}
	}
	var evs []Event
	var stored struct {
		Error *ErrorInfo `json:"error"`
	}
	_ = json.Unmarshal(m.Metadata, &stored) // nil or foreign metadata: no error
	if m.Content != "" && (stored.Error == nil || m.Seq < m.EndSeq-2) {
		evs = append(evs, Event{Type: EventText, SessionID: a.id, Seq: m.Seq, TurnID: m.TurnID, Content: m.Content})
	}
	if stored.Error != nil {
		evs = append(evs, Event{Type: EventError, SessionID: a.id, Seq: m.EndSeq - 2, TurnID: m.TurnID, Err: stored.Error})
	}
	return append(evs,
		Event{Type: EventMetadata, SessionID: a.id, Seq: m.EndSeq - 1, TurnID: m.TurnID, Metadata: a.metadata(m.ID, m.Status)},
		Event{Type: EventDone, SessionID: a.id, Seq: m.EndSeq, TurnID: m.TurnID},
	)
}

// subscribe adds a follower, bringing it up to date first.
func (a *sessionActor) subscribe(ctx actor.Context, cmd *subscribe) {
	switch {
	case a.draining:
		cmd.fail(ErrShuttingDown)
		return
	case a.waiting(ctx, cmd):
		return
	case a.phase == phaseAbsent:
		cmd.fail(ErrNotFound)
		a.fade(ctx)
		return
	}
	req := cmd.req
	if req.UserID != a.sess.UserID || !a.sess.IsActive {
		cmd.fail(ErrNotFound)
		return
	}
	latest := a.nextSeq - 1
	var after int64
	switch {
	case req.AfterSeq != nil:
		after = *req.AfterSeq
		if after < 0 || after > latest {
			cmd.fail(ErrInvalidAfterSeq)
			return
		}
	case a.cur != nil:
		after = a.cur.user.Seq // the reply in flight, from its start
	default:
		after = latest
	}
	cmd.reply <- nil
	sub := req.Subscriber
	if evs, ok := a.ring.since(after); ok {
		if a.deliverAll(sub, evs) {
			a.subs[sub] = subscription{}
		}
		return
	}
	// Older than memory: read what the store has after it.
	a.subs[sub] = subscription{pending: true}
	store, id, limit := a.s.cfg.Store, a.id, a.s.cfg.ReplayEvents
	a.goIO(ctx, func(c context.Context) any {
		msgs, err := store.MessagesAfter(c, id, after, limit)
		return backlogLoaded{sub: sub, after: after, msgs: msgs, err: err}
	})
}

// backlog catches a subscriber up from the store, then from memory; where
// neither holds every missed event it sends EventReset instead.
func (a *sessionActor) backlog(msg backlogLoaded) {
	if s, ok := a.subs[msg.sub]; !ok || !s.pending {
		return // unsubscribed (or dropped) while the store was read
	}
	if msg.err != nil {
		a.s.cfg.Logger.Error("load backlog", "session_id", a.id, "err", msg.err)
	}
	var evs []Event
	upTo := msg.after
	whole := msg.err == nil && len(msg.msgs) < a.s.cfg.ReplayEvents
	for _, m := range msg.msgs {
		if !whole || m.Seq <= upTo {
			// after_seq falls inside a reply whose pieces are gone.
			whole = false
			break
		}
		evs = append(evs, a.storedEvents(m)...)
		upTo = m.EndSeq
	}
	live, ok := a.ring.since(upTo)
	if !whole || !ok {
		reset := Event{Type: EventReset, SessionID: a.id, Seq: a.nextSeq - 1}
		live = nil
		if a.cur != nil {
			// Still show the reply in flight from its start; the reset's seq
			// comes before it, so seqs keep increasing.
			reset.Seq = a.cur.user.Seq
			live, _ = a.ring.since(a.cur.user.Seq)
		}
		evs = []Event{reset}
	}
	if a.deliverAll(msg.sub, append(evs, live...)) {
		a.subs[msg.sub] = subscription{}
	}
}

// fade offers passivation at once when the actor holds no session (a
// command named an id that does not exist), so that guessing ids does not
// keep actors alive.
func (a *sessionActor) fade(ctx actor.Context) {
	if a.phase == phaseAbsent && a.idle() {
		ctx.Send(ctx.Parent(), passivationRequest{sessionID: a.id})
	}
}

// ownerChanged follows a migration of the session to another user. While
// loading it waits: the load may have read the old owner.
func (a *sessionActor) ownerChanged(msg *ownerChanged) {
	switch a.phase {
	case phaseLoading, phaseCreating:
		a.stash = append(a.stash, msg)
	case phaseReady:
		if a.sess.UserID == msg.from {
			a.sess.UserID = msg.to
			// Followers subscribed as the old (now dead) id: they must
			// subscribe again as the new owner.
			for sub, s := range a.subs {
				if s.turnID == "" {
					a.drop(sub, ErrSessionClosed)
				}
			}
		}
	}
}

// delete deactivates the session in the store, then in memory.
func (a *sessionActor) delete(ctx actor.Context, cmd *deleteSession) {
	switch {
	case a.waiting(ctx, cmd):
		return
	case a.phase == phaseAbsent || cmd.userID != a.sess.UserID || !a.sess.IsActive:
		cmd.fail(ErrNotFound)
		a.fade(ctx)
		return
	}
	store, id := a.s.cfg.Store, a.id
	a.goIO(ctx, func(c context.Context) any {
		return sessionDeactivated{cmd: cmd, err: store.DeactivateSession(c, id)}
	})
}

func (a *sessionActor) deactivated(ctx actor.Context, msg sessionDeactivated) {
	if msg.err != nil {
		msg.cmd.fail(storeError(msg.err))
		return
	}
	a.sess.IsActive = false
	if a.cur != nil && a.cur.cancel != nil && a.cur.status == "" {
		a.cur.cancelled = true
		a.cur.cancel()
	}
	for _, c := range a.incoming {
		c.fail(ErrNotFound)
	}
	a.incoming = nil
	for _, t := range a.queue {
		a.abandonAs(ctx, t, &ErrorInfo{Code: "session_deleted", Message: "the session was deleted"})
	}
	a.queue = nil
	for sub, s := range a.subs {
		if s.turnID == "" {
			a.drop(sub, ErrSessionClosed)
		}
	}
	msg.cmd.reply <- nil
}

// cancel stops the reply being generated, if any.
func (a *sessionActor) cancel(ctx actor.Context, cmd *cancelReply) {
	switch {
	case a.waiting(ctx, cmd):
		return
	case a.phase == phaseAbsent || cmd.userID != a.sess.UserID || !a.sess.IsActive:
		cmd.fail(ErrNotFound)
		a.fade(ctx)
		return
	}
	t := a.cur
	if t == nil || t.status != "" || t.cancel == nil {
		cmd.reply <- cancelResult{}
		return
	}
	t.cancelled = true
	t.cancel()
	cmd.reply <- cancelResult{cancelled: true}
}

func (a *sessionActor) findTurn(turnID string) *turn {
	if a.cur != nil && a.cur.user.ID == turnID {
		return a.cur
	}
	for _, t := range a.queue {
		if t.user.ID == turnID {
			return t
		}
	}
	return nil
}

// startNext starts generating the reply of the next queued turn, if no reply
// is in flight.
func (a *sessionActor) startNext(ctx actor.Context) {
	if a.cur != nil || len(a.queue) == 0 {
		return
	}
	if a.draining {
		for _, t := range a.queue {
			a.abandon(ctx, t)
		}
		a.queue = nil
		return
	}
	t := a.queue[0]
	a.queue = a.queue[1:]
	a.cur = t
	a.gens++
	t.gen = a.gens
	a.remember(t.user.ID, t.user.Role, t.user.Content)

	prompt := make([]llm.Message, 0, len(a.history)+2)
	prompt = append(prompt, llm.Message{Role: llm.RoleSystem, Content: a.s.cfg.SystemPrompt})
	history := a.history
	if a.memory.text != "" {
		prompt = append(prompt, llm.Message{Role: llm.RoleSystem, Content: a.memory.text})
		// The memory shares the context budget with the history: the
		// oldest messages give way (the newest, the user's, stays).
		budget, tokens := a.s.cfg.ContextTokens-llm.EstimateTokens(a.memory.text), a.tokens
		for tokens > budget && len(history) > 1 {
			tokens -= history[0].tokens
			history = history[1:]
		}
	}
	for _, h := range history {
		prompt = append(prompt, llm.Message{Role: h.role, Content: h.text})
	}
	genCtx, cancel := context.WithCancel(a.s.life)
	t.cancel = cancel
	root, self, gen, model := a.s.root, ctx.Self(), t.gen, a.s.cfg.Model
	started := a.s.work.Go(func() {
		defer cancel()
		err := model.StreamChat(genCtx, prompt, func(delta string) error {
			root.Send(self, tokenArrived{gen: gen, delta: delta})
			return nil
		})
		root.Send(self, generationEnded{gen: gen, err: err})
	})
	if !started {
		cancel()
		a.generationEnded(ctx, generationEnded{gen: gen, err: ErrShuttingDown})
	}
}

// abandon ends a queued turn that will not be answered because the server
// is stopping: its subscribers get an error and done.
func (a *sessionActor) abandon(ctx actor.Context, t *turn) {
	a.abandonAs(ctx, t, &ErrorInfo{Code: "server_shutdown", Message: "the server is restarting; send the message again"})
}

// abandonAs ends a queued turn with an error and done.
func (a *sessionActor) abandonAs(ctx actor.Context, t *turn, why *ErrorInfo) {
	a.publish(Event{Type: EventError, SessionID: a.id, Seq: a.takeSeq(ctx), TurnID: t.user.ID, Err: why})
	a.publish(Event{Type: EventDone, SessionID: a.id, Seq: a.takeSeq(ctx), TurnID: t.user.ID})
}

func (a *sessionActor) token(ctx actor.Context, msg tokenArrived) {
	t := a.cur
	if t == nil || t.gen != msg.gen || msg.delta == "" || t.status != "" {
		return
	}
	seq := a.takeSeq(ctx)
	if t.firstSeq == 0 {
		t.firstSeq = seq
	}
	t.text.WriteString(msg.delta)
	a.publish(Event{Type: EventText, SessionID: a.id, Seq: seq, TurnID: t.user.ID, Content: msg.delta})
}

func (a *sessionActor) generationEnded(ctx actor.Context, msg generationEnded) {
	t := a.cur
	if t == nil || t.gen != msg.gen || t.status != "" {
		return
	}
	switch {
	case msg.err == nil:
		t.status = persistence.StatusComplete
	case t.cancelled:
		t.status = persistence.StatusCancelled
	default:
		if t.text.Len() > 0 {
			t.status = persistence.StatusPartial
		} else {
			t.status = persistence.StatusFailed
		}
		t.errInfo = modelError(msg.err)
		a.s.cfg.Logger.Warn("generation failed", "session_id", a.id, "status", t.status, "err", msg.err)
		seq := a.takeSeq(ctx)
		if t.firstSeq == 0 {
			t.firstSeq = seq
		}
		a.publish(Event{Type: EventError, SessionID: a.id, Seq: seq, TurnID: t.user.ID, Err: t.errInfo})
	}
	t.metaSeq = a.takeSeq(ctx)
	t.doneSeq = a.takeSeq(ctx)
	if t.firstSeq == 0 {
		t.firstSeq = t.metaSeq
	}
	t.assistantID = newID()
	var meta json.RawMessage
	if t.errInfo != nil {
		meta, _ = json.Marshal(map[string]any{"error": t.errInfo})
	}
	m := persistence.Message{
		ID:        t.assistantID,
		SessionID: a.id,
		Seq:       t.firstSeq,
		EndSeq:    t.doneSeq,
		TurnID:    t.user.ID,
		Role:      persistence.RoleAssistant,
		Content:   t.text.String(),
		Metadata:  meta,
		Status:    t.status,
	}
	store, gen := a.s.cfg.Store, t.gen
	a.goIO(ctx, func(c context.Context) any {
		_, _, err := store.AppendMessage(c, m)
		return replyStored{gen: gen, err: err}
	})
}

func (a *sessionActor) replyStored(ctx actor.Context, msg replyStored) {
	a.pendingIO--
	t := a.cur
	if t == nil || t.gen != msg.gen {
		return
	}
	if msg.err != nil {
		a.s.cfg.Logger.Error("store reply", "session_id", a.id, "err", msg.err)
		a.publish(Event{Type: EventError, SessionID: a.id, Seq: t.metaSeq, TurnID: t.user.ID,
			Err: &ErrorInfo{Code: "store_unavailable", Message: "the reply could not be saved"}})
	} else {
		a.sess.LastSeq = t.doneSeq
		if t.text.Len() > 0 {
			a.remember(t.assistantID, persistence.RoleAssistant, t.text.String())
		}
		meta := a.metadata(t.assistantID, t.status)
		meta.DossierUpdated, a.dossierUpdated = a.dossierUpdated, false
		a.publish(Event{Type: EventMetadata, SessionID: a.id, Seq: t.metaSeq, TurnID: t.user.ID, Metadata: meta})
	}
	if a.s.cfg.Extractor != nil {
		// Every stored user message goes to the dossier, whatever became of
		// its reply (failed, cancelled, or not stored: then the turn is the
		// user's words alone): it carries facts.
		tc := &turnCompleted{sessionID: a.id, userID: a.sess.UserID, user: t.user.Content,
			seqFrom: t.user.Seq, seqTo: max(t.user.EndSeq, t.user.Seq)}
		if msg.err == nil {
			tc.assistant, tc.seqTo = t.text.String(), t.doneSeq
		}
		a.s.root.Send(a.s.manager, routed{sessionID: dossierKeyPrefix + a.sess.ProjectID, msg: tc})
	}
	a.publish(Event{Type: EventDone, SessionID: a.id, Seq: t.doneSeq, TurnID: t.user.ID})
	a.cur = nil
	a.startNext(ctx)
}

func (a *sessionActor) metadata(messageID, status string) *Metadata {
	return &Metadata{
		SessionID: a.id,
		ProjectID: a.sess.ProjectID,
		MessageID: messageID,
		UserID:    a.sess.UserID,
		Status:    status,
	}
}

// publish records ev and hands it to every subscriber that wants it. A
// subscriber whose queue is full is dropped; a turn subscriber is done after
// its turn's done event.
func (a *sessionActor) publish(ev Event) {
	if len(a.subs) > 1 {
		ev.Wire = NewWire() // encoded once for all of them
	}
	a.ring.add(ev)
	for sub, s := range a.subs {
		if s.pending || s.turnID != "" && (s.turnID != ev.TurnID || ev.Type == EventMessage) {
			continue
		}
		if !sub.Deliver(ev) {
			delete(a.subs, sub)
			sub.Drop(ErrSlowSubscriber)
			continue
		}
		if s.turnID != "" && ev.Type == EventDone {
			delete(a.subs, sub)
			sub.Drop(nil)
		}
	}
}

// deliverAll hands evs to sub as one batch (a catch-up counts as one item
// of its bounded queue, however long), dropping it when its queue is full;
// it reports whether sub kept up.
func (a *sessionActor) deliverAll(sub Subscriber, evs []Event) bool {
	if len(evs) == 0 {
		return true
	}
	if !sub.DeliverBatch(evs) {
		delete(a.subs, sub)
		sub.Drop(ErrSlowSubscriber)
		return false
	}
	return true
}

// remember appends a message to the context window and trims the window to
// the token budget, keeping the most recent messages (at least one).
func (a *sessionActor) remember(id, role, text string) {
	for _, h := range a.history {
		if h.id == id {
			return
		}
	}
	if role != persistence.RoleUser && role != persistence.RoleAssistant || text == "" {
		return
	}
	e := historyEntry{id: id, role: role, text: text, tokens: llm.EstimateMessageTokens(llm.Message{Role: role, Content: text})}
	a.history = append(a.history, e)
	a.tokens += e.tokens
	drop := 0
	for a.tokens > a.s.cfg.ContextTokens && drop < len(a.history)-1 {
		a.tokens -= a.history[drop].tokens
		drop++
	}
	if drop > 0 {
		a.history = append(a.history[:0:0], a.history[drop:]...)
	}
}

// takeSeq returns the next event seq. It reserves the next block in the
// store when the current one runs low, so that seqs stay unique across
// activations even when events were published but never stored.
func (a *sessionActor) takeSeq(ctx actor.Context) int64 {
	s := a.nextSeq
	a.nextSeq++
	if !a.reserving && a.reserved-a.nextSeq < seqBlock/4 {
		a.reserving = true
		store, id := a.s.cfg.Store, a.id
		a.goIO(ctx, func(c context.Context) any {
			_, to, err := store.ReserveSeqs(c, id, seqBlock)
			return seqsReserved{to: to, err: err}
		})
	}
	return s
}

// goIO runs f in a worker goroutine with a store deadline and sends its
// result back to the actor.
func (a *sessionActor) goIO(ctx actor.Context, f func(context.Context) any) {
	a.pendingIO++
	root, self, life, timeout := a.s.root, ctx.Self(), a.s.life, a.s.cfg.StoreTimeout
	started := a.s.work.Go(func() {
		c, cancel := context.WithTimeout(life, timeout)
		defer cancel()
		root.Send(self, f(c))
	})
	if !started {
		// Shutdown finished; nobody will read the result.
		a.pendingIO--
	}
}

func (a *sessionActor) idle() bool {
	return a.phase != phaseLoading && a.phase != phaseCreating && a.cur == nil && a.creating == nil &&
		len(a.queue) == 0 && len(a.incoming) == 0 && !a.storing && a.pendingIO == 0 && len(a.subs) == 0
}

func (a *sessionActor) stopIfDrained(ctx actor.Context) {
	if !a.draining {
		return
	}
	a.failStash(ErrShuttingDown)
	for _, cmd := range a.incoming {
		cmd.fail(ErrShuttingDown)
	}
	a.incoming = nil
	if a.cur == nil && !a.storing && a.pendingIO == 0 {
		ctx.Stop(ctx.Self())
	}
}

// stopping runs once as the actor stops: nothing it holds outlives it.
func (a *sessionActor) stopping() {
	if a.cur != nil && a.cur.cancel != nil {
		a.cur.cancel()
	}
	a.failStash(ErrSessionClosed)
	if a.creating != nil {
		a.creating.fail(ErrSessionClosed)
		a.creating = nil
	}
	for _, cmd := range a.incoming {
		cmd.fail(ErrSessionClosed)
	}
	for sub := range a.subs {
		delete(a.subs, sub)
		sub.Drop(ErrSessionClosed)
	}
}

// modelError turns a model failure into the error sent to clients.
func modelError(err error) *ErrorInfo {
	code := llm.CodeOf(err)
	switch {
	case errors.Is(err, ErrShuttingDown) || errors.Is(err, context.Canceled):
		return &ErrorInfo{Code: "server_shutdown", Message: "the server stopped while replying"}
	case code == "":
		return &ErrorInfo{Code: "model_error", Message: "the model failed to reply"}
	}
	msgs := map[string]string{
		"rate_limited":          "the model provider is rate limiting requests; try again shortly",
		"upstream_unavailable":  "the model provider is unavailable",
		"upstream_timeout":      "the model provider took too long to answer",
		"upstream_auth":         "the model provider rejected storyd's credentials",
		"upstream_rejected":     "the model provider rejected the request",
		"upstream_stream_cut":   "the model provider's stream broke off",
		"upstream_bad_response": "the model provider sent a malformed answer",
	}
	msg, ok := msgs[code]
	if !ok {
		msg = "the model failed to reply"
	}
	return &ErrorInfo{Code: code, Message: msg}
}
