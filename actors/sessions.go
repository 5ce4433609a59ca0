package actors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/google/uuid"

	"github.com/storyd/storyd/llm"
	"github.com/storyd/storyd/persistence"
)

// Store is what session actors need from the persistence layer.
type Store interface {
	EnsureUser(ctx context.Context, u persistence.User) (persistence.User, error)
	GetProject(ctx context.Context, id string) (persistence.Project, error)
	CreateProject(ctx context.Context, p persistence.Project) (persistence.Project, error)
	GetSession(ctx context.Context, id string) (persistence.Session, error)
	CreateSession(ctx context.Context, s persistence.Session) (persistence.Session, error)
	AppendMessage(ctx context.Context, m persistence.Message) (persistence.Message, bool, error)
	RecentMessages(ctx context.Context, sessionID string, limit int) ([]persistence.Message, error)
	GetReply(ctx context.Context, sessionID, turnID string) (persistence.Message, error)
	MessagesAfter(ctx context.Context, sessionID string, afterSeq int64, limit int) ([]persistence.Message, error)
	GetDossier(ctx context.Context, projectID string) (persistence.Dossier, error)
	SaveDossier(ctx context.Context, d persistence.Dossier, expectedVersion int, src persistence.DossierVersion) (persistence.Dossier, error)
	DeleteDossier(ctx context.Context, projectID string) error
	// The dossier actor's extraction cursors (see docs/dossier.md): how far
	// extraction has read each session of a project, and the turns after.
	SaveExtraction(ctx context.Context, d persistence.Dossier, expectedVersion int, src persistence.DossierVersion, extractedSeq map[string]int64) (persistence.Dossier, error)
	AdvanceDossierCursors(ctx context.Context, projectID string, extractedSeq map[string]int64) error
	DossierCursors(ctx context.Context, projectID string) ([]persistence.DossierCursor, error)
	PendingTurns(ctx context.Context, projectID string, limit int) ([]persistence.PendingTurn, error)
	ProjectsWithPendingTurns(ctx context.Context, limit int) ([]string, error)
	ReserveSeqs(ctx context.Context, sessionID string, n int64) (from, to int64, err error)
	DeactivateSession(ctx context.Context, id string) error
}

// ChatModel streams a chat reply, calling emit with each piece of text as it
// arrives. It returns when the reply is complete, failed, or ctx ended.
type ChatModel interface {
	StreamChat(ctx context.Context, msgs []llm.Message, emit func(delta string) error) error
}

// Config holds the dependencies and tunables of Sessions. Zero tunables take
// the defaults documented on each field.
type Config struct {
	Store  Store
	Model  ChatModel
	Logger *slog.Logger
	// SystemPrompt opens every prompt; default llm.InterviewerPrompt.
	SystemPrompt string
	// IdleTimeout passivates a session actor that had no traffic, no
	// subscriber and no reply in flight for this long; default 5m.
	IdleTimeout time.Duration
	// ContextTokens is the token budget of the context window: the
	// project's dossier (llm.DossierContext) and the most recent messages
	// that fit beside it are sent to the model; default 12000.
	ContextTokens int
	// HistoryLimit caps how many recent messages are loaded on activation
	// before the token budget trims them; default 200.
	HistoryLimit int
	// ReplayEvents is how many recent events a session keeps in memory for
	// subscribers that catch up; default 4096.
	ReplayEvents int
	// StoreTimeout bounds each store call; default 10s.
	StoreTimeout time.Duration
	// Extractor reads story facts for the dossier; nil: no extraction.
	Extractor Extractor
	// ExtractTokens, ExtractTurns and ExtractIdle decide when a project's
	// finished turns are extracted: when the batch holds this many tokens
	// (DefaultExtractTokens) or turns (DefaultExtractTurns), or after this
	// long without a new turn (default 90s); see docs/dossier.md.
	ExtractTokens int
	ExtractTurns  int
	ExtractIdle   time.Duration
	// ExtractConcurrency bounds the extractions running at once across all
	// projects (default 4): a start that wakes many projects, or many
	// retrying after an outage, queues for the provider instead of
	// bursting at it.
	ExtractConcurrency int
	// RecoverTurns bounds each read of the stored turns extraction has not
	// read (left from before a restart): at most the oldest RecoverTurns
	// (default 100) at a time, the next ones once those are extracted.
	RecoverTurns int
	// MaxBatchTokens bounds one extraction's turns (default
	// 4×ExtractTokens): a longer backlog goes in several batches, oldest
	// first. See docs/dossier.md.
	MaxBatchTokens int
	// After runs f after d and returns a function that cancels it; default
	// time.AfterFunc. Tests pass a fake clock.
	After func(d time.Duration, f func()) (stop func())
	// CommandTimeout bounds how long Chat, Subscribe and Cancel wait for the
	// session actor (which may load and create the session first); default
	// four store calls plus 5s. Past it they answer ErrUnavailable.
	CommandTimeout time.Duration
}

func (c *Config) setDefaults() {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.SystemPrompt == "" {
		c.SystemPrompt = llm.InterviewerPrompt
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 5 * time.Minute
	}
	if c.ContextTokens <= 0 {
		c.ContextTokens = 12000
	}
	if c.HistoryLimit <= 0 {
		c.HistoryLimit = 200
	}
	if c.ReplayEvents <= 0 {
		c.ReplayEvents = 4096
	}
	if c.StoreTimeout <= 0 {
		c.StoreTimeout = 10 * time.Second
	}
	if c.ExtractTokens <= 0 {
		c.ExtractTokens = DefaultExtractTokens
	}
	if c.ExtractTurns <= 0 {
		c.ExtractTurns = DefaultExtractTurns
	}
	if c.ExtractIdle <= 0 {
		c.ExtractIdle = 90 * time.Second
	}
	if c.RecoverTurns <= 0 {
		c.RecoverTurns = 100
	}
	if c.ExtractConcurrency <= 0 {
		c.ExtractConcurrency = 4
	}
	if c.MaxBatchTokens <= 0 {
		c.MaxBatchTokens = 4 * c.ExtractTokens
	}
	if c.After == nil {
		c.After = func(d time.Duration, f func()) func() {
			t := time.AfterFunc(d, f)
			return func() { t.Stop() }
		}
	}
	if c.CommandTimeout <= 0 {
		c.CommandTimeout = 4*c.StoreTimeout + 5*time.Second
	}
}

// Sessions is the entry point to the session actors. Callers address a
// session by its id; Sessions routes the command to the session's actor,
// activating it from the store when needed. Its methods are safe for
// concurrent use.
type Sessions struct {
	cfg     Config
	root    *actor.RootContext
	manager *actor.PID
	work    workers
	// life is the context of all background work; abort cancels it.
	life  context.Context
	abort context.CancelFunc

	closing  atomic.Bool
	drained  chan struct{} // closed by the manager once draining left no session actor
	stopOnce sync.Once

	// extractSlots holds a token per extraction running (ExtractConcurrency).
	extractSlots chan struct{}

	// Extraction counters, for Stats.
	extractions, extractionFailures, extractionPromptTokens, recoveredTurns atomic.Int64
	extractionCompletionTokens                                              atomic.Int64
}

// Default batching of extraction (docs/dossier.md says why): a call costs
// a fixed ~1,100 tokens (instructions, the dossier's brief, the JSON
// schema), so a batch waits for about as much new conversation.
const (
	DefaultExtractTokens = 1000
	DefaultExtractTurns  = 16
)

// ExtractionStats counts the extractions run since start, and the tokens
// the model reported for them (prompt tokens are estimated for the offline
// extractor, which calls no model).
type ExtractionStats struct {
	Calls, Failures, PromptTokens, CompletionTokens int64
	// Recovered counts the turns dossier actors read back from the store
	// (waiting for extraction when the server last stopped) and batched.
	Recovered int64
}

// Stats returns the extraction counters.
func (s *Sessions) Stats() ExtractionStats {
	return ExtractionStats{Calls: s.extractions.Load(), Failures: s.extractionFailures.Load(),
		PromptTokens: s.extractionPromptTokens.Load(), CompletionTokens: s.extractionCompletionTokens.Load(),
		Recovered: s.recoveredTurns.Load()}
}

// EditDossier applies a person's edit to a project's dossier through its
// dossier actor, the dossier's single writer. It returns the new version,
// or ErrNotFound (not the caller's), ErrDossierExists, ErrVersionConflict.
func (s *Sessions) EditDossier(ctx context.Context, e DossierEdit) (persistence.Dossier, error) {
	if s.closing.Load() {
		return persistence.Dossier{}, ErrShuttingDown
	}
	reply := make(chan editResult, 1)
	s.root.Send(s.manager, routed{sessionID: dossierKeyPrefix + e.ProjectID, msg: &editDossier{edit: e, reply: reply}})
	r, err := await(ctx, s.cfg.CommandTimeout, reply)
	if err != nil {
		return persistence.Dossier{}, fmt.Errorf("actors: edit dossier %s: %w", e.ProjectID, err)
	}
	return r.d, r.err
}

// DeleteDossier deletes a project's dossier and its versions through its
// dossier actor (after the writes before it; an extraction after it starts
// a new dossier). It returns ErrNotFound when there is none or it is not
// the caller's.
func (s *Sessions) DeleteDossier(ctx context.Context, userID, projectID string) error {
	if s.closing.Load() {
		return ErrShuttingDown
	}
	reply := make(chan error, 1)
	s.root.Send(s.manager, routed{sessionID: dossierKeyPrefix + projectID, msg: &deleteDossier{userID: userID, reply: reply}})
	err, aerr := await(ctx, s.cfg.CommandTimeout, reply)
	if aerr != nil {
		return fmt.Errorf("actors: delete dossier %s: %w", projectID, aerr)
	}
	return err
}

// DossierSettled reports whether a project's dossier actor has nothing
// left to do: no turn waiting for extraction, no extraction or store write
// in flight. It lets a caller that played a conversation (cmd/storyeval, a
// test) wait for the dossier deterministically instead of for a while.
func (s *Sessions) DossierSettled(ctx context.Context, projectID string) (bool, error) {
	if s.closing.Load() {
		return false, ErrShuttingDown
	}
	reply := make(chan bool, 1)
	s.root.Send(s.manager, routed{sessionID: dossierKeyPrefix + projectID, msg: &dossierSettled{reply: reply}})
	settled, err := await(ctx, s.cfg.CommandTimeout, reply)
	if err != nil {
		return false, fmt.Errorf("actors: dossier of %s: %w", projectID, err)
	}
	return settled, nil
}

// WakeDossiers activates the dossier actors of up to limit projects whose
// extraction has not read all their turns — turns that were waiting in a
// batch when the server last stopped — so those batches are extracted by
// the usual rules (at once when big enough, else after the idle timer)
// without waiting for the project's next turn. It returns how many it
// woke; without an Extractor it does nothing.
func (s *Sessions) WakeDossiers(ctx context.Context, limit int) (int, error) {
	if s.cfg.Extractor == nil {
		return 0, nil
	}
	if s.closing.Load() {
		return 0, ErrShuttingDown
	}
	ids, err := s.cfg.Store.ProjectsWithPendingTurns(ctx, limit)
	if err != nil {
		return 0, fmt.Errorf("actors: wake dossiers: %w", err)
	}
	for _, id := range ids {
		s.root.Send(s.manager, routed{sessionID: dossierKeyPrefix + id, msg: &wakeDossier{}})
	}
	return len(ids), nil
}

// RefreshDossier extracts the project's pending turns now. It reports
// whether an extraction runs (false: nothing was pending).
func (s *Sessions) RefreshDossier(ctx context.Context, userID, projectID string) (bool, error) {
	if s.closing.Load() {
		return false, ErrShuttingDown
	}
	reply := make(chan refreshResult, 1)
	s.root.Send(s.manager, routed{sessionID: dossierKeyPrefix + projectID, msg: &refreshDossier{userID: userID, reply: reply}})
	r, err := await(ctx, s.cfg.CommandTimeout, reply)
	if err != nil {
		return false, fmt.Errorf("actors: refresh dossier %s: %w", projectID, err)
	}
	return r.started, r.err
}

// NewSessions starts the session manager actor in system.
func NewSessions(system *actor.ActorSystem, cfg Config) (*Sessions, error) {
	if cfg.Store == nil || cfg.Model == nil {
		return nil, errors.New("actors: new sessions: Store and Model are required")
	}
	cfg.setDefaults()
	s := &Sessions{cfg: cfg, root: system.Root, drained: make(chan struct{}),
		extractSlots: make(chan struct{}, cfg.ExtractConcurrency)}
	s.life, s.abort = context.WithCancel(context.Background())
	// A session actor that panics is stopped, not restarted: it would lose
	// its subscribers either way, and the next command reactivates it from
	// the store.
	props := actor.PropsFromProducer(func() actor.Actor { return newManager(s) },
		actor.WithSupervisor(actor.NewOneForOneStrategy(0, time.Second, func(any) actor.Directive {
			return actor.StopDirective
		})))
	pid, err := system.Root.SpawnNamed(props, "sessions-"+uuid.NewString())
	if err != nil {
		s.abort()
		return nil, fmt.Errorf("actors: spawn session manager: %w", err)
	}
	s.manager = pid
	// The idle sweep. protoactor's own receive timeout is not used: its
	// timer goroutine writes actor state without synchronisation (a data
	// race under -race).
	interval := max(cfg.IdleTimeout/2, 5*time.Millisecond)
	s.work.Go(func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-s.life.Done():
				return
			case <-t.C:
				s.root.Send(s.manager, sweep{})
			}
		}
	})
	return s, nil
}

// ChatRequest is a user message sent to a session.
type ChatRequest struct {
	UserID string
	// Anonymous marks UserID as an anonymous identity (stored as such when
	// the user is first seen).
	Anonymous bool
	// SessionID names the session; empty creates a new one. A session id that
	// does not exist yet is created for the caller.
	SessionID string
	// ProjectID names the session's project; empty uses the session's own or,
	// for a new session, creates a project.
	ProjectID       string
	Text            string
	ClientMessageID string
	// Subscriber, when set, first gets an EventAck, then the events of this
	// message's reply, and is dropped with a nil error after its done event.
	// With Follow it stays subscribed to the whole session instead.
	Subscriber Subscriber
	Follow     bool
}

// SubscribeRequest asks to follow a session's events.
type SubscribeRequest struct {
	UserID    string
	SessionID string
	// AfterSeq, when set, asks for every event after it first (or an
	// EventReset when they are gone); when nil the subscriber gets the reply
	// in flight from its start, if any, then live events.
	AfterSeq   *int64
	Subscriber Subscriber
}

// ChatAccepted says a user message is stored and its reply is (or was) on
// its way.
type ChatAccepted struct {
	SessionID       string
	ProjectID       string
	UserID          string
	MessageID       string
	ClientMessageID string
	Seq             int64
	// Duplicate is true when ClientMessageID matched a message already
	// stored: nothing new was stored and the subscriber follows (or is
	// replayed) the original reply.
	Duplicate bool
}

// Chat stores req's message in its session and queues the reply. It returns
// once the message is stored; the reply streams to req.Subscriber.
func (s *Sessions) Chat(ctx context.Context, req ChatRequest) (ChatAccepted, error) {
	if s.closing.Load() {
		return ChatAccepted{}, ErrShuttingDown
	}
	if req.SessionID == "" {
		req.SessionID = NewSessionID(req.UserID, req.ClientMessageID)
	}
	reply := make(chan chatResult, 1)
	s.root.Send(s.manager, routed{sessionID: req.SessionID, msg: &sendChat{req: req, reply: reply}})
	r, err := await(ctx, s.cfg.CommandTimeout, reply)
	if err != nil {
		return ChatAccepted{}, fmt.Errorf("actors: chat in session %s: %w", req.SessionID, err)
	}
	return r.accepted, r.err
}

// await waits for an actor's answer, for at most timeout. Past the timeout
// it answers ErrUnavailable: the actor is wedged on the store, or the
// command was lost with an actor that failed.
func await[T any](ctx context.Context, timeout time.Duration, reply <-chan T) (T, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	var zero T
	select {
	case r := <-reply:
		return r, nil
	case <-t.C:
		return zero, ErrUnavailable
	case <-ctx.Done():
		return zero, ctx.Err()
	}
}

// Subscribe makes req.Subscriber follow the session. It returns once the
// subscriber is registered and the catch-up events are queued to it, or with
// ErrNotFound (not the caller's session) or ErrInvalidAfterSeq.
func (s *Sessions) Subscribe(ctx context.Context, req SubscribeRequest) error {
	if s.closing.Load() {
		return ErrShuttingDown
	}
	reply := make(chan error, 1)
	s.root.Send(s.manager, routed{sessionID: req.SessionID, msg: &subscribe{req: req, reply: reply}})
	r, err := await(ctx, s.cfg.CommandTimeout, reply)
	if err != nil {
		return fmt.Errorf("actors: subscribe to session %s: %w", req.SessionID, err)
	}
	return r
}

// Cancel stops the reply the session is generating, if any: the model
// request is cancelled, what arrived is stored with status cancelled and
// every subscriber gets metadata and done. It reports whether a reply was
// stopped.
func (s *Sessions) Cancel(ctx context.Context, userID, sessionID string) (bool, error) {
	if s.closing.Load() {
		return false, ErrShuttingDown
	}
	reply := make(chan cancelResult, 1)
	s.root.Send(s.manager, routed{sessionID: sessionID, msg: &cancelReply{userID: userID, reply: reply}})
	r, err := await(ctx, s.cfg.CommandTimeout, reply)
	if err != nil {
		return false, fmt.Errorf("actors: cancel in session %s: %w", sessionID, err)
	}
	return r.cancelled, r.err
}

// Delete deactivates the caller's session: the reply in flight is
// cancelled, followers are dropped with ErrSessionClosed, and the session
// answers ErrNotFound from then on. Its history stays in the store.
func (s *Sessions) Delete(ctx context.Context, userID, sessionID string) error {
	if s.closing.Load() {
		return ErrShuttingDown
	}
	reply := make(chan error, 1)
	s.root.Send(s.manager, routed{sessionID: sessionID, msg: &deleteSession{userID: userID, reply: reply}})
	r, err := await(ctx, s.cfg.CommandTimeout, reply)
	if err != nil {
		return fmt.Errorf("actors: delete session %s: %w", sessionID, err)
	}
	return r
}

// OwnerChanged tells every live session actor owned by from that its
// session now belongs to to (an anonymous user's sessions migrated to an
// account); their followers are dropped and must subscribe again. Actors
// that are not live load the new owner when they next activate. It does
// not wait.
func (s *Sessions) OwnerChanged(from, to string) {
	s.root.Send(s.manager, &ownerChanged{from: from, to: to})
}

// Unsubscribe removes sub from the session's subscribers. It does not wait;
// the actor calls sub.Drop(nil) if it still held the subscriber.
func (s *Sessions) Unsubscribe(sessionID string, sub Subscriber) {
	s.root.Send(s.manager, routed{sessionID: sessionID, msg: &unsubscribe{sub: sub}})
}

// Shutdown stops the sessions: it refuses new work, lets replies in flight
// finish until ctx is nearly done, then cancels the remaining ones (they are
// stored as partial), stops every actor and waits for background work.
func (s *Sessions) Shutdown(ctx context.Context) error {
	var err error
	s.stopOnce.Do(func() {
		s.closing.Store(true)
		s.root.Send(s.manager, &drain{})
		grace := ctx
		if dl, ok := ctx.Deadline(); ok {
			// Keep a fifth of the remaining time to store cancelled replies.
			var cancel context.CancelFunc
			grace, cancel = context.WithDeadline(ctx, dl.Add(-time.Until(dl)/5))
			defer cancel()
		}
		select {
		case <-s.drained:
		case <-grace.Done():
			s.root.Send(s.manager, &abortAll{})
			select {
			case <-s.drained:
			case <-ctx.Done():
				err = fmt.Errorf("actors: shutdown: %w", ctx.Err())
			}
		}
		s.abort()
		s.work.Close()
		if stopErr := s.root.StopFuture(s.manager).Wait(); stopErr != nil && err == nil {
			err = fmt.Errorf("actors: stop manager: %w", stopErr)
		}
	})
	return err
}

// Live returns how many session actors are active (not passivated).
func (s *Sessions) Live(ctx context.Context) (int, error) {
	reply := make(chan int, 1)
	s.root.Send(s.manager, countSessions{reply: reply})
	select {
	case n := <-reply:
		return n, nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// sessionNamespace names the UUIDv5 space of derived session ids.
const sessionNamespace = "6f0b7c52-3c1e-4d55-9a0e-2f6d3e7c9b11"

// NewSessionID returns the id of a new session. When the first message
// carries a client_message_id the id is derived from it (and the user), so
// that a retry of a first message that never got its answer lands in the
// same session and is recognised as a duplicate instead of starting a second
// conversation.
func NewSessionID(userID, clientMessageID string) string {
	if clientMessageID == "" {
		return newID()
	}
	return uuid.NewSHA1(uuid.MustParse(sessionNamespace), []byte(userID+"\x00"+clientMessageID)).String()
}

func newID() string {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.NewString()
	}
	return id.String()
}

// chatResult answers a sendChat.
type chatResult struct {
	accepted ChatAccepted
	err      error
}

// failer is a command that can be answered with an error when no actor
// will process it.
type failer interface{ fail(err error) }

// routed carries a command to the session actor of sessionID.
type routed struct {
	sessionID string
	msg       any
}

// sendChat asks a session actor to take a user message.
type sendChat struct {
	req   ChatRequest
	reply chan<- chatResult
}

func (c *sendChat) fail(err error) { c.reply <- chatResult{err: err} }

// subscribe asks a session actor to add a subscriber.
type subscribe struct {
	req   SubscribeRequest
	reply chan<- error
}

func (c *subscribe) fail(err error) { c.reply <- err }

// cancelReply asks a session actor to stop the reply in flight.
type cancelReply struct {
	userID string
	reply  chan<- cancelResult
}

type cancelResult struct {
	cancelled bool
	err       error
}

func (c *cancelReply) fail(err error) { c.reply <- cancelResult{err: err} }

// deleteSession asks a session actor to deactivate its session.
type deleteSession struct {
	userID string
	reply  chan<- error
}

func (c *deleteSession) fail(err error) { c.reply <- err }

// ownerChanged tells a session actor its session has a new owner.
type ownerChanged struct{ from, to string }

func (o *ownerChanged) fail(error) {}

// unsubscribe asks a session actor to forget a subscriber.
type unsubscribe struct{ sub Subscriber }

func (u *unsubscribe) fail(error) {}

// drain tells the manager, and through it each session actor, to take no
// new work and stop once the reply in flight is stored.
type drain struct{}

// abortAll tells every session actor to cancel its reply now and stop.
type abortAll struct{}

// dossierChanged tells the manager, and through it every session actor of
// the project, that the dossier has a new version.
type dossierChanged struct {
	update DossierUpdate
	// memory is the new dossier as the chat model's context
	// (llm.DossierContext).
	memory string
}

// sweep asks the manager to ask every session actor whether it is idle.
type sweep struct{}

// idleCheck asks a session actor to offer passivation if it has been idle
// for Config.IdleTimeout. It does not count as activity.
type idleCheck struct{}

// countSessions asks the manager how many session actors are live.
type countSessions struct{ reply chan<- int }

// passivationRequest: a session actor has been idle and offers to stop.
type passivationRequest struct{ sessionID string }

// passivate: the manager holds new commands for the session; the actor
// stops if it is still idle or declines.
type passivate struct{}

// passivationDeclined: the actor got work after asking to passivate.
type passivationDeclined struct{ sessionID string }

// manager owns the session actors of one Sessions.
type manager struct {
	s        *Sessions
	children map[string]*child
	byPID    map[string]string // child PID id → session id
	draining bool
}

type child struct {
	pid      *actor.PID
	stopping bool  // passivation offered; commands are held
	held     []any // commands received while stopping
}

func newManager(s *Sessions) *manager {
	return &manager{s: s, children: map[string]*child{}, byPID: map[string]string{}}
}

// Receive implements actor.Actor.
func (m *manager) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case routed:
		m.route(ctx, msg)
	case passivationRequest:
		c, ok := m.children[msg.sessionID]
		if !ok || c.stopping {
			return
		}
		c.stopping = true
		ctx.Send(c.pid, passivate{})
	case passivationDeclined:
		if c, ok := m.children[msg.sessionID]; ok && c.stopping {
			c.stopping = false
			for _, h := range c.held {
				ctx.Send(c.pid, h)
			}
			c.held = nil
		}
	case *actor.Terminated:
		id, ok := m.byPID[msg.Who.Id]
		if !ok {
			return
		}
		delete(m.byPID, msg.Who.Id)
		c := m.children[id]
		delete(m.children, id)
		// An unsubscribe or owner change for a stopped actor has nothing
		// left to do (the next activation reads the owner from the store).
		held := c.held[:0]
		for _, h := range c.held {
			switch h.(type) {
			case *unsubscribe, *ownerChanged:
			default:
				held = append(held, h)
			}
		}
		c.held = held
		if len(c.held) > 0 {
			if m.draining {
				failAll(c.held, ErrShuttingDown)
			} else {
				nc := m.spawn(ctx, id)
				for _, h := range c.held {
					ctx.Send(nc.pid, h)
				}
			}
		}
		m.checkDrained()
	case *drain:
		m.draining = true
		for _, c := range m.children {
			ctx.Send(c.pid, msg)
		}
		m.checkDrained()
	case *abortAll:
		for _, c := range m.children {
			ctx.Send(c.pid, msg)
		}
	case countSessions:
		msg.reply <- len(m.children)
	case *ownerChanged:
		for _, c := range m.children {
			if c.stopping {
				c.held = append(c.held, msg)
			} else {
				ctx.Send(c.pid, msg)
			}
		}
	case *dossierChanged:
		for key, c := range m.children {
			if !strings.HasPrefix(key, dossierKeyPrefix) && !c.stopping {
				ctx.Send(c.pid, msg)
			}
		}
	case sweep:
		for _, c := range m.children {
			if !c.stopping {
				ctx.Send(c.pid, idleCheck{})
			}
		}
	}
}

func (m *manager) route(ctx actor.Context, msg routed) {
	if m.draining {
		// Draining actors stop on their own; a command sent to one now could
		// be lost in its mailbox.
		failAll([]any{msg.msg}, ErrShuttingDown)
		return
	}
	c, ok := m.children[msg.sessionID]
	if !ok {
		switch msg.msg.(type) {
		case *unsubscribe, *ownerChanged:
			return // nothing live to tell
		}
		c = m.spawn(ctx, msg.sessionID)
	}
	if c.stopping {
		c.held = append(c.held, msg.msg)
		return
	}
	ctx.Send(c.pid, msg.msg)
}

func (m *manager) spawn(ctx actor.Context, sessionID string) *child {
	producer := func() actor.Actor { return newSessionActor(m.s, sessionID) }
	if projectID, ok := strings.CutPrefix(sessionID, dossierKeyPrefix); ok {
		producer = func() actor.Actor { return newDossierActor(m.s, projectID) }
	}
	pid := ctx.Spawn(actor.PropsFromProducer(producer))
	c := &child{pid: pid}
	m.children[sessionID] = c
	m.byPID[pid.Id] = sessionID
	return c
}

func (m *manager) checkDrained() {
	if m.draining && len(m.children) == 0 {
		select {
		case <-m.s.drained:
		default:
			close(m.s.drained)
		}
	}
}

func failAll(msgs []any, err error) {
	for _, msg := range msgs {
		if f, ok := msg.(failer); ok {
			f.fail(err)
		}
	}
}
