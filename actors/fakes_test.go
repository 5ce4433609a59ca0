package actors

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/storyd/storyd/llm"
	"github.com/storyd/storyd/persistence"
)

// reply scripts one model answer.
type reply struct {
	tokens []string
	// err is returned after the tokens.
	err error
	// gate, when set, is waited on after the first token (or before any, if
	// tokens is empty) so a test can act while the reply is in flight.
	gate chan struct{}
}

// fakeModel is a scripted ChatModel: the n-th call plays replies[n] (or a
// default reply) and records the prompt it got.
type fakeModel struct {
	mu      sync.Mutex
	replies []reply
	prompts [][]llm.Message
	started chan int // receives the call index when a call starts
}

func newFakeModel(replies ...reply) *fakeModel {
	return &fakeModel{replies: replies, started: make(chan int, 64)}
}

// calls counts the calls so far.
func (m *fakeModel) calls() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.prompts)
}

func (m *fakeModel) StreamChat(ctx context.Context, msgs []llm.Message, emit func(string) error) error {
	m.mu.Lock()
	n := len(m.prompts)
	m.prompts = append(m.prompts, append([]llm.Message(nil), msgs...))
	r := reply{tokens: []string{"Tell ", "me ", "more."}}
	if n < len(m.replies) {
		r = m.replies[n]
	}
	m.mu.Unlock()
	m.started <- n
	for i, tok := range r.tokens {
		if i == 1 && r.gate != nil {
			if err := wait(ctx, r.gate); err != nil {
				return err
			}
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := emit(tok); err != nil {
			return err
		}
	}
	if len(r.tokens) <= 1 && r.gate != nil {
		if err := wait(ctx, r.gate); err != nil {
			return err
		}
	}
	return r.err
}

func wait(ctx context.Context, gate chan struct{}) error {
	select {
	case <-gate:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (m *fakeModel) prompt(i int) []llm.Message {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.prompts[i]
}

// recorder is a Subscriber that keeps every event in a channel.
type recorder struct {
	events  chan Event
	dropped chan error
	full    bool
}

func newRecorder() *recorder {
	return &recorder{events: make(chan Event, 1000), dropped: make(chan error, 1)}
}

func (r *recorder) Deliver(ev Event) bool {
	if r.full {
		return false
	}
	select {
	case r.events <- ev:
		return true
	default:
		return false
	}
}

func (r *recorder) DeliverBatch(evs []Event) bool {
	if r.full {
		return false
	}
	for _, ev := range evs {
		if !r.Deliver(ev) {
			return false
		}
	}
	return true
}

func (r *recorder) Drop(err error) { r.dropped <- err }

// untilDone collects events until a done event, failing after a deadline.
func (r *recorder) untilDone(t *testing.T) []Event {
	t.Helper()
	var evs []Event
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev := <-r.events:
			evs = append(evs, ev)
			if ev.Type == EventDone {
				return evs
			}
		case <-timeout:
			t.Fatalf("no done event; got %+v", evs)
		}
	}
}

// skipAck reads the next event, which must be the chat's ack.
func (r *recorder) skipAck(t *testing.T) {
	t.Helper()
	if ev := r.next(t); ev.Type != EventAck || ev.Ack == nil {
		t.Fatalf("first event %+v, want ack", ev)
	}
}

// next returns the next event, failing after a deadline.
func (r *recorder) next(t *testing.T) Event {
	t.Helper()
	select {
	case ev := <-r.events:
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no event")
		return Event{}
	}
}

// flakyStore wraps a store and fails the calls a test chooses.
type flakyStore struct {
	Store
	mu         sync.Mutex
	failAppend func(m persistence.Message) bool
	failLoads  int // GetSession calls to fail
}

func (f *flakyStore) GetSession(ctx context.Context, id string) (persistence.Session, error) {
	f.mu.Lock()
	fail := f.failLoads > 0
	if fail {
		f.failLoads--
	}
	f.mu.Unlock()
	if fail {
		return persistence.Session{}, errors.New("connection refused")
	}
	return f.Store.GetSession(ctx, id)
}

func (f *flakyStore) AppendMessage(ctx context.Context, m persistence.Message) (persistence.Message, bool, error) {
	f.mu.Lock()
	fail := f.failAppend != nil && f.failAppend(m)
	f.mu.Unlock()
	if fail {
		return persistence.Message{}, false, errors.New("disk on fire")
	}
	return f.Store.AppendMessage(ctx, m)
}

// newTestSessions starts Sessions over a fresh SQLite store.
func newTestSessions(t *testing.T, model ChatModel, tweak func(*Config)) (*Sessions, *persistence.SQLite) {
	return newBenchSessions(t, model, tweak)
}

// newBenchSessions is newTestSessions for tests and benchmarks alike.
func newBenchSessions(t testing.TB, model ChatModel, tweaks ...func(*Config)) (*Sessions, *persistence.SQLite) {
	t.Helper()
	store := openTestStore(t) // closed after the Sessions stop: cleanups run last first
	s, _ := startSessions(t, store, model, func(c *Config) {
		for _, tweak := range tweaks {
			if tweak != nil {
				tweak(c)
			}
		}
	})
	return s, store
}

// eventually polls cond until it holds or a deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
