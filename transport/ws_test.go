package transport

// Integration tests of the WebSocket endpoint (docs/protocol.md): real
// sockets on an httptest server, real session actors, a real SQLite store
// and a fake OpenAI-compatible upstream (llmtest) that paces its tokens.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
	"github.com/google/uuid"

	"github.com/storyd/storyd/actors"
	"github.com/storyd/storyd/llm"
	"github.com/storyd/storyd/llm/llmtest"
	"github.com/storyd/storyd/persistence"
)

// wsWait bounds every wait for something the server should send. It is a
// deadline against hangs, never a pause: nothing below sleeps to let the
// server make progress.
const wsWait = 10 * time.Second

// itEnv is storyd's HTTP surface over real session actors, a real SQLite
// store and a fake upstream model.
type itEnv struct {
	ts       *httptest.Server
	up       *llmtest.Server
	store    *persistence.SQLite
	sessions *actors.Sessions
	api      *Server
}

// newUpstreamServer builds an itEnv; tweak adjusts the transport config.
func newUpstreamServer(t *testing.T, tweak func(*Config)) *itEnv {
	t.Helper()
	return newEnv(t, envOpts{transport: tweak})
}

// envOpts adjusts an itEnv.
type envOpts struct {
	transport func(*Config)
	actors    func(*actors.Config)
	// sendBuffer, when set, is the kernel send buffer of every connection
	// the server accepts, so that a client that stops reading backs up into
	// the server after a few kilobytes.
	sendBuffer int
}

func newEnv(t *testing.T, o envOpts) *itEnv {
	t.Helper()
	tweak, atweak := o.transport, o.actors
	// Created first, so its cleanup (which releases held replies) runs last.
	up := llmtest.NewServer(t)
	ctx := context.Background()
	store, err := persistence.OpenSQLite(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Migrate(ctx); err != nil {
		store.Close()
		t.Fatal(err)
	}
	model, err := llm.NewOpenAI(llm.OpenAIConfig{
		BaseURL: up.URL(), APIKey: "sk-test", Model: "gpt-4o-mini",
		RetryBaseDelay: time.Millisecond, HTTPClient: up.Client(),
	})
	if err != nil {
		store.Close()
		t.Fatal(err)
	}
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.DiscardHandler)
	}))
	acfg := actors.Config{Store: store, Model: model}
	if atweak != nil {
		atweak(&acfg)
	}
	sessions, err := actors.NewSessions(system, acfg)
	if err != nil {
		system.Shutdown()
		store.Close()
		t.Fatal(err)
	}
	cfg := Config{Sessions: sessions, Store: store, Provider: "openai"}
	if tweak != nil {
		tweak(&cfg)
	}
	api := NewServer(cfg)
	ts := httptest.NewUnstartedServer(api)
	if o.sendBuffer > 0 {
		ts.Listener = sendBufferListener{Listener: ts.Listener, size: o.sendBuffer}
	}
	ts.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = sessions.Shutdown(ctx)
		api.Close()
		ts.Close()
		system.Shutdown()
		store.Close()
	})
	return &itEnv{ts: ts, up: up, store: store, sessions: sessions, api: api}
}

// sendBufferListener sets the kernel send buffer of accepted connections.
type sendBufferListener struct {
	net.Listener
	size int
}

func (l sendBufferListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok && err == nil {
		if err := tc.SetWriteBuffer(l.size); err != nil {
			c.Close()
			return nil, err
		}
	}
	return c, err
}

func (e *itEnv) wsURL(query string) string {
	u := "ws" + strings.TrimPrefix(e.ts.URL, "http") + "/api/v1/ws"
	if query != "" {
		u += "?" + query
	}
	return u
}

// messages returns the stored messages of a session, in seq order.
func (e *itEnv) messages(t *testing.T, sessionID string) []persistence.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wsWait)
	defer cancel()
	msgs, err := e.store.ListMessages(ctx, sessionID, 200, 0)
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}

// reply returns the stored assistant message answering the user message
// userMessageID, failing when there is none.
func (e *itEnv) reply(t *testing.T, sessionID, userMessageID string) persistence.Message {
	t.Helper()
	for _, m := range e.messages(t, sessionID) {
		if m.Role == persistence.RoleAssistant && m.TurnID == userMessageID {
			return m
		}
	}
	t.Fatalf("no stored reply to %s in session %s", userMessageID, sessionID)
	return persistence.Message{}
}

// waitReply polls the store (with a deadline) until the reply to
// userMessageID is stored.
func (e *itEnv) waitReply(t *testing.T, sessionID, userMessageID string) persistence.Message {
	t.Helper()
	deadline := time.Now().Add(wsWait)
	for {
		for _, m := range e.messages(t, sessionID) {
			if m.Role == persistence.RoleAssistant && m.TurnID == userMessageID {
				return m
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the reply to %s was not stored within %v", userMessageID, wsWait)
		}
		time.Sleep(2 * time.Millisecond) // poll interval, not a wait for a condition
	}
}

// hold is an llmtest hold channel released at most once, and always before
// the server's cleanup (so shutdown does not wait for it).
type hold struct {
	ch   chan struct{}
	once sync.Once
}

func newHold(t *testing.T) *hold {
	h := &hold{ch: make(chan struct{})}
	t.Cleanup(h.release)
	return h
}

func (h *hold) release() { h.once.Do(func() { close(h.ch) }) }

// Wire shapes as a client reads them.
type (
	wsEvent struct {
		Type            string      `json:"type"`
		SessionID       string      `json:"session_id"`
		Seq             int64       `json:"seq"`
		Content         string      `json:"content"`
		ProjectID       string      `json:"project_id"`
		MessageID       string      `json:"message_id"`
		ClientMessageID string      `json:"client_message_id"`
		Duplicate       bool        `json:"duplicate"`
		Message         *wsUserMsg  `json:"message"`
		Metadata        *wsMetadata `json:"metadata"`
		Error           *wsError    `json:"error"`

		raw string
	}
	wsUserMsg struct {
		MessageID       string `json:"message_id"`
		Role            string `json:"role"`
		Content         string `json:"content"`
		ClientMessageID string `json:"client_message_id"`
	}
	wsMetadata struct {
		SessionID      string `json:"session_id"`
		ProjectID      string `json:"project_id"`
		MessageID      string `json:"message_id"`
		UserID         string `json:"user_id"`
		Status         string `json:"status"`
		DossierUpdated bool   `json:"dossier_updated"`
	}
	wsError struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
)

// String shows the event's JSON, shortened: some carry 8 KiB of text.
func (ev wsEvent) String() string {
	if len(ev.raw) > 160 {
		return ev.raw[:120] + fmt.Sprintf("…(%d bytes)", len(ev.raw))
	}
	return ev.raw
}

func lastOf(evs []wsEvent) any {
	if len(evs) == 0 {
		return "none"
	}
	return evs[len(evs)-1]
}

// evKey is what two followers of a session must agree on.
type evKey struct {
	Type    string
	Seq     int64
	Content string
	Status  string
}

func keyOf(ev wsEvent) evKey {
	k := evKey{Type: ev.Type, Seq: ev.Seq, Content: ev.Content}
	if ev.Metadata != nil {
		k.Status = ev.Metadata.Status
	}
	if ev.Message != nil {
		k.Content = ev.Message.Content
	}
	return k
}

func keysOf(evs []wsEvent) []evKey {
	out := make([]evKey, 0, len(evs))
	for _, ev := range evs {
		out = append(out, keyOf(ev))
	}
	return out
}

// textOf concatenates the text events of evs.
func textOf(evs []wsEvent) string {
	var b strings.Builder
	for _, ev := range evs {
		if ev.Type == "text" {
			b.WriteString(ev.Content)
		}
	}
	return b.String()
}

func afterSeq(evs []wsEvent, seq int64) []wsEvent {
	var out []wsEvent
	for _, ev := range evs {
		if ev.Seq > seq {
			out = append(out, ev)
		}
	}
	return out
}

// checkReplyShape checks that evs (one reply, as a follower sees it after
// the user message) is text* (error)? metadata done, every event of
// sessionID with strictly increasing seqs, and returns the metadata.
func checkReplyShape(t *testing.T, sessionID string, evs []wsEvent) *wsMetadata {
	t.Helper()
	if len(evs) < 2 {
		t.Fatalf("reply too short: %v", evs)
	}
	for i, ev := range evs {
		if ev.SessionID != sessionID {
			t.Fatalf("event %d has session_id %q, want %q: %v", i, ev.SessionID, sessionID, ev)
		}
		if ev.Seq <= 0 || (i > 0 && ev.Seq <= evs[i-1].Seq) {
			t.Fatalf("seqs not strictly increasing at %d: %v", i, evs)
		}
		switch {
		case i == len(evs)-1:
			if ev.Type != "done" {
				t.Fatalf("last event %v, want done", ev)
			}
		case i == len(evs)-2:
			if ev.Type != "metadata" || ev.Metadata == nil {
				t.Fatalf("second to last event %v, want metadata", ev)
			}
		case ev.Type == "error" && i == len(evs)-3:
		case ev.Type != "text":
			t.Fatalf("event %d is %v, want text", i, ev)
		}
	}
	return evs[len(evs)-2].Metadata
}

// wsClient is one test WebSocket with a reader goroutine, so that waiting
// with a deadline never cancels a read (which would close the socket).
type wsClient struct {
	t      *testing.T
	conn   *websocket.Conn
	frames chan []byte
	err    error // why reading stopped; written before frames is closed
	once   sync.Once
}

type dialOpts struct {
	query    string // e.g. "user_id=…"
	noPump   bool   // do not read until startPump
	client   *http.Client
	readSize int64
}

func dialWS(t *testing.T, env *itEnv, userID string) *wsClient {
	t.Helper()
	q := ""
	if userID != "" {
		q = "user_id=" + url.QueryEscape(userID)
	}
	return dialWSWith(t, env, dialOpts{query: q})
}

func dialWSWith(t *testing.T, env *itEnv, o dialOpts) *wsClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wsWait)
	defer cancel()
	conn, resp, err := websocket.Dial(ctx, env.wsURL(o.query), &websocket.DialOptions{HTTPClient: o.client})
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial %s: %v (HTTP %d)", env.wsURL(o.query), err, status)
	}
	if o.readSize == 0 {
		o.readSize = 64 << 20
	}
	conn.SetReadLimit(o.readSize)
	c := &wsClient{t: t, conn: conn, frames: make(chan []byte, 8192)}
	t.Cleanup(func() {
		conn.CloseNow()
		c.startPump() // make sure the reader exists, then let it end
		for range c.frames {
		}
	})
	if !o.noPump {
		c.startPump()
	}
	return c
}

func (c *wsClient) startPump() {
	c.once.Do(func() {
		go func() {
			defer close(c.frames)
			for {
				// Only read here: decoding happens in the test goroutine,
				// so that this client drains its socket as fast as it can.
				typ, b, err := c.conn.Read(context.Background())
				if err != nil {
					c.err = err
					return
				}
				if typ != websocket.MessageText {
					c.err = fmt.Errorf("binary frame %q", b)
					return
				}
				c.frames <- b
			}
		}()
	})
}

func (c *wsClient) decode(b []byte) wsEvent {
	c.t.Helper()
	var ev wsEvent
	if err := json.Unmarshal(b, &ev); err != nil {
		c.t.Fatalf("frame %.200q is not a JSON event: %v", b, err)
	}
	ev.raw = string(b)
	return ev
}

// next returns the next frame, failing the test if none comes in time or
// the socket ended.
func (c *wsClient) next() wsEvent {
	c.t.Helper()
	select {
	case b, ok := <-c.frames:
		if !ok {
			c.t.Fatalf("socket ended: %v", c.err)
		}
		return c.decode(b)
	case <-time.After(wsWait):
		c.t.Fatalf("no frame within %v", wsWait)
	}
	panic("unreachable")
}

// readToClose reads every remaining frame until the socket ends and returns
// them with the read error (a websocket.CloseError when the server closed).
func (c *wsClient) readToClose() ([]wsEvent, error) {
	c.t.Helper()
	c.startPump()
	var evs []wsEvent
	timeout := time.After(wsWait)
	for {
		select {
		case b, ok := <-c.frames:
			if !ok {
				return evs, c.err
			}
			evs = append(evs, c.decode(b))
		case <-timeout:
			c.t.Fatalf("socket still open after %v; got %d frames, the last %v", wsWait, len(evs), lastOf(evs))
		}
	}
}

// readToDone reads up to the first done, or until the socket ends (with
// its error).
func (c *wsClient) readToDone() ([]wsEvent, error) {
	c.t.Helper()
	var evs []wsEvent
	timeout := time.After(wsWait)
	for {
		select {
		case b, ok := <-c.frames:
			if !ok {
				return evs, c.err
			}
			ev := c.decode(b)
			evs = append(evs, ev)
			if ev.Type == "done" {
				return evs, nil
			}
		case <-timeout:
			c.t.Fatalf("no done within %v; got %d frames, the last %v", wsWait, len(evs), lastOf(evs))
		}
	}
}

// until reads frames up to and including the first of type typ (of
// sessionID when not empty) and returns them all.
func (c *wsClient) until(typ, sessionID string) []wsEvent {
	c.t.Helper()
	var evs []wsEvent
	for {
		ev := c.next()
		evs = append(evs, ev)
		if ev.Type == typ && (sessionID == "" || ev.SessionID == sessionID) {
			return evs
		}
	}
}

// turn reads until the done of sessionID and returns the events of that
// session (other sessions' events are skipped).
func (c *wsClient) turn(sessionID string) []wsEvent {
	c.t.Helper()
	var evs []wsEvent
	for _, ev := range c.until("done", sessionID) {
		if ev.SessionID == sessionID {
			evs = append(evs, ev)
		}
	}
	return evs
}

func (c *wsClient) send(v any) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wsWait)
	defer cancel()
	if err := wsjson.Write(ctx, c.conn, v); err != nil {
		c.t.Fatalf("send %v: %v", v, err)
	}
}

func (c *wsClient) sendRaw(s string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wsWait)
	defer cancel()
	if err := c.conn.Write(ctx, websocket.MessageText, []byte(s)); err != nil {
		c.t.Fatalf("send %.80q: %v", s, err)
	}
}

// Client frames.
type (
	authFrame struct {
		Type   string `json:"type"`
		UserID string `json:"user_id"`
	}
	chatFrame struct {
		Type            string `json:"type"`
		Text            string `json:"text"`
		SessionID       string `json:"session_id,omitempty"`
		ProjectID       string `json:"project_id,omitempty"`
		ClientMessageID string `json:"client_message_id,omitempty"`
	}
	subscribeFrame struct {
		Type      string `json:"type"`
		SessionID string `json:"session_id"`
		AfterSeq  *int64 `json:"after_seq,omitempty"`
	}
	sessionFrame struct {
		Type      string `json:"type"`
		SessionID string `json:"session_id"`
	}
)

func (c *wsClient) auth(userID string) { c.send(authFrame{Type: "auth", UserID: userID}) }

// chat sends a chat frame and returns its ack (failing on anything else
// before it).
func (c *wsClient) chat(f chatFrame) wsEvent {
	c.t.Helper()
	f.Type = "chat"
	c.send(f)
	ev := c.next()
	if ev.Type != "ack" {
		c.t.Fatalf("chat %+v answered %v, want ack first", f, ev)
	}
	return ev
}

func (c *wsClient) subscribe(sessionID string, after *int64) {
	c.send(subscribeFrame{Type: "subscribe", SessionID: sessionID, AfterSeq: after})
}

// pingPong proves the socket is healthy: a ping is answered with a pong
// (other non-error frames in between are tolerated).
func (c *wsClient) pingPong() {
	c.t.Helper()
	c.send(map[string]string{"type": "ping"})
	for {
		ev := c.next()
		switch ev.Type {
		case "pong":
			return
		case "error":
			c.t.Fatalf("ping answered with %v", ev)
		}
	}
}

// expectError sends a raw frame, expects an error frame with code as the
// very next frame, then checks the socket still answers a ping.
func (c *wsClient) expectError(frame, code string) wsEvent {
	c.t.Helper()
	c.sendRaw(frame)
	ev := c.next()
	if ev.Type != "error" || ev.Error == nil || ev.Error.Code != code || ev.Error.Message == "" {
		c.t.Fatalf("frame %.100q answered %v, want error %s", frame, ev, code)
	}
	if ev.Seq != 0 {
		c.t.Errorf("error answering a bad frame carries seq %d: %v", ev.Seq, ev)
	}
	c.pingPong()
	return ev
}

func ptr[T any](v T) *T { return &v }

// tokenList returns n distinct tokens.
func tokenList(n int, tag string) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%02d ", tag, i)
	}
	return out
}

func closeStatus(err error) (websocket.StatusCode, string) {
	var ce websocket.CloseError
	if errors.As(err, &ce) {
		return ce.Code, ce.Reason
	}
	return websocket.CloseStatus(err), ""
}

// TestWSChat: identity by query and by auth frame; a chat is acked, its
// user message and reply follow in order with increasing seqs, and the
// streamed text is what is stored. A retry with the same client_message_id
// is a duplicate and replays the original reply to a new socket.
func TestWSChat(t *testing.T) {
	env := newUpstreamServer(t, nil)
	for _, mode := range []string{"query", "auth-frame"} {
		t.Run(mode, func(t *testing.T) {
			user := uuid.NewString()
			toks := tokenList(12, "chat-"+mode)
			env.up.Enqueue(llmtest.Response{Tokens: toks, Delay: time.Millisecond})
			var c *wsClient
			if mode == "query" {
				c = dialWS(t, env, user)
			} else {
				c = dialWS(t, env, "")
				c.auth(user)
			}
			text := "A film about my grandmother (" + mode + ")"
			ack := c.chat(chatFrame{Text: text, ClientMessageID: "c-" + mode})
			if ack.SessionID == "" || ack.ProjectID == "" || ack.MessageID == "" || ack.Seq <= 0 ||
				ack.ClientMessageID != "c-"+mode || ack.Duplicate {
				t.Fatalf("ack %v", ack)
			}
			sid := ack.SessionID
			evs := c.turn(sid)
			msg := evs[0]
			if msg.Type != "message" || msg.Seq != ack.Seq || msg.Message == nil ||
				msg.Message.MessageID != ack.MessageID || msg.Message.Role != "user" ||
				msg.Message.Content != text || msg.Message.ClientMessageID != "c-"+mode {
				t.Fatalf("first event after the ack %v, want the user message at seq %d", msg, ack.Seq)
			}
			meta := checkReplyShape(t, sid, evs[1:])
			if evs[1].Seq <= msg.Seq {
				t.Fatalf("reply seq %d not after message seq %d", evs[1].Seq, msg.Seq)
			}
			if meta.Status != "complete" || meta.SessionID != sid || meta.ProjectID != ack.ProjectID ||
				meta.UserID != user || meta.MessageID == "" || meta.DossierUpdated {
				t.Fatalf("metadata %+v", meta)
			}
			got := textOf(evs)
			if want := strings.Join(toks, ""); got != want {
				t.Fatalf("streamed %q, want %q", got, want)
			}
			if n := strings.Count(evs[len(evs)-3].raw, `"type":"text"`); n != 1 {
				t.Fatalf("one frame per event: %s", evs[len(evs)-3].raw)
			}
			stored := env.reply(t, sid, ack.MessageID)
			if stored.Content != got || stored.Status != persistence.StatusComplete || stored.ID != meta.MessageID {
				t.Fatalf("stored %+v, streamed %q", stored, got)
			}
			msgs := env.messages(t, sid)
			if len(msgs) != 2 || msgs[0].ID != ack.MessageID || msgs[0].Content != text || msgs[0].Seq != ack.Seq {
				t.Fatalf("stored messages %+v", msgs)
			}

			// The same client_message_id again, from a socket that does not
			// follow the session: a duplicate ack, then the original reply.
			c2 := dialWS(t, env, user)
			dup := c2.chat(chatFrame{Text: text, SessionID: sid, ClientMessageID: "c-" + mode})
			if !dup.Duplicate || dup.MessageID != ack.MessageID || dup.Seq != ack.Seq || dup.SessionID != sid {
				t.Fatalf("duplicate ack %v, first ack %v", dup, ack)
			}
			again := c2.turn(sid)
			if textOf(again) != got || again[len(again)-2].Type != "metadata" ||
				again[len(again)-2].Metadata.MessageID != meta.MessageID {
				t.Fatalf("replayed reply %v", again)
			}
			if n := len(env.messages(t, sid)); n != 2 {
				t.Fatalf("%d stored messages after a duplicate, want 2", n)
			}
			if n := len(env.up.Requests()); n == 0 {
				t.Fatal("the upstream got no request")
			}
		})
	}
}

// TestWSDropAndResume drops a socket after a random number of events and
// resumes on a new one with subscribe{after_seq}: the two parts make the
// stored reply, with exactly the events a follower of the whole reply got
// (no duplicate, no gap).
func TestWSDropAndResume(t *testing.T) {
	env := newUpstreamServer(t, nil)
	user := uuid.NewString()
	ref := dialWS(t, env, user) // follows every reply from its start
	rng := rand.New(rand.NewPCG(20240601, 7))
	const runs, ntok = 30, 40
	for run := range runs {
		toks := tokenList(ntok, fmt.Sprintf("ws%02d", run))
		env.up.Enqueue(llmtest.Response{Tokens: toks, Delay: time.Millisecond})
		a := dialWS(t, env, user)
		ack := a.chat(chatFrame{Text: fmt.Sprintf("run %d", run)})
		sid := ack.SessionID
		ref.subscribe(sid, ptr(ack.Seq))
		// After the ack: message, ntok texts, metadata, done. Drop before done.
		k := rng.IntN(ntok + 3)
		last := ack.Seq
		var before []wsEvent
		for range k {
			ev := a.next()
			if ev.SessionID != sid || ev.Seq < last {
				t.Fatalf("run %d: event %v after seq %d", run, ev, last)
			}
			before = append(before, ev)
			last = ev.Seq
		}
		a.conn.CloseNow()

		var b *wsClient
		if run%2 == 0 {
			b = dialWS(t, env, user)
		} else {
			b = dialWS(t, env, "")
			b.auth(user)
		}
		b.subscribe(sid, ptr(last))
		rest := b.turn(sid)
		whole := ref.turn(sid)
		checkReplyShape(t, sid, whole)
		if !slices.Equal(keysOf(rest), keysOf(afterSeq(whole, last))) {
			t.Fatalf("run %d (k=%d, after_seq=%d): resumed\n%v\nwant\n%v", run, k, last, rest, afterSeq(whole, last))
		}
		var beforeText []wsEvent
		for _, ev := range before {
			if ev.Type == "text" {
				beforeText = append(beforeText, ev)
			}
		}
		var wholeBefore []wsEvent
		for _, ev := range whole {
			if ev.Type == "text" && ev.Seq <= last {
				wholeBefore = append(wholeBefore, ev)
			}
		}
		if !slices.Equal(keysOf(beforeText), keysOf(wholeBefore)) {
			t.Fatalf("run %d: before the drop got %v, the follower %v", run, beforeText, wholeBefore)
		}
		stored := env.reply(t, sid, ack.MessageID)
		if got := textOf(before) + textOf(rest); got != stored.Content || got != strings.Join(toks, "") ||
			stored.Status != persistence.StatusComplete {
			t.Fatalf("run %d (k=%d): reconstructed %q, stored %q (%s)", run, k, got, stored.Content, stored.Status)
		}
		b.conn.Close(websocket.StatusNormalClosure, "")
	}
}

// TestWSTwoTabs: two sockets follow one session; what one sends, both see,
// identically; only the sender gets the ack.
func TestWSTwoTabs(t *testing.T) {
	env := newUpstreamServer(t, nil)
	user := uuid.NewString()
	env.up.Enqueue(llmtest.Response{Tokens: tokenList(3, "first")})
	a := dialWS(t, env, user)
	ack1 := a.chat(chatFrame{Text: "the first message"})
	sid := ack1.SessionID
	first := a.turn(sid)
	lastSeq := first[len(first)-1].Seq

	b := dialWS(t, env, "")
	b.auth(user)
	b.subscribe(sid, ptr(lastSeq))
	b.pingPong()

	toks := tokenList(25, "tabs")
	env.up.Enqueue(llmtest.Response{Tokens: toks, Delay: time.Millisecond})
	ack2 := a.chat(chatFrame{Text: "the second message", SessionID: sid, ClientMessageID: "tab-a-2"})
	if ack2.Seq <= lastSeq || ack2.SessionID != sid {
		t.Fatalf("second ack %v after seq %d", ack2, lastSeq)
	}
	fromA, fromB := a.turn(sid), b.turn(sid)
	for _, ev := range fromB {
		if ev.Type == "ack" {
			t.Fatalf("the other tab got an ack: %v", ev)
		}
	}
	if !slices.Equal(keysOf(fromA), keysOf(fromB)) {
		t.Fatalf("tabs differ:\nA %v\nB %v", fromA, fromB)
	}
	if fromB[0].Type != "message" || fromB[0].Seq != ack2.Seq || fromB[0].Message.Content != "the second message" ||
		fromB[0].Message.ClientMessageID != "tab-a-2" {
		t.Fatalf("the other tab did not see the user message first: %v", fromB[0])
	}
	checkReplyShape(t, sid, fromB[1:])
	if textOf(fromB) != strings.Join(toks, "") || env.reply(t, sid, ack2.MessageID).Content != textOf(fromB) {
		t.Fatalf("reply %q", textOf(fromB))
	}
}

// slowDialClient dials with a tiny kernel receive buffer, so that a socket
// that does not read backs up into the server quickly.
func slowDialClient(t *testing.T) *http.Client {
	var d net.Dialer
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if tc, ok := c.(*net.TCPConn); ok && err == nil {
			if err := tc.SetReadBuffer(64 << 10); err != nil {
				c.Close()
				return nil, err
			}
		}
		return c, err
	}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// TestWSSlowConsumerIsClosed: a socket that stops reading is closed with
// 1008 once its queue fills; another socket of the session gets the whole
// reply and the reply is stored complete. Kernel buffers are kept small on
// both ends so that a few hundred kilobytes back up into the server.
func TestWSSlowConsumerIsClosed(t *testing.T) {
	env := newEnv(t, envOpts{transport: func(c *Config) { c.QueueSize = 8 }, sendBuffer: 8 << 10})
	user := uuid.NewString()
	big := strings.Repeat("x", 2<<10)
	toks := make([]string, 200)
	for i := range toks {
		toks[i] = fmt.Sprintf("%03d", i) + big
	}
	h := newHold(t)
	env.up.Enqueue(llmtest.Response{Tokens: toks, Delay: time.Millisecond, Hold: h.ch, HoldAt: 0})

	good := dialWS(t, env, user)
	ack := good.chat(chatFrame{Text: "a very long answer please"})
	sid := ack.SessionID

	slow := dialWSWith(t, env, dialOpts{query: "user_id=" + user, noPump: true, client: slowDialClient(t)})
	slow.subscribe(sid, ptr(ack.Seq))
	h.release()

	evs := good.turn(sid)
	meta := checkReplyShape(t, sid, evs[1:])
	if meta.Status != "complete" || textOf(evs) != strings.Join(toks, "") {
		t.Fatalf("the good socket got status %s and %d bytes of text", meta.Status, len(textOf(evs)))
	}
	stored := env.reply(t, sid, ack.MessageID)
	if stored.Status != persistence.StatusComplete || stored.Content != strings.Join(toks, "") {
		t.Fatalf("stored %s with %d bytes", stored.Status, len(stored.Content))
	}

	got, err := slow.readToClose()
	code, reason := closeStatus(err)
	if code != websocket.StatusPolicyViolation {
		t.Fatalf("slow socket ended with %v (status %d), want 1008 after %d events", err, code, len(got))
	}
	if !strings.Contains(reason, "slow") {
		t.Errorf("close reason %q, want it to say slow consumer", reason)
	}
	if len(got) > 0 && got[len(got)-1].Type == "done" {
		t.Fatalf("the slow socket got the whole reply (%d events)", len(got))
	}
	for i := 1; i < len(got); i++ {
		if got[i].Seq <= got[i-1].Seq {
			t.Fatalf("slow socket seqs not increasing at %d", i)
		}
	}
	// What it got before being closed is a prefix of the reply: it resumes
	// after its last seq.
	if n := len(got); n > 0 && !slices.Equal(keysOf(got), keysOf(evs[1:])[:n]) {
		t.Fatalf("slow socket got events that are not a prefix of the reply")
	}
}

// TestWSUnsubscribe: after unsubscribe, a socket gets nothing more of the
// session; subscribing again resumes it.
func TestWSUnsubscribe(t *testing.T) {
	env := newUpstreamServer(t, nil)
	user := uuid.NewString()
	env.up.Enqueue(llmtest.Response{Tokens: tokenList(3, "one")})
	a := dialWS(t, env, user)
	ack := a.chat(chatFrame{Text: "first"})
	sid := ack.SessionID
	a.turn(sid)
	b := dialWS(t, env, user)
	b.subscribe(sid, nil)
	b.send(sessionFrame{Type: "unsubscribe", SessionID: sid})
	b.pingPong()

	env.up.Enqueue(llmtest.Response{Tokens: tokenList(3, "two")})
	ack2 := a.chat(chatFrame{Text: "second", SessionID: sid})
	second := a.turn(sid)
	// Everything the session sent b would be queued before this pong.
	b.send(map[string]string{"type": "ping"})
	if ev := b.next(); ev.Type != "pong" {
		t.Fatalf("an unsubscribed socket got %v", ev)
	}
	b.subscribe(sid, ptr(ack2.Seq))
	if got := b.turn(sid); !slices.Equal(keysOf(got), keysOf(afterSeq(second, ack2.Seq))) {
		t.Fatalf("resubscribed: %v, want %v", got, afterSeq(second, ack2.Seq))
	}
}

// TestWSCancelFrame: a cancel frame stops the reply in flight; the upstream
// request is closed, every follower gets metadata (cancelled) and done, and
// what arrived is stored as cancelled.
func TestWSCancelFrame(t *testing.T) {
	env := newUpstreamServer(t, nil)
	user := uuid.NewString()
	toks := tokenList(10, "cancel")
	h := newHold(t)
	env.up.Enqueue(llmtest.Response{Tokens: toks, Hold: h.ch, HoldAt: 3})
	a := dialWS(t, env, user)
	ack := a.chat(chatFrame{Text: "start and stop"})
	sid := ack.SessionID
	b := dialWS(t, env, user)
	b.subscribe(sid, ptr(ack.Seq))
	var head []wsEvent
	for len(head) < 4 { // message and three texts; then the upstream holds
		head = append(head, a.next())
	}
	a.send(sessionFrame{Type: "cancel", SessionID: sid})
	ctx, cancel := context.WithTimeout(context.Background(), wsWait)
	defer cancel()
	if err := env.up.WaitClientGone(ctx); err != nil {
		t.Fatalf("the upstream request was not closed: %v", err)
	}
	tailA := a.turn(sid)
	fromA := append(head, tailA...)
	fromB := b.turn(sid)
	want := strings.Join(toks[:3], "")
	for name, evs := range map[string][]wsEvent{"sender": fromA[1:], "follower": fromB} {
		var reply []wsEvent
		for _, ev := range evs {
			if ev.Type != "error" { // tolerate an error event before metadata
				reply = append(reply, ev)
			}
		}
		meta := checkReplyShape(t, sid, reply)
		if meta.Status != "cancelled" || textOf(reply) != want {
			t.Fatalf("%s: status %s, text %q, want cancelled %q", name, meta.Status, textOf(reply), want)
		}
	}
	if !slices.Equal(keysOf(fromA[1:]), keysOf(fromB)) {
		t.Fatalf("sender and follower differ:\n%v\n%v", fromA[1:], fromB)
	}
	stored := env.reply(t, sid, ack.MessageID)
	if stored.Status != persistence.StatusCancelled || stored.Content != want {
		t.Fatalf("stored %s %q, want cancelled %q", stored.Status, stored.Content, want)
	}
	// Both sockets are still fine.
	a.pingPong()
	b.pingPong()
}

// TestWSResumeAfterCompletion: the only socket goes away mid-reply; the
// reply still completes and is stored; a new socket resuming after the last
// seq it saw gets exactly the rest.
func TestWSResumeAfterCompletion(t *testing.T) {
	env := newUpstreamServer(t, nil)
	user := uuid.NewString()
	toks := tokenList(30, "alone")
	env.up.Enqueue(llmtest.Response{Tokens: toks, Delay: time.Millisecond})
	a := dialWS(t, env, user)
	ack := a.chat(chatFrame{Text: "keep going without me"})
	sid := ack.SessionID
	var before []wsEvent
	for len(before) < 6 { // message and five texts
		before = append(before, a.next())
	}
	last := before[len(before)-1].Seq
	a.conn.CloseNow()

	stored := env.waitReply(t, sid, ack.MessageID)
	if stored.Status != persistence.StatusComplete || stored.Content != strings.Join(toks, "") {
		t.Fatalf("stored %s %q", stored.Status, stored.Content)
	}
	b := dialWS(t, env, user)
	b.subscribe(sid, ptr(last))
	rest := b.turn(sid)
	ref := dialWS(t, env, user)
	ref.subscribe(sid, ptr(ack.Seq))
	whole := ref.turn(sid)
	checkReplyShape(t, sid, whole)
	if !slices.Equal(keysOf(rest), keysOf(afterSeq(whole, last))) {
		t.Fatalf("resumed after %d:\n%v\nwant\n%v", last, rest, afterSeq(whole, last))
	}
	if got := textOf(before) + textOf(rest); got != stored.Content {
		t.Fatalf("reconstructed %q, stored %q", got, stored.Content)
	}
	if rest[len(rest)-2].Metadata.Status != "complete" {
		t.Fatalf("metadata %v", rest[len(rest)-2])
	}
}

// TestWSGracefulShutdown: a reply in flight when the sessions shut down is
// stored as partial, and closing the transport closes sockets with 1001 and
// ends follow streams.
func TestWSGracefulShutdown(t *testing.T) {
	env := newUpstreamServer(t, nil)
	user := uuid.NewString()
	toks := tokenList(10, "bye")
	h := newHold(t)
	env.up.Enqueue(llmtest.Response{Tokens: toks, Hold: h.ch, HoldAt: 2})
	a := dialWS(t, env, user)
	ack := a.chat(chatFrame{Text: "talk until the end"})
	sid := ack.SessionID
	var head []wsEvent
	for len(head) < 3 { // message and two texts; then the upstream holds
		head = append(head, a.next())
	}
	follower := openStream(t, env, sid, user, "?after_seq="+fmt.Sprint(ack.Seq), "")

	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := env.sessions.Shutdown(ctx); err != nil {
		t.Logf("sessions.Shutdown: %v", err)
	}
	env.api.Close()

	tail, err := a.readToClose()
	if code, _ := closeStatus(err); code != websocket.StatusGoingAway {
		t.Fatalf("socket ended with %v (status %d) after %v, want 1001", err, code, tail)
	}
	wctx, wcancel := context.WithTimeout(context.Background(), wsWait)
	defer wcancel()
	if err := env.api.Wait(wctx); err != nil {
		t.Fatalf("websocket handlers still running after the close: %v", err)
	}
	t.Logf("before 1001 the socket got %v", tail)
	for _, ev := range tail {
		if ev.Type == "text" {
			t.Fatalf("text after the upstream was held: %v", ev)
		}
	}
	stored := env.reply(t, sid, ack.MessageID)
	if want := strings.Join(toks[:2], ""); stored.Status != persistence.StatusPartial || stored.Content != want {
		t.Fatalf("stored %s %q, want partial %q", stored.Status, stored.Content, want)
	}
	// The follow stream ends too (after whatever it held); events without
	// a seq may only close it.
	evs, err := follower.readToEOF()
	if err != nil {
		t.Fatalf("follow stream: %v", err)
	}
	n := len(evs)
	for i, ev := range evs {
		closing := (i == n-2 && ev.Type == "error" && evs[n-1].Type == "done" && evs[n-1].Seq == 0) ||
			(i == n-1 && ev.Type == "done" && i > 0 && evs[i-1].Type == "error" && evs[i-1].Seq == 0)
		if ev.Seq == 0 && !closing {
			t.Fatalf("event without a seq in the stream: %v", ev)
		}
	}
}

// TestWSBadInput: every bad frame is answered with an error frame and the
// socket stays usable; an oversized frame closes it with 1009.
func TestWSBadInput(t *testing.T) {
	env := newUpstreamServer(t, nil)
	user, other := uuid.NewString(), uuid.NewString()

	// Another user's session.
	env.up.Enqueue(llmtest.Response{Tokens: tokenList(2, "other")})
	o := dialWS(t, env, other)
	oack := o.chat(chatFrame{Text: "someone else's story"})
	o.turn(oack.SessionID)

	c := dialWS(t, env, "")
	c.pingPong() // ping works before identity
	c.expectError(`{"type":"chat","text":"hi"}`, "identity_required")
	c.expectError(`{"type":"subscribe","session_id":"`+oack.SessionID+`"}`, "identity_required")
	c.expectError(`{"type":"auth","user_id":"nope"}`, "invalid_user_id")
	c.auth(user)
	c.pingPong()
	c.expectError(`{"type":"auth","user_id":"`+other+`"}`, "identity_change_refused")

	c.expectError(`{"type":`, "malformed_json")
	c.expectError(`"hello"`, "malformed_json")
	c.expectError(`[1,2]`, "malformed_json")
	c.expectError(`{"type":"dance"}`, "unknown_type")
	c.expectError(`{"type":"chat","text":"   "}`, "text_empty")
	c.expectError(`{"type":"chat"}`, "text_required")
	c.expectError(`{"type":"chat","text":"hi","session_id":"nope"}`, "invalid_session_id")
	c.expectError(`{"type":"chat","text":"`+strings.Repeat("a", 32<<10+1)+`"}`, "text_too_large")
	if ev := c.expectError(`{"type":"subscribe","session_id":"`+oack.SessionID+`"}`, "session_not_found"); ev.SessionID != oack.SessionID {
		t.Errorf("error about a named session lacks its session_id: %v", ev)
	}
	c.expectError(`{"type":"subscribe","session_id":"`+uuid.NewString()+`"}`, "session_not_found")
	c.expectError(`{"type":"cancel","session_id":"`+oack.SessionID+`"}`, "session_not_found")
	c.expectError(`{"type":"chat","text":"let me in","session_id":"`+oack.SessionID+`"}`, "session_not_found")

	// after_seq outside the session's events.
	env.up.Enqueue(llmtest.Response{Tokens: tokenList(2, "mine")})
	ack := c.chat(chatFrame{Text: "my own story"})
	sid := ack.SessionID
	evs := c.turn(sid)
	latest := evs[len(evs)-1].Seq
	c.expectError(fmt.Sprintf(`{"type":"subscribe","session_id":%q,"after_seq":%d}`, sid, latest+1), "invalid_after_seq")
	c.expectError(fmt.Sprintf(`{"type":"subscribe","session_id":%q,"after_seq":%d}`, sid, latest+1000), "invalid_after_seq")
	c.expectError(fmt.Sprintf(`{"type":"subscribe","session_id":%q,"after_seq":-1}`, sid), "invalid_after_seq")
	// The other user's socket never saw any of this.
	o.pingPong()

	// A frame over 64 KiB closes the socket with 1009.
	c.sendRaw(`{"type":"chat","text":"` + strings.Repeat("b", 64<<10) + `"}`)
	got, err := c.readToClose()
	if code, _ := closeStatus(err); code != websocket.StatusMessageTooBig {
		t.Fatalf("oversized frame: socket ended with %v (status %d) after %v, want 1009", err, code, got)
	}
}

// TestWSQueuedChats: a chat sent while a reply is generating is acked at
// once and answered after it, in order.
func TestWSQueuedChats(t *testing.T) {
	env := newUpstreamServer(t, nil)
	user := uuid.NewString()
	toks1, toks2 := tokenList(6, "one"), tokenList(5, "two")
	h := newHold(t)
	env.up.Enqueue(
		llmtest.Response{Tokens: toks1, Hold: h.ch, HoldAt: 1},
		llmtest.Response{Tokens: toks2, Delay: time.Millisecond},
	)
	c := dialWS(t, env, user)
	ack1 := c.chat(chatFrame{Text: "first question", ClientMessageID: "q1"})
	sid := ack1.SessionID
	// The first reply is under way (one text), then held.
	head := c.until("text", sid)
	ack2 := c.chat(chatFrame{Text: "second question", SessionID: sid, ClientMessageID: "q2"})
	if ack2.Seq <= ack1.Seq || ack2.Duplicate || ack2.ClientMessageID != "q2" {
		t.Fatalf("acks %v then %v", ack1, ack2)
	}
	h.release()
	var evs []wsEvent
	evs = append(evs, head...)
	evs = append(evs, c.turn(sid)...)
	evs = append(evs, c.turn(sid)...)
	// Split the two replies, ignoring the second message event (it comes
	// when the second chat is stored, during the first reply).
	var replies [][]wsEvent
	var cur []wsEvent
	var sawMsg2 bool
	for _, ev := range evs {
		switch {
		case ev.Type == "message":
			if ev.Message.Content == "second question" {
				sawMsg2 = true
				if ev.Seq != ack2.Seq {
					t.Fatalf("second message event %v, ack %v", ev, ack2)
				}
			}
			continue
		case ev.Type == "ack":
			t.Fatalf("unexpected ack %v", ev)
		}
		cur = append(cur, ev)
		if ev.Type == "done" {
			replies = append(replies, cur)
			cur = nil
		}
	}
	if !sawMsg2 || len(replies) != 2 {
		t.Fatalf("events %v", evs)
	}
	checkReplyShape(t, sid, replies[0])
	checkReplyShape(t, sid, replies[1])
	if textOf(replies[0]) != strings.Join(toks1, "") || textOf(replies[1]) != strings.Join(toks2, "") {
		t.Fatalf("replies %q then %q", textOf(replies[0]), textOf(replies[1]))
	}
	if replies[1][0].Seq <= replies[0][len(replies[0])-1].Seq {
		t.Fatalf("second reply does not follow the first")
	}
	msgs := env.messages(t, sid)
	if len(msgs) != 4 {
		t.Fatalf("%d stored messages: %+v", len(msgs), msgs)
	}
	want := []struct{ role, turn string }{
		{"user", ack1.MessageID}, {"assistant", ack1.MessageID},
		{"user", ack2.MessageID}, {"assistant", ack2.MessageID},
	}
	for i, w := range want {
		if msgs[i].Role != w.role || msgs[i].TurnID != w.turn {
			t.Fatalf("stored message %d is %s of turn %s, want %s of %s", i, msgs[i].Role, msgs[i].TurnID, w.role, w.turn)
		}
	}
	if msgs[1].Content != strings.Join(toks1, "") || msgs[3].Content != strings.Join(toks2, "") {
		t.Fatalf("stored replies %q, %q", msgs[1].Content, msgs[3].Content)
	}
	// The second reply was generated with the first exchange in its context.
	reqs := env.up.Requests()
	if len(reqs) != 2 {
		t.Fatalf("%d upstream requests", len(reqs))
	}
	var prompt []string
	for _, m := range reqs[1].Messages {
		if m.Role != "system" {
			prompt = append(prompt, m.Role+":"+m.Content)
		}
	}
	wantPrompt := []string{"user:first question", "assistant:" + strings.Join(toks1, ""), "user:second question"}
	if !slices.Equal(prompt, wantPrompt) {
		t.Fatalf("second prompt %q, want %q", prompt, wantPrompt)
	}
}

// TestWSResumeOutOfMemory: with a tiny in-memory replay, a resume between
// two stored messages is served from the store (the reply as one text
// event), and a resume into the middle of a reply gets reset; either
// socket then follows live events.
func TestWSResumeOutOfMemory(t *testing.T) {
	env := newEnv(t, envOpts{actors: func(c *actors.Config) { c.ReplayEvents = 4 }})
	user := uuid.NewString()
	toks := tokenList(20, "old")
	env.up.Enqueue(llmtest.Response{Tokens: toks})
	a := dialWS(t, env, user)
	ack := a.chat(chatFrame{Text: "long ago"})
	sid := ack.SessionID
	whole := a.turn(sid)
	latest := whole[len(whole)-1].Seq
	stored := env.reply(t, sid, ack.MessageID)

	b := dialWS(t, env, user)
	b.subscribe(sid, ptr(ack.Seq))
	fromStore := b.turn(sid)
	if len(fromStore) != 3 || fromStore[0].Type != "text" || fromStore[0].Content != stored.Content ||
		fromStore[0].Seq != stored.Seq || fromStore[2].Seq != latest {
		t.Fatalf("resume from the store: %v", fromStore)
	}
	checkReplyShape(t, sid, fromStore)

	c := dialWS(t, env, user)
	c.subscribe(sid, ptr(ack.Seq+3))
	if ev := c.next(); ev.Type != "reset" || ev.SessionID != sid || ev.Seq != latest {
		t.Fatalf("resume into a forgotten reply: %v, want reset at %d", ev, latest)
	}

	toks2 := tokenList(3, "new")
	env.up.Enqueue(llmtest.Response{Tokens: toks2})
	ack2 := a.chat(chatFrame{Text: "and now", SessionID: sid})
	for name, s := range map[string]*wsClient{"store": b, "reset": c} {
		evs := s.turn(sid)
		if evs[0].Type != "message" || evs[0].Seq != ack2.Seq || textOf(evs) != strings.Join(toks2, "") {
			t.Fatalf("%s follower after catching up: %v", name, evs)
		}
	}
}
