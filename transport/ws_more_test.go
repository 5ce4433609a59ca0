package transport

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/storyd/storyd/actors"
	"github.com/storyd/storyd/llm/llmtest"
)

// TestWSSeveralSessionsOnOneSocket runs two replies at once over one socket:
// each session's events form its own complete reply.
func TestWSSeveralSessionsOnOneSocket(t *testing.T) {
	env := newUpstreamServer(t, nil)
	user := uuid.NewString()
	toksA, toksB := tokenList(10, "a"), tokenList(10, "b")
	h := newHold(t)
	env.up.Enqueue(llmtest.Response{Tokens: toksA, Hold: h.ch, HoldAt: 2}, llmtest.Response{Tokens: toksB})
	c := dialWS(t, env, user)
	ackA := c.chat(chatFrame{Text: "story A"})
	// A's upstream request is in flight (its first text arrived) before B's.
	var evsA, evsB []wsEvent
	for _, ev := range c.until("text", ackA.SessionID) {
		if ev.SessionID == ackA.SessionID {
			evsA = append(evsA, ev)
		}
	}
	c.send(chatFrame{Type: "chat", Text: "story B"})
	var ackB wsEvent
	for doneB := false; !doneB; {
		ev := c.next()
		switch {
		case ev.SessionID == ackA.SessionID:
			evsA = append(evsA, ev)
		case ev.Type == "ack":
			ackB = ev
		default:
			evsB = append(evsB, ev)
			doneB = ev.Type == "done"
		}
	}
	if ackB.SessionID == "" || ackB.SessionID == ackA.SessionID || textOf(evsB) != strings.Join(toksB, "") {
		t.Fatalf("session B on the shared socket: ack %v, text %q", ackB, textOf(evsB))
	}
	for _, ev := range evsB {
		if ev.SessionID != ackB.SessionID {
			t.Fatalf("event of another session among B's: %v", ev)
		}
	}
	h.release()
	evsA = append(evsA, c.turn(ackA.SessionID)...)
	if got := textOf(evsA); got != strings.Join(toksA, "") {
		t.Fatalf("session A on the shared socket: %q", got)
	}
	for _, ack := range []wsEvent{ackA, ackB} {
		if r := env.waitReply(t, ack.SessionID, ack.MessageID); !strings.HasPrefix(r.Content, map[string]string{ackA.SessionID: "a-00", ackB.SessionID: "b-00"}[ack.SessionID]) {
			t.Fatalf("stored reply of %s: %q", ack.SessionID, r.Content)
		}
	}
}

// unsubscribeSpy reports every Unsubscribe the transport makes.
type unsubscribeSpy struct {
	Sessions
	unsubscribed chan string
}

func (s unsubscribeSpy) Unsubscribe(sessionID string, sub actors.Subscriber) {
	s.Sessions.Unsubscribe(sessionID, sub)
	select {
	case s.unsubscribed <- sessionID:
	default:
	}
}

// TestWSDeadPeerIsDetected: a client that stops answering pings (it never
// reads, so it never sends a pong) is disconnected by the heartbeat, which
// releases its subscriptions.
func TestWSDeadPeerIsDetected(t *testing.T) {
	spy := unsubscribeSpy{unsubscribed: make(chan string, 16)}
	env := newUpstreamServer(t, func(c *Config) {
		spy.Sessions = c.Sessions
		c.Sessions = spy
		c.PingInterval = 30 * time.Millisecond
		// Long enough for the healthy socket to answer on a loaded machine
		// (-race, two cores, a browser test beside it); the silent one is
		// still dropped within a second.
		c.PingTimeout = time.Second
	})
	user := uuid.NewString()
	live := dialWS(t, env, user)
	ack := live.chat(chatFrame{Text: "hello"})
	live.turn(ack.SessionID)

	dead := dialWSWith(t, env, dialOpts{query: "user_id=" + user, noPump: true})
	dead.subscribe(ack.SessionID, nil)
	timeout := time.After(wsWait)
	for {
		select {
		case id := <-spy.unsubscribed:
			if id == ack.SessionID {
				// The healthy socket, which reads, is still served.
				live.pingPong()
				return
			}
		case <-timeout:
			t.Fatal("the silent peer was never disconnected")
		}
	}
}

// TestWSHeartbeatKeepsReadersConnected: a client that reads (and so answers
// pings) stays connected across many heartbeats.
func TestWSHeartbeatKeepsReadersConnected(t *testing.T) {
	env := newUpstreamServer(t, func(c *Config) {
		c.PingInterval = 10 * time.Millisecond
		c.PingTimeout = 200 * time.Millisecond
	})
	c := dialWS(t, env, uuid.NewString())
	ctx, cancel := context.WithTimeout(context.Background(), wsWait)
	defer cancel()
	// Twenty ping/pong round trips of our own span many server heartbeats.
	for i := 0; i < 20 && ctx.Err() == nil; i++ {
		c.pingPong()
	}
}
