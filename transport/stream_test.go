package transport

// Integration tests of the SSE follow stream (GET /api/v1/sessions/{id}/stream)
// and of POST /api/v1/sessions/{id}/cancel. Helpers for the server and for
// WebSocket clients are in ws_test.go.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/storyd/storyd/llm/llmtest"
	"github.com/storyd/storyd/persistence"
)

// sseClient reads a follow stream in a goroutine, so that waits have a
// deadline without breaking the stream.
type sseClient struct {
	t        *testing.T
	resp     *http.Response
	cancel   context.CancelFunc
	events   chan wsEvent
	err      error // why reading stopped (nil: EOF); written before events is closed
	comments atomic.Int64
	once     sync.Once
}

// openStream opens the follow stream of sessionID as userID (in the query)
// with extra query parameters (starting with "?" or "&"... given as
// "?after_seq=3") and an optional Last-Event-ID header; it fails unless the
// answer is a 200 event stream.
func openStream(t *testing.T, env *itEnv, sessionID, userID, query, lastEventID string) *sseClient {
	t.Helper()
	return openStreamWith(t, env, env.ts.Client(), true, sessionID, userID, query, lastEventID)
}

// openStreamWith opens a follow stream with client; unless pump is set, the
// body is not read until startPump.
func openStreamWith(t *testing.T, env *itEnv, client *http.Client, pump bool, sessionID, userID, query, lastEventID string) *sseClient {
	t.Helper()
	resp, cancel := streamRequest(t, env, client, sessionID, userID, query, lastEventID)
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		cancel()
		t.Fatalf("stream of %s: %d %s", sessionID, resp.StatusCode, b)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		cancel()
		t.Fatalf("stream content type %q", ct)
	}
	s := &sseClient{t: t, resp: resp, cancel: cancel, events: make(chan wsEvent, 8192)}
	t.Cleanup(func() {
		s.cancel()
		s.startPump() // make sure the reader exists, then let it end
		for range s.events {
		}
	})
	if pump {
		s.startPump()
	}
	return s
}

func (s *sseClient) startPump() { s.once.Do(func() { go s.pump() }) }

func streamRequest(t *testing.T, env *itEnv, client *http.Client, sessionID, userID, query, lastEventID string) (*http.Response, context.CancelFunc) {
	t.Helper()
	u := env.ts.URL + "/api/v1/sessions/" + sessionID + "/stream"
	q := url.Values{}
	if userID != "" {
		q.Set("user_id", userID)
	}
	if query != "" {
		extra, err := url.ParseQuery(strings.TrimPrefix(query, "?"))
		if err != nil {
			t.Fatal(err)
		}
		for k, vs := range extra {
			q[k] = vs
		}
	}
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	resp, err := client.Do(req)
	if err != nil {
		cancel()
		t.Fatalf("GET %s: %v", u, err)
	}
	return resp, func() {
		cancel()
		resp.Body.Close()
	}
}

func (s *sseClient) pump() {
	defer close(s.events)
	sc := bufio.NewScanner(s.resp.Body)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	var id int64
	var hasID bool
	var data []string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, ":"):
			s.comments.Add(1)
		case strings.HasPrefix(line, "id:"):
			v, err := strconv.ParseInt(strings.TrimSpace(strings.TrimPrefix(line, "id:")), 10, 64)
			if err != nil {
				s.err = fmt.Errorf("bad id line %q", line)
				return
			}
			id, hasID = v, true
		case strings.HasPrefix(line, "data:"):
			data = append(data, strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
		case line == "":
			if data != nil {
				raw := strings.Join(data, "\n")
				var ev wsEvent
				if err := json.Unmarshal([]byte(raw), &ev); err != nil {
					s.err = fmt.Errorf("bad data %q: %w", raw, err)
					return
				}
				ev.raw = raw
				switch {
				case ev.Type == "dossier" && hasID:
					// Not part of the resumable stream: an id would move
					// the client's Last-Event-ID off the session's seqs.
					s.err = fmt.Errorf("dossier event with an id line: %s", raw)
					return
				case !hasID && ev.Type != "error" && ev.Type != "done" && ev.Type != "dossier":
					// Only the notice that ends a stream early (an error,
					// then done, e.g. the session stopped at shutdown) and
					// dossier events have no seq, so that a reconnect
					// resumes after the last real event.
					s.err = fmt.Errorf("event without an id line: %s", raw)
					return
				case hasID && ev.Seq != id:
					s.err = fmt.Errorf("event id %d but seq %d: %s", id, ev.Seq, raw)
					return
				}
				s.events <- ev
			}
			id, hasID, data = 0, false, nil
		}
	}
	s.err = sc.Err()
}

func (s *sseClient) next() wsEvent {
	s.t.Helper()
	select {
	case ev, ok := <-s.events:
		if !ok {
			s.t.Fatalf("stream ended: %v", s.err)
		}
		return ev
	case <-time.After(wsWait):
		s.t.Fatalf("no event within %v", wsWait)
	}
	panic("unreachable")
}

// turn reads until done and returns the events read.
func (s *sseClient) turn() []wsEvent {
	s.t.Helper()
	var evs []wsEvent
	for {
		ev := s.next()
		evs = append(evs, ev)
		if ev.Type == "done" {
			return evs
		}
	}
}

// readToDone reads up to the first done (or the end of the stream).
func (s *sseClient) readToDone() ([]wsEvent, error) {
	s.t.Helper()
	var evs []wsEvent
	timeout := time.After(wsWait)
	for {
		select {
		case ev, ok := <-s.events:
			if !ok {
				return evs, s.err
			}
			evs = append(evs, ev)
			if ev.Type == "done" {
				return evs, nil
			}
		case <-timeout:
			s.t.Fatalf("no done within %v; got %d events, the last %v", wsWait, len(evs), lastOf(evs))
		}
	}
}

// readToEOF reads until the server ends the stream.
func (s *sseClient) readToEOF() ([]wsEvent, error) {
	s.t.Helper()
	s.startPump()
	var evs []wsEvent
	timeout := time.After(wsWait)
	for {
		select {
		case ev, ok := <-s.events:
			if !ok {
				return evs, s.err
			}
			evs = append(evs, ev)
		case <-timeout:
			s.t.Fatalf("stream still open after %v; got %d events, the last %v", wsWait, len(evs), lastOf(evs))
		}
	}
}

// close drops the stream abruptly, as a client going away.
func (s *sseClient) close() {
	s.cancel()
	s.startPump()
	for range s.events {
	}
}

// TestSSEDropAndResume drops a follow stream after a random number of
// events and resumes it with Last-Event-ID or ?after_seq=: the two parts
// make the stored reply, exactly as a follower of the whole reply got it.
func TestSSEDropAndResume(t *testing.T) {
	for _, mode := range []string{"last-event-id", "after_seq"} {
		t.Run(mode, func(t *testing.T) {
			env := newUpstreamServer(t, nil)
			user := uuid.NewString()
			ref := dialWS(t, env, user)
			rng := rand.New(rand.NewPCG(7, uint64(len(mode))))
			const runs, ntok = 12, 40
			for run := range runs {
				toks := tokenList(ntok, fmt.Sprintf("sse%02d", run))
				env.up.Enqueue(llmtest.Response{Tokens: toks, Delay: time.Millisecond})
				a := dialWS(t, env, user)
				ack := a.chat(chatFrame{Text: fmt.Sprintf("sse run %d", run)})
				sid := ack.SessionID
				ref.subscribe(sid, ptr(ack.Seq))

				s1 := openStream(t, env, sid, user, fmt.Sprintf("?after_seq=%d", ack.Seq), "")
				// After the user message: ntok texts, metadata, done. Drop before done.
				k := rng.IntN(ntok + 2)
				last := ack.Seq
				var before []wsEvent
				for range k {
					ev := s1.next()
					if ev.Seq <= last || ev.Type == "ack" || ev.Type == "message" {
						t.Fatalf("run %d: event %v after seq %d", run, ev, last)
					}
					before = append(before, ev)
					last = ev.Seq
				}
				s1.close()

				var s2 *sseClient
				if mode == "last-event-id" {
					s2 = openStream(t, env, sid, user, "", strconv.FormatInt(last, 10))
				} else {
					s2 = openStream(t, env, sid, user, fmt.Sprintf("?after_seq=%d", last), "")
				}
				rest := s2.turn()
				s2.close()
				whole := ref.turn(sid)
				if !slices.Equal(keysOf(rest), keysOf(afterSeq(whole, last))) {
					t.Fatalf("run %d (k=%d, after %d): resumed\n%v\nwant\n%v", run, k, last, rest, afterSeq(whole, last))
				}
				if !slices.Equal(keysOf(before), keysOf(whole)[:len(before)]) {
					t.Fatalf("run %d: before the drop %v, the follower %v", run, before, whole)
				}
				for _, ev := range append(before, rest...) {
					if ev.SessionID != "" && ev.SessionID != sid {
						t.Fatalf("event of another session: %v", ev)
					}
				}
				stored := env.reply(t, sid, ack.MessageID)
				if got := textOf(before) + textOf(rest); got != stored.Content || got != strings.Join(toks, "") {
					t.Fatalf("run %d (k=%d): reconstructed %q, stored %q", run, k, got, stored.Content)
				}
				a.turn(sid)
				a.conn.CloseNow()
			}
		})
	}
}

// TestSSEFollowLive: a follow stream opened without a seq on an idle
// session gets keep-alive comments, then every new turn live (the user
// message, the reply), with the WebSocket's seqs; the reply in flight is
// shown from its start.
func TestSSEFollowLive(t *testing.T) {
	env := newUpstreamServer(t, func(c *Config) { c.Heartbeat = 5 * time.Millisecond })
	user := uuid.NewString()
	env.up.Enqueue(llmtest.Response{Tokens: tokenList(3, "warm")})
	a := dialWS(t, env, user)
	ack := a.chat(chatFrame{Text: "warm up"})
	sid := ack.SessionID
	a.turn(sid)

	s := openStream(t, env, sid, user, "", "")
	deadline := time.Now().Add(wsWait)
	for s.comments.Load() < 2 {
		if time.Now().After(deadline) {
			t.Fatal("no keep-alive comment on an idle stream")
		}
		time.Sleep(time.Millisecond) // poll interval
	}

	toks := tokenList(8, "live")
	h := newHold(t)
	env.up.Enqueue(llmtest.Response{Tokens: toks, Hold: h.ch, HoldAt: 4})
	ack2 := a.chat(chatFrame{Text: "now follow me", SessionID: sid})
	fromSSE := []wsEvent{}
	for len(fromSSE) < 5 { // the message and four texts; then held
		fromSSE = append(fromSSE, s.next())
	}
	// A stream opened now, without a seq, starts with the reply in flight.
	late := openStream(t, env, sid, user, "", "")
	h.release()
	fromSSE = append(fromSSE, s.turn()...)
	fromWS := a.turn(sid)
	if !slices.Equal(keysOf(fromSSE), keysOf(fromWS)) {
		t.Fatalf("SSE and WebSocket differ:\n%v\n%v", fromSSE, fromWS)
	}
	if fromSSE[0].Type != "message" || fromSSE[0].Seq != ack2.Seq || fromSSE[0].Message.Content != "now follow me" {
		t.Fatalf("first live event %v", fromSSE[0])
	}
	checkReplyShape(t, sid, fromSSE[1:])
	fromLate := late.turn()
	var lateReply []wsEvent
	for _, ev := range fromLate {
		if ev.Type != "message" {
			lateReply = append(lateReply, ev)
		}
	}
	if !slices.Equal(keysOf(lateReply), keysOf(fromSSE[1:])) {
		t.Fatalf("a stream joining mid-reply got\n%v\nwant the reply from its start\n%v", fromLate, fromSSE[1:])
	}
	if env.reply(t, sid, ack2.MessageID).Content != strings.Join(toks, "") {
		t.Fatal("stored reply differs")
	}
}

// TestSSEStreamErrors: identity and ownership as everywhere else.
func TestSSEStreamErrors(t *testing.T) {
	env := newUpstreamServer(t, nil)
	user := uuid.NewString()
	env.up.Enqueue(llmtest.Response{Tokens: tokenList(2, "mine")})
	a := dialWS(t, env, user)
	ack := a.chat(chatFrame{Text: "mine"})
	a.turn(ack.SessionID)
	cases := []struct {
		name, session, user string
		status              int
		code                string
	}{
		{"stranger", ack.SessionID, uuid.NewString(), 404, "session_not_found"},
		{"unknown session", uuid.NewString(), user, 404, "session_not_found"},
		{"no identity", ack.SessionID, "", 401, "identity_required"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, cancel := streamRequest(t, env, env.ts.Client(), tc.session, tc.user, "", "")
			defer cancel()
			var body struct{ Error struct{ Code string } }
			_ = json.NewDecoder(resp.Body).Decode(&body)
			if resp.StatusCode != tc.status || body.Error.Code != tc.code {
				t.Fatalf("%d %q, want %d %s", resp.StatusCode, body.Error.Code, tc.status, tc.code)
			}
		})
	}
}

// TestSSESlowConsumerResumes: a follow stream that stops reading is ended
// (with a closing notice that carries no id) once its queue fills; it
// resumes with Last-Event-ID, while a WebSocket follower got everything.
func TestSSESlowConsumerResumes(t *testing.T) {
	env := newEnv(t, envOpts{transport: func(c *Config) { c.QueueSize = 8 }, sendBuffer: 8 << 10})
	user := uuid.NewString()
	big := strings.Repeat("y", 2<<10)
	toks := make([]string, 200)
	for i := range toks {
		toks[i] = fmt.Sprintf("%03d", i) + big
	}
	h := newHold(t)
	env.up.Enqueue(llmtest.Response{Tokens: toks, Delay: time.Millisecond, Hold: h.ch, HoldAt: 0})
	good := dialWS(t, env, user)
	ack := good.chat(chatFrame{Text: "a long answer for a slow reader"})
	sid := ack.SessionID
	slow := openStreamWith(t, env, slowDialClient(t), false, sid, user, fmt.Sprintf("?after_seq=%d", ack.Seq), "")
	h.release()
	whole := good.turn(sid)[1:] // without the message event
	checkReplyShape(t, sid, whole)

	got, err := slow.readToEOF()
	if err != nil {
		t.Fatalf("slow stream: %v", err)
	}
	n := len(got)
	if n < 2 || got[n-2].Type != "error" || got[n-2].Error == nil || got[n-2].Error.Code != "slow_consumer" ||
		got[n-1].Type != "done" || got[n-2].Seq != 0 || got[n-1].Seq != 0 {
		t.Fatalf("slow stream ended with %v, want an error (slow_consumer) and done without ids", got[max(0, n-3):])
	}
	prefix := got[:n-2]
	if len(prefix) >= len(whole) || !slices.Equal(keysOf(prefix), keysOf(whole)[:len(prefix)]) {
		t.Fatalf("the slow stream got %d events, not a strict prefix of the %d of the reply", len(prefix), len(whole))
	}
	last := prefixLast(prefix, ack.Seq)
	// Reconnect like EventSource: after the last id seen, again whenever the
	// stream ends early, until the reply's done.
	var rest []wsEvent
	for reconnects := 0; ; reconnects++ {
		if reconnects > len(whole) {
			t.Fatalf("no progress after %d reconnects", reconnects)
		}
		evs, err := openStream(t, env, sid, user, "", strconv.FormatInt(last, 10)).readToDone()
		if err != nil {
			t.Fatalf("resumed stream: %v", err)
		}
		for _, ev := range evs {
			if ev.Seq != 0 {
				rest = append(rest, ev)
				last = ev.Seq
			}
		}
		if n := len(rest); n > 0 && rest[n-1].Type == "done" {
			if reconnects > 0 {
				t.Logf("resumed with %d extra reconnects (each catch-up is larger than the queue)", reconnects)
			}
			break
		}
	}
	if want := afterSeq(whole, prefixLast(prefix, ack.Seq)); !slices.Equal(keysOf(rest), keysOf(want)) {
		t.Fatalf("resumed: %d events, want %d", len(rest), len(want))
	}
	if textOf(prefix)+textOf(rest) != env.reply(t, sid, ack.MessageID).Content {
		t.Fatal("reconstructed reply differs from the stored one")
	}
}

func prefixLast(evs []wsEvent, def int64) int64 {
	if len(evs) == 0 {
		return def
	}
	return evs[len(evs)-1].Seq
}

// TestResumeBacklogLongerThanQueue: a resume whose missed events (all still
// in memory) outnumber the outbound queue must still deliver them all, on
// one socket or stream, as the protocol promises ("exactly the events it
// missed, then live").
func TestResumeBacklogLongerThanQueue(t *testing.T) {
	env := newUpstreamServer(t, func(c *Config) { c.QueueSize = 16 })
	user := uuid.NewString()
	toks := tokenList(60, "backlog")
	// Paced, so that the live follower keeps up with its small queue.
	env.up.Enqueue(llmtest.Response{Tokens: toks, Delay: time.Millisecond})
	a := dialWS(t, env, user)
	ack := a.chat(chatFrame{Text: "a reply longer than the queue"})
	sid := ack.SessionID
	whole := a.turn(sid)[1:]
	t.Run("websocket", func(t *testing.T) {
		b := dialWS(t, env, user)
		b.subscribe(sid, ptr(ack.Seq))
		got, err := b.readToDone()
		if err != nil {
			code, reason := closeStatus(err)
			t.Fatalf("socket closed (%d %q) after %d of %d events of a resume", code, reason, len(got), len(whole))
		}
		if !slices.Equal(keysOf(got), keysOf(whole)) {
			t.Fatalf("resume got %d events, want %d", len(got), len(whole))
		}
	})
	t.Run("sse", func(t *testing.T) {
		got, err := openStream(t, env, sid, user, "", strconv.FormatInt(ack.Seq, 10)).readToDone()
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(keysOf(got), keysOf(whole)) {
			t.Fatalf("resume got %d events (the last %v), want %d", len(got), lastOf(got), len(whole))
		}
	})
}

func postCancel(t *testing.T, env *itEnv, sessionID, userID string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, env.ts.URL+"/api/v1/sessions/"+sessionID+"/cancel", nil)
	if err != nil {
		t.Fatal(err)
	}
	if userID != "" {
		req.Header.Set("X-User-ID", userID)
	}
	resp, err := env.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("cancel answered %d with a body that is not JSON: %v", resp.StatusCode, err)
	}
	return resp.StatusCode, body
}

// TestHTTPCancel: POST …/cancel stops the reply in flight like the cancel
// frame; with nothing generating it says so; it is the owner's only.
func TestHTTPCancel(t *testing.T) {
	env := newUpstreamServer(t, nil)
	user := uuid.NewString()
	toks := tokenList(10, "stop")
	h := newHold(t)
	env.up.Enqueue(llmtest.Response{Tokens: toks, Hold: h.ch, HoldAt: 3})
	a := dialWS(t, env, user)
	ack := a.chat(chatFrame{Text: "cancel me over HTTP"})
	sid := ack.SessionID
	s := openStream(t, env, sid, user, fmt.Sprintf("?after_seq=%d", ack.Seq), "")
	var head []wsEvent
	for len(head) < 4 { // message and three texts; then held
		head = append(head, a.next())
	}

	if status, body := postCancel(t, env, sid, uuid.NewString()); status != 404 {
		t.Fatalf("a stranger cancels: %d %v", status, body)
	}
	if status, _ := postCancel(t, env, uuid.NewString(), user); status != 404 {
		t.Fatalf("cancel of an unknown session: %d", status)
	}
	status, body := postCancel(t, env, sid, user)
	if status != 200 || body["cancelled"] != true || body["session_id"] != sid {
		t.Fatalf("cancel: %d %v", status, body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wsWait)
	defer cancel()
	if err := env.up.WaitClientGone(ctx); err != nil {
		t.Fatalf("the upstream request was not closed: %v", err)
	}
	fromWS := append(head[1:], a.turn(sid)...)
	fromSSE := s.turn()
	want := strings.Join(toks[:3], "")
	for name, evs := range map[string][]wsEvent{"websocket": fromWS, "sse": fromSSE} {
		var reply []wsEvent
		for _, ev := range evs {
			if ev.Type != "error" {
				reply = append(reply, ev)
			}
		}
		meta := checkReplyShape(t, sid, reply)
		if meta.Status != "cancelled" || textOf(reply) != want {
			t.Fatalf("%s: status %s text %q, want cancelled %q", name, meta.Status, textOf(reply), want)
		}
	}
	if !slices.Equal(keysOf(fromWS), keysOf(fromSSE)) {
		t.Fatalf("followers differ:\n%v\n%v", fromWS, fromSSE)
	}
	stored := env.reply(t, sid, ack.MessageID)
	if stored.Status != persistence.StatusCancelled || stored.Content != want {
		t.Fatalf("stored %s %q", stored.Status, stored.Content)
	}

	// Nothing is generating now.
	status, body = postCancel(t, env, sid, user)
	if status != 200 || body["cancelled"] != false || body["session_id"] != sid {
		t.Fatalf("cancel with nothing generating: %d %v", status, body)
	}
	if status, body := postCancel(t, env, sid, ""); status != 401 {
		t.Fatalf("cancel without identity: %d %v", status, body)
	}

	// The session goes on: the next chat is answered normally.
	env.up.Enqueue(llmtest.Response{Tokens: tokenList(2, "after")})
	ack2 := a.chat(chatFrame{Text: "again", SessionID: sid})
	evs := a.turn(sid)
	if meta := checkReplyShape(t, sid, evs[1:]); meta.Status != "complete" {
		t.Fatalf("after a cancel: %v", evs)
	}
	if env.reply(t, sid, ack2.MessageID).Status != persistence.StatusComplete {
		t.Fatal("the next reply is not stored complete")
	}
}
