package transport

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/storyd/storyd/actors"
)

// clientFrame is any frame a WebSocket client sends; Type says which fields
// matter (see docs/protocol.md).
type clientFrame struct {
	Type            string  `json:"type"`
	Text            *string `json:"text,omitempty"`
	SessionID       string  `json:"session_id,omitempty"`
	ProjectID       string  `json:"project_id,omitempty"`
	ClientMessageID string  `json:"client_message_id,omitempty"`
	AfterSeq        *int64  `json:"after_seq,omitempty"`
	UserID          string  `json:"user_id,omitempty"`
	AccessToken     string  `json:"access_token,omitempty"`
}

// outFrame is one item queued for the writer: a session event, a catch-up
// of several (encoded by the writer, off the actor's goroutine) or a
// ready-made control frame. A single event is held by value, so that
// delivering it allocates nothing.
type outFrame struct {
	ev  actors.Event
	evs []actors.Event // a catch-up, instead of ev
	sub *wsSub         // the events' subscription: skipped if it ended meanwhile
	raw []byte
}

// closeRequest asks the writer to close the socket.
type closeRequest struct {
	status websocket.StatusCode
	reason string
	// flush writes the frames already queued first (e.g. the error that
	// explains the close); otherwise the close goes out at once.
	flush bool
}

// wsConn is one client socket. The handler goroutine reads frames; the
// writer goroutine, started and awaited by the handler, is the only one
// that writes; the pinger, a timer the handler stops, checks the peer is
// alive. Session actors
// reach the socket through wsSub, which never blocks.
type wsConn struct {
	s   *Server
	c   *websocket.Conn
	out *outbox[outFrame]
	// watchdog closes the socket when a write outlives WriteTimeout; only
	// the writer arms and stops it.
	watchdog *time.Timer
	closing  chan closeRequest // capacity 1: the first close request wins

	mu   sync.Mutex
	who  *identity
	subs map[string]*wsSub // session id → its current subscription
}

// wsSub is the subscriber of one session on one socket. A replaced or
// removed subscription is deactivated first, so that events still in
// flight to it are discarded instead of reaching the client twice.
type wsSub struct {
	conn      *wsConn
	sessionID string
	active    atomic.Bool
}

// Deliver implements actors.Subscriber. An ended subscription refuses, so
// the actor lets go of it.
func (w *wsSub) Deliver(ev actors.Event) bool {
	return w.active.Load() && w.conn.enqueue(outFrame{ev: ev, sub: w})
}

// DeliverBatch implements actors.Subscriber.
func (w *wsSub) DeliverBatch(evs []actors.Event) bool {
	if len(evs) == 0 {
		return w.active.Load()
	}
	return w.active.Load() && w.conn.enqueue(outFrame{evs: evs, sub: w})
}

// Drop implements actors.Subscriber.
func (w *wsSub) Drop(err error) {
	w.conn.forget(w)
	switch {
	case !w.active.Swap(false) || err == nil:
	case errors.Is(err, actors.ErrSlowSubscriber):
		w.conn.close(websocket.StatusPolicyViolation, "slow consumer")
	default:
		w.conn.sendError(w.sessionID, &apiError{Code: "session_closed",
			Message: "the session stopped; subscribe again with after_seq"})
	}
}

// WebSocket buffer sizes. net/http gives every connection a 4 KiB reader
// and a 4 KiB writer, which coder/websocket keeps after the hijack; a socket
// carries small frames (client commands, one token per server frame), and
// idle sockets are most of what a node holds, so it gets smaller ones. A
// larger frame simply takes more than one read or write.
const (
	wsReadBuffer  = 1 << 10
	wsWriteBuffer = 2 << 10
)

// smallBuffers makes the hijack of a WebSocket upgrade hand coder/websocket
// buffers of wsReadBuffer and wsWriteBuffer instead of net/http's, unless
// net/http's still hold bytes (then they are kept, bytes and all).
type smallBuffers struct{ http.ResponseWriter }

// Hijack implements http.Hijacker.
func (s smallBuffers) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(s.ResponseWriter).Hijack()
	if err != nil {
		return conn, brw, err
	}
	r, w := brw.Reader, brw.Writer
	if r.Buffered() == 0 {
		r = bufio.NewReaderSize(conn, wsReadBuffer)
	}
	if w.Buffered() == 0 {
		w = bufio.NewWriterSize(conn, wsWriteBuffer)
	}
	return conn, bufio.NewReadWriter(r, w), nil
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (s smallBuffers) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// handleWebSocket serves /api/v1/ws.
func (s *Server) handleWebSocket(w http.ResponseWriter, r *http.Request) {
	var who *identity
	id, ok, aerr := s.identify(r, true, "")
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	if ok {
		who = &id
	}
	if !s.sockets.add() {
		writeError(w, errUnavailable("shutting_down", "the server is restarting; reconnect shortly"))
		return
	}
	c, err := websocket.Accept(smallBuffers{w}, r, &websocket.AcceptOptions{OriginPatterns: s.originPatterns})
	if err != nil {
		s.sockets.wg.Done()
		return // Accept answered the request
	}
	c.SetReadLimit(s.cfg.MaxFrameBytes)
	conn := &wsConn{
		s:       s,
		c:       c,
		out:     newOutbox[outFrame](s.cfg.QueueSize),
		closing: make(chan closeRequest, 1),
		who:     who,
		subs:    map[string]*wsSub{},
	}
	// The socket lives on a goroutine of its own (tracked by s.sockets,
	// which shutdown waits for), so that this handler returns: net/http
	// then lets go of the connection, its 4 KiB buffers and the handler's
	// deep stack, which an idle socket would otherwise hold for its life.
	go func() {
		defer s.sockets.wg.Done()
		conn.serve()
	}()
}

// serve runs the socket until it closes: it reads client frames itself,
// and starts, stops and waits for the writer goroutine and the pinger.
func (c *wsConn) serve() {
	c.watchdog = time.AfterFunc(time.Hour, func() { _ = c.c.CloseNow() })
	c.watchdog.Stop()
	defer c.watchdog.Stop()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer cancel()
		c.writeLoop(ctx)
	}()
	stopPinger := c.startPinger(ctx)
	c.readLoop(ctx)
	cancel()
	stopPinger()
	wg.Wait()
	c.unsubscribeAll()
	_ = c.c.CloseNow()
}

// readLoop handles client frames until the socket fails or closes.
func (c *wsConn) readLoop(ctx context.Context) {
	for {
		typ, data, err := c.c.Read(ctx)
		if err != nil {
			if websocket.CloseStatus(err) == websocket.StatusMessageTooBig {
				c.s.cfg.Logger.Info("websocket frame too big", "limit", c.s.cfg.MaxFrameBytes)
			}
			return
		}
		if typ != websocket.MessageText {
			c.sendError("", errBadRequest("unsupported_frame", "send JSON text frames"))
			continue
		}
		c.handle(ctx, data)
	}
}

func (c *wsConn) handle(ctx context.Context, data []byte) {
	var f clientFrame
	if aerr := decodeStrict(data, &f); aerr != nil {
		c.sendError("", aerr)
		return
	}
	switch f.Type {
	case "ping":
		c.enqueueRaw([]byte(`{"type":"pong"}`))
		return
	case "auth":
		c.auth(ctx, f)
		return
	case "chat", "subscribe", "unsubscribe", "cancel":
	default:
		c.sendError(f.SessionID, errBadRequest("unknown_type",
			"unknown frame type "+quote(f.Type)+"; use auth, chat, subscribe, unsubscribe, cancel or ping"))
		return
	}
	if c.expired() {
		c.sendError(f.SessionID, &apiError{Code: "token_expired", Message: "the access token has expired; reconnect with a fresh one"})
		c.closeAfterFlush(websocket.StatusPolicyViolation, "token expired")
		return
	}
	who := c.identity()
	if who != nil && !who.Registered {
		// An anonymous id can be retired while the socket is open (it was
		// migrated to an account): check it again.
		if _, aerr := c.s.anonymous(ctx, who.UserID); aerr != nil {
			c.sendError(f.SessionID, aerr)
			c.closeAfterFlush(websocket.StatusPolicyViolation, "identity refused")
			return
		}
	}
	if who == nil {
		c.sendError(f.SessionID, &apiError{Status: http.StatusUnauthorized, Code: "identity_required",
			Message: "send {\"type\":\"auth\",\"user_id\":\"…\"} first, or connect with ?user_id="})
		return
	}
	// Commands wait for the session actor at most this long.
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	switch f.Type {
	case "chat":
		c.chat(cctx, *who, f)
	case "subscribe":
		c.subscribe(cctx, *who, f)
	case "unsubscribe":
		if id, aerr := parseUUID("session_id", f.SessionID); aerr != nil {
			c.sendError(f.SessionID, aerr)
		} else {
			c.unsubscribe(id)
		}
	case "cancel":
		id, aerr := parseUUID("session_id", f.SessionID)
		if aerr != nil {
			c.sendError(f.SessionID, aerr)
			return
		}
		if _, err := c.s.cfg.Sessions.Cancel(cctx, who.UserID, id); err != nil {
			c.sendError(id, c.s.sessionError(err))
		}
	}
}

// auth sets the socket's identity from an auth frame: an access token (a
// fresh token for the same user extends the socket's life) or an anonymous
// id. A socket never changes user.
func (c *wsConn) auth(ctx context.Context, f clientFrame) {
	var id identity
	var aerr *apiError
	switch {
	case f.AccessToken != "":
		id, aerr = c.s.verifyToken(ctx, f.AccessToken)
	case f.UserID != "":
		id, aerr = c.s.anonymous(ctx, f.UserID)
	default:
		aerr = errInvalid("identity_required", "auth needs an access_token or a user_id")
	}
	if aerr != nil {
		c.sendError("", aerr)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.who != nil && c.who.UserID != id.UserID {
		c.sendError("", &apiError{Code: "identity_change_refused",
			Message: "this socket already belongs to another user; open a new one"})
		return
	}
	c.who = &id
}

// expired reports whether the socket's token has expired.
func (c *wsConn) expired() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	// TokenLeeway is the leeway the verifier allows, so a token accepted at
	// upgrade is not refused at once.
	return c.who != nil && c.who.Registered && !c.who.ExpiresAt.IsZero() &&
		time.Now().After(c.who.ExpiresAt.Add(c.s.cfg.TokenLeeway))
}

func (c *wsConn) chat(ctx context.Context, who identity, f clientFrame) {
	req := chatRequest{Text: f.Text, SessionID: f.SessionID, ProjectID: f.ProjectID, ClientMessageID: f.ClientMessageID}
	if aerr := c.s.validateChat(&req); aerr != nil {
		c.sendError(f.SessionID, aerr)
		return
	}
	if req.SessionID == "" {
		req.SessionID = actors.NewSessionID(who.UserID, req.ClientMessageID)
	}
	sub, fresh := c.follow(req.SessionID)
	_, err := c.s.cfg.Sessions.Chat(ctx, actors.ChatRequest{
		UserID:          who.UserID,
		Anonymous:       who.Anonymous && !who.Registered,
		SessionID:       req.SessionID,
		ProjectID:       req.ProjectID,
		Text:            *req.Text,
		ClientMessageID: req.ClientMessageID,
		Subscriber:      sub,
		Follow:          true,
	})
	if err != nil {
		if fresh {
			c.unsubscribe(req.SessionID)
		}
		c.sendError(req.SessionID, c.s.sessionError(err))
	}
}

func (c *wsConn) subscribe(ctx context.Context, who identity, f clientFrame) {
	id, aerr := parseUUID("session_id", f.SessionID)
	if aerr != nil {
		c.sendError(f.SessionID, aerr)
		return
	}
	c.unsubscribe(id) // a new subscribe replaces the old one
	sub, _ := c.follow(id)
	err := c.s.cfg.Sessions.Subscribe(ctx, actors.SubscribeRequest{
		UserID: who.UserID, SessionID: id, AfterSeq: f.AfterSeq, Subscriber: sub,
	})
	if err != nil {
		c.unsubscribe(id)
		c.sendError(id, c.s.sessionError(err))
	}
}

// follow returns the socket's subscription to a session, making one if
// there is none (fresh).
func (c *wsConn) follow(sessionID string) (sub *wsSub, fresh bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if sub, ok := c.subs[sessionID]; ok {
		return sub, false
	}
	sub = &wsSub{conn: c, sessionID: sessionID}
	sub.active.Store(true)
	c.subs[sessionID] = sub
	return sub, true
}

// unsubscribe ends the socket's subscription to a session, if any.
func (c *wsConn) unsubscribe(sessionID string) {
	c.mu.Lock()
	sub, ok := c.subs[sessionID]
	delete(c.subs, sessionID)
	c.mu.Unlock()
	if ok {
		sub.active.Store(false)
		c.s.cfg.Sessions.Unsubscribe(sessionID, sub)
	}
}

// forget removes sub from the socket's map if it is still the current one.
func (c *wsConn) forget(sub *wsSub) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.subs[sub.sessionID] == sub {
		delete(c.subs, sub.sessionID)
	}
}

func (c *wsConn) unsubscribeAll() {
	c.mu.Lock()
	ids := make([]string, 0, len(c.subs))
	for id := range c.subs {
		ids = append(ids, id)
	}
	c.mu.Unlock()
	for _, id := range ids {
		c.unsubscribe(id)
	}
}

func (c *wsConn) identity() *identity {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.who
}

// enqueue queues f for the writer without blocking; a full queue means the
// client fell behind: the socket is closed and enqueue reports false.
func (c *wsConn) enqueue(f outFrame) bool {
	if c.out.push(f) {
		return true
	}
	c.close(websocket.StatusPolicyViolation, "slow consumer")
	return false
}

func (c *wsConn) enqueueRaw(b []byte) { c.enqueue(outFrame{raw: b}) }

func (c *wsConn) sendError(sessionID string, e *apiError) {
	c.enqueueRaw(encodeError(sessionID, e))
}

// close asks the writer to close the socket with status; the first request
// wins.
func (c *wsConn) close(status websocket.StatusCode, reason string) {
	select {
	case c.closing <- closeRequest{status: status, reason: reason}:
	default:
	}
}

// closeAfterFlush is close after the frames already queued are written.
func (c *wsConn) closeAfterFlush(status websocket.StatusCode, reason string) {
	select {
	case c.closing <- closeRequest{status: status, reason: reason, flush: true}:
	default:
	}
}

// writeLoop writes queued frames, each under its own deadline, until the
// socket closes. A close request is served before any further frame; on
// server shutdown the frames already queued are written first.
func (c *wsConn) writeLoop(ctx context.Context) {
	for {
		select {
		case req := <-c.closing:
			c.closeWith(ctx, req)
			return
		default:
		}
		if c.s.closing.Err() == nil { // on shutdown the select below drains
			if f, ok := c.out.pop(); ok {
				if !c.write(ctx, f) {
					return
				}
				continue
			}
		}
		select {
		case req := <-c.closing:
			c.closeWith(ctx, req)
			return
		case <-c.out.Ready():
		case <-c.s.closing.Done():
			for f, ok := c.out.pop(); ok; f, ok = c.out.pop() {
				if !c.write(ctx, f) {
					return
				}
			}
			c.closeWith(ctx, closeRequest{status: websocket.StatusGoingAway, reason: "server shutting down"})
			return
		case <-ctx.Done():
			return
		}
	}
}

func (c *wsConn) write(ctx context.Context, f outFrame) bool {
	if f.raw != nil {
		return c.writeFrame(ctx, f.raw)
	}
	if f.sub != nil && !f.sub.active.Load() {
		return true // replaced or removed: its catch-up or successor resends
	}
	if f.evs == nil {
		return c.writeFrame(ctx, encodeEvent(f.ev))
	}
	for _, ev := range f.evs {
		if !c.writeFrame(ctx, encodeEvent(ev)) {
			return false
		}
	}
	return true
}

// writeFrame writes one text frame under its own deadline: the writer's
// watchdog timer, armed for the write, closes the socket if it takes longer
// than WriteTimeout. (A timer reset per frame, rather than a context with a
// timeout, saves a context, a timer and their registrations per token.)
func (c *wsConn) writeFrame(ctx context.Context, b []byte) bool {
	c.watchdog.Reset(c.s.cfg.WriteTimeout)
	err := c.c.Write(ctx, websocket.MessageText, b)
	c.watchdog.Stop()
	return err == nil
}

func (c *wsConn) closeWith(ctx context.Context, req closeRequest) {
	for req.flush {
		f, ok := c.out.pop()
		if !ok {
			break
		}
		if !c.write(ctx, f) {
			req.flush = false
		}
	}
	if req.status == websocket.StatusPolicyViolation {
		c.s.cfg.Logger.Info("websocket closed", "status", req.status, "reason", req.reason)
	}
	_ = c.c.Close(req.status, req.reason)
}

// startPinger pings the peer every PingInterval and closes a socket whose
// pong does not come within PingTimeout. It runs on a timer, not a
// goroutine of its own: an idle socket costs no stack for it between
// pings. stop ends it and waits for a ping in flight.
func (c *wsConn) startPinger(ctx context.Context) (stop func()) {
	opened := time.Now()
	var (
		mu      sync.Mutex
		stopped bool
		running sync.WaitGroup
		t       *time.Timer
	)
	t = time.AfterFunc(c.s.cfg.PingInterval, func() {
		mu.Lock()
		if stopped {
			mu.Unlock()
			return
		}
		running.Add(1)
		mu.Unlock()
		defer running.Done()
		if !c.ping(ctx, opened) {
			return
		}
		mu.Lock()
		if !stopped {
			t.Reset(c.s.cfg.PingInterval)
		}
		mu.Unlock()
	})
	return func() {
		mu.Lock()
		stopped = true
		t.Stop()
		mu.Unlock()
		running.Wait()
	}
}

// ping runs one round of the pinger; it reports false when the socket is
// being closed.
func (c *wsConn) ping(ctx context.Context, opened time.Time) bool {
	if ctx.Err() != nil {
		return false
	}
	if c.expired() {
		c.close(websocket.StatusPolicyViolation, "token expired")
		return false
	}
	if c.identity() == nil && time.Since(opened) > c.s.cfg.PingInterval {
		// A socket that never said who it is holds resources for
		// nothing.
		c.close(websocket.StatusPolicyViolation, "identity required")
		return false
	}
	pctx, cancel := context.WithTimeout(ctx, c.s.cfg.PingTimeout)
	err := c.c.Ping(pctx)
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			c.s.cfg.Logger.Info("websocket peer did not answer ping", "err", err)
		}
		_ = c.c.CloseNow()
		return false
	}
	return true
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
