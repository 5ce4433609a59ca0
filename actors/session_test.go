package actors

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/google/uuid"
	"go.uber.org/goleak"

	"github.com/storyd/storyd/llm"
	"github.com/storyd/storyd/persistence"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// protoactor-go starts process-wide helpers that outlive a system.
		goleak.IgnoreAnyFunction("github.com/asynkron/protoactor-go/actor.NewDeadLetter.func1"),
		goleak.IgnoreAnyFunction("github.com/asynkron/protoactor-go/actor.NewDeadLetter.NewThrottle.func4.1"),
		goleak.IgnoreTopFunction("github.com/lithammer/shortuuid/v4.init"),
		goleak.IgnoreAnyFunction("database/sql.(*DB).connectionOpener"),
	)
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func text(evs []Event) string {
	var b strings.Builder
	for _, ev := range evs {
		if ev.Type == EventText {
			b.WriteString(ev.Content)
		}
	}
	return b.String()
}

func types(evs []Event) string {
	var out []string
	for _, ev := range evs {
		out = append(out, string(ev.Type))
	}
	return strings.Join(out, ",")
}

func assertIncreasing(t *testing.T, evs []Event) {
	t.Helper()
	for i := 1; i < len(evs); i++ {
		if evs[i].Seq <= evs[i-1].Seq {
			t.Fatalf("seqs not increasing at %d: %d then %d", i, evs[i-1].Seq, evs[i].Seq)
		}
	}
}

func TestChatStreamsAndStoresReply(t *testing.T) {
	model := newFakeModel(reply{tokens: []string{"Who ", "is ", "she?"}})
	s, store := newTestSessions(t, model, nil)
	user := uuid.NewString()
	rec := newRecorder()
	acc, err := s.Chat(ctx(t), ChatRequest{UserID: user, Anonymous: true, Text: "A film about my grandmother", Subscriber: rec})
	if err != nil {
		t.Fatal(err)
	}
	evs := rec.untilDone(t)
	if got := types(evs); got != "ack,text,text,text,metadata,done" {
		t.Fatalf("event types = %s", got)
	}
	if got := text(evs); got != "Who is she?" {
		t.Fatalf("text = %q", got)
	}
	assertIncreasing(t, evs)
	if evs[0].Ack == nil || evs[0].Seq != acc.Seq || evs[0].Ack.MessageID != acc.MessageID {
		t.Fatalf("ack %+v, accepted %+v", evs[0], acc)
	}
	if evs[1].Seq <= acc.Seq {
		t.Fatalf("reply seq %d not after user message seq %d", evs[1].Seq, acc.Seq)
	}
	meta := evs[4].Metadata
	if meta.SessionID != acc.SessionID || meta.ProjectID != acc.ProjectID || meta.Status != persistence.StatusComplete || meta.MessageID == "" {
		t.Fatalf("metadata = %+v, accepted = %+v", meta, acc)
	}
	if err := <-rec.dropped; err != nil {
		t.Fatalf("turn subscriber dropped with %v, want nil", err)
	}

	sess, err := store.GetSession(ctx(t), acc.SessionID)
	if err != nil {
		t.Fatal(err)
	}
	if sess.UserID != user || sess.Title != "A film about my grandmother" || sess.MessageCount != 2 {
		t.Fatalf("session = %+v", sess)
	}
	msgs, err := store.ListMessages(ctx(t), acc.SessionID, 10, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 2 || msgs[0].Role != "user" || msgs[1].Role != "assistant" {
		t.Fatalf("messages = %+v", msgs)
	}
	if msgs[1].Content != "Who is she?" || msgs[1].Status != persistence.StatusComplete || msgs[1].TurnID != msgs[0].ID {
		t.Fatalf("assistant message = %+v", msgs[1])
	}
	if msgs[1].Seq != evs[1].Seq || msgs[1].EndSeq != evs[len(evs)-1].Seq {
		t.Fatalf("assistant seqs %d..%d, events %d..%d", msgs[1].Seq, msgs[1].EndSeq, evs[1].Seq, evs[len(evs)-1].Seq)
	}
	if p := model.prompt(0); len(p) != 2 || p[0].Role != llm.RoleSystem || p[1].Content != "A film about my grandmother" {
		t.Fatalf("prompt = %+v", p)
	}
}

func TestChatIsIdempotentOnClientMessageID(t *testing.T) {
	model := newFakeModel()
	s, store := newTestSessions(t, model, nil)
	user := uuid.NewString()
	first := newRecorder()
	req := ChatRequest{UserID: user, Text: "hello", ClientMessageID: "c-1", Subscriber: first}
	acc1, err := s.Chat(ctx(t), req)
	if err != nil {
		t.Fatal(err)
	}
	want := text(first.untilDone(t))

	again := newRecorder()
	req.SessionID, req.Subscriber = acc1.SessionID, again
	acc2, err := s.Chat(ctx(t), req)
	if err != nil {
		t.Fatal(err)
	}
	if !acc2.Duplicate || acc2.MessageID != acc1.MessageID || acc2.Seq != acc1.Seq {
		t.Fatalf("retry accepted as %+v, first was %+v", acc2, acc1)
	}
	if got := text(again.untilDone(t)); got != want {
		t.Fatalf("replayed reply %q, want %q", got, want)
	}
	msgs, _ := store.ListMessages(ctx(t), acc1.SessionID, 10, 0)
	if len(msgs) != 2 {
		t.Fatalf("%d messages stored, want 2", len(msgs))
	}
	if n := len(model.prompts); n != 1 {
		t.Fatalf("model called %d times, want 1", n)
	}
}

func TestDuplicateAfterPassivationReplaysFromStore(t *testing.T) {
	s, _ := newTestSessions(t, newFakeModel(), func(c *Config) { c.IdleTimeout = 20 * time.Millisecond })
	user := uuid.NewString()
	first := newRecorder()
	acc, err := s.Chat(ctx(t), ChatRequest{UserID: user, Text: "hello", ClientMessageID: "x", Subscriber: first})
	if err != nil {
		t.Fatal(err)
	}
	first.untilDone(t)
	eventually(t, "passivation", func() bool { n, _ := s.Live(ctx(t)); return n == 0 })

	again := newRecorder()
	acc2, err := s.Chat(ctx(t), ChatRequest{UserID: user, SessionID: acc.SessionID, Text: "hello", ClientMessageID: "x", Subscriber: again})
	if err != nil {
		t.Fatal(err)
	}
	evs := again.untilDone(t)
	if !acc2.Duplicate || text(evs) != "Tell me more." || types(evs) != "ack,text,metadata,done" {
		t.Fatalf("accepted %+v, events %s %q", acc2, types(evs), text(evs))
	}
}

func TestSessionBelongsToItsUser(t *testing.T) {
	s, _ := newTestSessions(t, newFakeModel(), nil)
	owner := newRecorder()
	acc, err := s.Chat(ctx(t), ChatRequest{UserID: uuid.NewString(), Text: "mine", Subscriber: owner})
	if err != nil {
		t.Fatal(err)
	}
	owner.untilDone(t)
	_, err = s.Chat(ctx(t), ChatRequest{UserID: uuid.NewString(), SessionID: acc.SessionID, Text: "let me in"})
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("other user's chat: err = %v, want ErrNotFound", err)
	}
	_, err = s.Chat(ctx(t), ChatRequest{UserID: uuid.NewString(), ProjectID: acc.ProjectID, Text: "your project"})
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("chat into other user's project: err = %v, want ErrNotFound", err)
	}
}

func TestQueuedChatsAreAnsweredInOrder(t *testing.T) {
	gate := make(chan struct{})
	model := newFakeModel(
		reply{tokens: []string{"first ", "answer"}, gate: gate},
		reply{tokens: []string{"second ", "answer"}},
	)
	s, store := newTestSessions(t, model, nil)
	user := uuid.NewString()
	r1 := newRecorder()
	acc1, err := s.Chat(ctx(t), ChatRequest{UserID: user, Text: "one", Subscriber: r1})
	if err != nil {
		t.Fatal(err)
	}
	<-model.started
	r1.skipAck(t)
	if ev := r1.next(t); ev.Content != "first " {
		t.Fatalf("first event %+v", ev)
	}
	r2 := newRecorder()
	acc2, err := s.Chat(ctx(t), ChatRequest{UserID: user, SessionID: acc1.SessionID, Text: "two", Subscriber: r2})
	if err != nil {
		t.Fatal(err)
	}
	if acc2.Seq <= acc1.Seq {
		t.Fatalf("second message seq %d not after %d", acc2.Seq, acc1.Seq)
	}
	select {
	case <-model.started:
		t.Fatal("second generation started while the first was in flight")
	default:
	}
	close(gate)
	if got := text(r1.untilDone(t)); got != "answer" {
		t.Fatalf("rest of first reply %q", got)
	}
	evs2 := r2.untilDone(t)
	if got := text(evs2); got != "second answer" {
		t.Fatalf("second reply %q", got)
	}
	// The second prompt holds the whole first turn, in order.
	p := model.prompt(1)
	var got []string
	for _, m := range p[1:] {
		got = append(got, m.Role+":"+m.Content)
	}
	if strings.Join(got, "|") != "user:one|assistant:first answer|user:two" {
		t.Fatalf("second prompt %v", got)
	}
	msgs, _ := store.ListMessages(ctx(t), acc1.SessionID, 10, 0)
	var order []string
	for _, m := range msgs {
		order = append(order, m.Content)
	}
	if strings.Join(order, "|") != "one|first answer|two|second answer" {
		t.Fatalf("stored order %v", order)
	}
}

func TestUpstreamFailureStoresWhatArrived(t *testing.T) {
	cut := &llm.Error{Code: "upstream_stream_cut", Err: errors.New("EOF")}
	cases := []struct {
		name       string
		reply      reply
		wantStatus string
		wantText   string
		wantTypes  string
	}{
		{"mid-stream", reply{tokens: []string{"Half ", "a "}, err: cut}, persistence.StatusPartial, "Half a ", "ack,text,text,error,metadata,done"},
		{"before any token", reply{err: &llm.Error{Code: "upstream_unavailable", Status: 500}}, persistence.StatusFailed, "", "ack,error,metadata,done"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, store := newTestSessions(t, newFakeModel(tc.reply), nil)
			rec := newRecorder()
			acc, err := s.Chat(ctx(t), ChatRequest{UserID: uuid.NewString(), Text: "go", Subscriber: rec})
			if err != nil {
				t.Fatal(err)
			}
			evs := rec.untilDone(t)
			if got := types(evs); got != tc.wantTypes {
				t.Fatalf("types %s, want %s", got, tc.wantTypes)
			}
			assertIncreasing(t, evs)
			errEv := evs[len(evs)-3]
			if errEv.Err == nil || errEv.Err.Code == "" {
				t.Fatalf("error event %+v", errEv)
			}
			msgs, _ := store.ListMessages(ctx(t), acc.SessionID, 10, 0)
			if len(msgs) != 2 || msgs[1].Status != tc.wantStatus || msgs[1].Content != tc.wantText {
				t.Fatalf("stored %+v", msgs)
			}
		})
	}
}

func TestReplyOutlivesItsSubscriber(t *testing.T) {
	gate := make(chan struct{})
	model := newFakeModel(reply{tokens: []string{"still ", "here"}, gate: gate})
	s, store := newTestSessions(t, model, nil)
	rec := newRecorder()
	acc, err := s.Chat(ctx(t), ChatRequest{UserID: uuid.NewString(), Text: "hi", Subscriber: rec})
	if err != nil {
		t.Fatal(err)
	}
	rec.skipAck(t)
	rec.next(t)
	s.Unsubscribe(acc.SessionID, rec)
	if err := <-rec.dropped; err != nil {
		t.Fatalf("unsubscribe dropped with %v", err)
	}
	close(gate)
	eventually(t, "reply stored", func() bool {
		msgs, _ := store.ListMessages(ctx(t), acc.SessionID, 10, 0)
		return len(msgs) == 2 && msgs[1].Content == "still here" && msgs[1].Status == persistence.StatusComplete
	})
}

func TestSlowSubscriberIsDropped(t *testing.T) {
	s, _ := newTestSessions(t, newFakeModel(), nil)
	rec := newRecorder()
	rec.full = true
	if _, err := s.Chat(ctx(t), ChatRequest{UserID: uuid.NewString(), Text: "hi", Subscriber: rec}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-rec.dropped:
		if !errors.Is(err, ErrSlowSubscriber) {
			t.Fatalf("dropped with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("slow subscriber not dropped")
	}
}

func TestPassivationAndReactivation(t *testing.T) {
	model := newFakeModel(reply{tokens: []string{"A"}}, reply{tokens: []string{"B"}})
	s, _ := newTestSessions(t, model, func(c *Config) { c.IdleTimeout = 20 * time.Millisecond })
	user := uuid.NewString()
	r1 := newRecorder()
	acc, err := s.Chat(ctx(t), ChatRequest{UserID: user, Text: "first", Subscriber: r1})
	if err != nil {
		t.Fatal(err)
	}
	evs1 := r1.untilDone(t)
	eventually(t, "passivation", func() bool { n, _ := s.Live(ctx(t)); return n == 0 })

	r2 := newRecorder()
	acc2, err := s.Chat(ctx(t), ChatRequest{UserID: user, SessionID: acc.SessionID, Text: "second", Subscriber: r2})
	if err != nil {
		t.Fatal(err)
	}
	evs2 := r2.untilDone(t)
	if acc2.Seq <= evs1[len(evs1)-1].Seq || evs2[1].Seq <= acc2.Seq {
		t.Fatalf("seqs restarted: first turn ended at %d, second message %d, reply %d", evs1[len(evs1)-1].Seq, acc2.Seq, evs2[1].Seq)
	}
	var got []string
	for _, m := range model.prompt(1)[1:] {
		got = append(got, m.Content)
	}
	if strings.Join(got, "|") != "first|A|second" {
		t.Fatalf("reactivated prompt %v", got)
	}
}

func TestContextWindowKeepsTheMostRecentMessages(t *testing.T) {
	model := newFakeModel()
	s, _ := newTestSessions(t, model, func(c *Config) { c.ContextTokens = 60 })
	user := uuid.NewString()
	var sessionID string
	for i := 0; i < 6; i++ {
		rec := newRecorder()
		acc, err := s.Chat(ctx(t), ChatRequest{UserID: user, SessionID: sessionID, Text: strings.Repeat("word ", 20) + string(rune('a'+i)), Subscriber: rec})
		if err != nil {
			t.Fatal(err)
		}
		sessionID = acc.SessionID
		rec.untilDone(t)
	}
	p := model.prompt(5)
	last := p[len(p)-1].Content
	if !strings.HasSuffix(last, "f") {
		t.Fatalf("last prompt message %q is not the newest", last)
	}
	if len(p) >= 12 {
		t.Fatalf("prompt has %d messages: the window was not trimmed", len(p))
	}
	for _, m := range p[1:] {
		if strings.HasSuffix(m.Content, "a") {
			t.Fatal("oldest message kept while newer ones were dropped")
		}
	}
}

func TestStoreFailureRefusesTheMessage(t *testing.T) {
	model := newFakeModel()
	var flaky *flakyStore
	s, _ := newTestSessions(t, model, func(c *Config) {
		flaky = &flakyStore{Store: c.Store, failAppend: func(m persistence.Message) bool { return m.Role == persistence.RoleUser }}
		c.Store = flaky
	})
	_, err := s.Chat(ctx(t), ChatRequest{UserID: uuid.NewString(), Text: "hi"})
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	if n := len(model.prompts); n != 0 {
		t.Fatalf("model called %d times for an unstored message", n)
	}
}

func TestShutdownStoresTheReplyInFlight(t *testing.T) {
	gate := make(chan struct{}) // never opened: only shutdown ends this reply
	model := newFakeModel(reply{tokens: []string{"cut ", "short"}, gate: gate})
	s, store := newTestSessions(t, model, nil)
	rec := newRecorder()
	acc, err := s.Chat(ctx(t), ChatRequest{UserID: uuid.NewString(), Text: "hi", Subscriber: rec})
	if err != nil {
		t.Fatal(err)
	}
	rec.skipAck(t)
	rec.next(t)
	sctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	_ = s.Shutdown(sctx)
	evs := rec.untilDone(t)
	if types(evs) != "error,metadata,done" || evs[0].Err.Code != "server_shutdown" {
		t.Fatalf("events after shutdown: %s %+v", types(evs), evs)
	}
	msgs, err := store.ListMessages(ctx(t), acc.SessionID, 10, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 2 || msgs[1].Content != "cut " || msgs[1].Status != persistence.StatusPartial {
		t.Fatalf("stored %+v", msgs)
	}
	if _, err := s.Chat(ctx(t), ChatRequest{UserID: uuid.NewString(), Text: "late"}); !errors.Is(err, ErrShuttingDown) {
		t.Fatalf("chat after shutdown: %v", err)
	}
}

func int64p(n int64) *int64 { return &n }

func TestSubscribeResumesExactly(t *testing.T) {
	s, store := newTestSessions(t, newFakeModel(reply{tokens: []string{"a ", "b ", "c ", "d"}}), nil)
	user := uuid.NewString()
	sender := newRecorder()
	acc, err := s.Chat(ctx(t), ChatRequest{UserID: user, Text: "hi", Subscriber: sender})
	if err != nil {
		t.Fatal(err)
	}
	all := sender.untilDone(t)[1:] // without the ack
	msgs, _ := store.ListMessages(ctx(t), acc.SessionID, 10, 0)
	for cut := 0; cut < len(all); cut++ {
		rec := newRecorder()
		after := all[cut].Seq
		if err := s.Subscribe(ctx(t), SubscribeRequest{UserID: user, SessionID: acc.SessionID, AfterSeq: int64p(after), Subscriber: rec}); err != nil {
			t.Fatal(err)
		}
		want := all[cut+1:]
		for i, w := range want {
			got := rec.next(t)
			if got.Seq != w.Seq || got.Type != w.Type || got.Content != w.Content {
				t.Fatalf("after %d, event %d = %+v, want %+v", after, i, got, w)
			}
		}
		s.Unsubscribe(acc.SessionID, rec)
	}
	if text(all) != msgs[1].Content {
		t.Fatalf("streamed %q, stored %q", text(all), msgs[1].Content)
	}
}

func TestSubscribeErrors(t *testing.T) {
	s, _ := newTestSessions(t, newFakeModel(), nil)
	user := uuid.NewString()
	rec := newRecorder()
	acc, err := s.Chat(ctx(t), ChatRequest{UserID: user, Text: "hi", Subscriber: rec})
	if err != nil {
		t.Fatal(err)
	}
	last := rec.untilDone(t)
	cases := []struct {
		name string
		req  SubscribeRequest
		want error
	}{
		{"future seq", SubscribeRequest{UserID: user, SessionID: acc.SessionID, AfterSeq: int64p(last[len(last)-1].Seq + 1)}, ErrInvalidAfterSeq},
		{"negative seq", SubscribeRequest{UserID: user, SessionID: acc.SessionID, AfterSeq: int64p(-1)}, ErrInvalidAfterSeq},
		{"other user", SubscribeRequest{UserID: uuid.NewString(), SessionID: acc.SessionID}, ErrNotFound},
		{"no such session", SubscribeRequest{UserID: user, SessionID: uuid.NewString()}, ErrNotFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.req.Subscriber = newRecorder()
			if err := s.Subscribe(ctx(t), tc.req); !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestResumeAfterPassivationUsesTheStore(t *testing.T) {
	s, _ := newTestSessions(t, newFakeModel(reply{tokens: []string{"one ", "two"}}, reply{tokens: []string{"three"}}),
		func(c *Config) { c.IdleTimeout = 20 * time.Millisecond })
	user := uuid.NewString()
	r1 := newRecorder()
	acc, err := s.Chat(ctx(t), ChatRequest{UserID: user, Text: "first", Subscriber: r1})
	if err != nil {
		t.Fatal(err)
	}
	first := r1.untilDone(t)
	r2 := newRecorder()
	if _, err := s.Chat(ctx(t), ChatRequest{UserID: user, SessionID: acc.SessionID, Text: "second", Subscriber: r2}); err != nil {
		t.Fatal(err)
	}
	r2.untilDone(t)
	eventually(t, "passivation", func() bool { n, _ := s.Live(ctx(t)); return n == 0 })

	// Between two stored messages: rebuilt from the store.
	rec := newRecorder()
	if err := s.Subscribe(ctx(t), SubscribeRequest{UserID: user, SessionID: acc.SessionID, AfterSeq: int64p(first[len(first)-1].Seq), Subscriber: rec}); err != nil {
		t.Fatal(err)
	}
	if got := types([]Event{rec.next(t), rec.next(t), rec.next(t), rec.next(t)}); got != "message,text,metadata,done" {
		t.Fatalf("rebuilt events %s", got)
	}
	s.Unsubscribe(acc.SessionID, rec)

	// Inside a reply that is no longer in memory: reset.
	eventually(t, "passivation", func() bool { n, _ := s.Live(ctx(t)); return n == 0 })
	rec = newRecorder()
	if err := s.Subscribe(ctx(t), SubscribeRequest{UserID: user, SessionID: acc.SessionID, AfterSeq: int64p(first[1].Seq), Subscriber: rec}); err != nil {
		t.Fatal(err)
	}
	if ev := rec.next(t); ev.Type != EventReset {
		t.Fatalf("got %+v, want reset", ev)
	}
}

func TestCancelStopsTheReply(t *testing.T) {
	gate := make(chan struct{})
	defer close(gate)
	model := newFakeModel(reply{tokens: []string{"partial ", "never"}, gate: gate})
	s, store := newTestSessions(t, model, nil)
	user := uuid.NewString()
	sender := newRecorder()
	acc, err := s.Chat(ctx(t), ChatRequest{UserID: user, Text: "hi", Subscriber: sender})
	if err != nil {
		t.Fatal(err)
	}
	follower := newRecorder()
	if err := s.Subscribe(ctx(t), SubscribeRequest{UserID: user, SessionID: acc.SessionID, Subscriber: follower}); err != nil {
		t.Fatal(err)
	}
	sender.skipAck(t)
	sender.next(t) // "partial "
	if ok, err := s.Cancel(ctx(t), uuid.NewString(), acc.SessionID); !errors.Is(err, ErrNotFound) || ok {
		t.Fatalf("stranger's cancel: %v %v", ok, err)
	}
	if ok, err := s.Cancel(ctx(t), user, acc.SessionID); err != nil || !ok {
		t.Fatalf("cancel: %v %v", ok, err)
	}
	for _, r := range []*recorder{sender, follower} {
		evs := r.untilDone(t)
		meta := evs[len(evs)-2]
		if meta.Type != EventMetadata || meta.Metadata.Status != persistence.StatusCancelled {
			t.Fatalf("events %s %+v", types(evs), meta)
		}
	}
	msgs, _ := store.ListMessages(ctx(t), acc.SessionID, 10, 0)
	if len(msgs) != 2 || msgs[1].Status != persistence.StatusCancelled || msgs[1].Content != "partial " {
		t.Fatalf("stored %+v", msgs)
	}
	if ok, err := s.Cancel(ctx(t), user, acc.SessionID); err != nil || ok {
		t.Fatalf("cancel with nothing in flight: %v %v", ok, err)
	}
}

func TestFollowerDoesNotPinTheActorForever(t *testing.T) {
	s, _ := newTestSessions(t, newFakeModel(), func(c *Config) { c.IdleTimeout = 20 * time.Millisecond })
	user := uuid.NewString()
	rec := newRecorder()
	acc, err := s.Chat(ctx(t), ChatRequest{UserID: user, Text: "hi", Subscriber: rec, Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	rec.untilDone(t)
	// Several idle timeouts pass while the follower holds the actor.
	deadline := time.Now().Add(100 * time.Millisecond)
	for time.Now().Before(deadline) {
		if n, _ := s.Live(ctx(t)); n != 1 {
			t.Fatal("actor passivated while followed")
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.Unsubscribe(acc.SessionID, rec)
	eventually(t, "passivation after the follower left", func() bool { n, _ := s.Live(ctx(t)); return n == 0 })
}

func TestSeqsAreNeverReusedAfterUnstoredEvents(t *testing.T) {
	var flaky *flakyStore
	s, _ := newTestSessions(t, newFakeModel(reply{tokens: []string{"lost ", "reply"}}),
		func(c *Config) {
			flaky = &flakyStore{Store: c.Store, failAppend: func(m persistence.Message) bool { return m.Role == persistence.RoleAssistant }}
			c.Store = flaky
			c.IdleTimeout = 20 * time.Millisecond
		})
	user := uuid.NewString()
	rec := newRecorder()
	acc, err := s.Chat(ctx(t), ChatRequest{UserID: user, Text: "hi", Subscriber: rec})
	if err != nil {
		t.Fatal(err)
	}
	evs := rec.untilDone(t) // published, but the reply was never stored
	seen := evs[len(evs)-1].Seq
	flaky.mu.Lock()
	flaky.failAppend = nil
	flaky.mu.Unlock()
	eventually(t, "passivation", func() bool { n, _ := s.Live(ctx(t)); return n == 0 })

	// A client that saw those events cannot be caught up: reset, not silence.
	follower := newRecorder()
	if err := s.Subscribe(ctx(t), SubscribeRequest{UserID: user, SessionID: acc.SessionID, AfterSeq: int64p(seen), Subscriber: follower}); err != nil {
		t.Fatal(err)
	}
	if ev := follower.next(t); ev.Type != EventReset {
		t.Fatalf("got %+v, want reset", ev)
	}
	r2 := newRecorder()
	acc2, err := s.Chat(ctx(t), ChatRequest{UserID: user, SessionID: acc.SessionID, Text: "again", Subscriber: r2})
	if err != nil {
		t.Fatal(err)
	}
	if acc2.Seq <= seen {
		t.Fatalf("new message seq %d reuses a published seq (≤ %d)", acc2.Seq, seen)
	}
	r2.untilDone(t)
}

func TestLoadFailureIsRetriedByTheNextCommand(t *testing.T) {
	var flaky *flakyStore
	s, _ := newTestSessions(t, newFakeModel(), func(c *Config) {
		flaky = &flakyStore{Store: c.Store}
		c.Store = flaky
	})
	user := uuid.NewString()
	rec := newRecorder()
	acc, err := s.Chat(ctx(t), ChatRequest{UserID: user, Text: "hi", Subscriber: rec})
	if err != nil {
		t.Fatal(err)
	}
	rec.untilDone(t)
	if err := s.Shutdown(ctx(t)); err != nil {
		t.Fatal(err)
	}
	// A fresh Sessions over the same store, whose first load fails.
	s2, err := NewSessions(actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.DiscardHandler)
	})), Config{Store: flaky, Model: newFakeModel()})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Shutdown(context.Background())
	flaky.mu.Lock()
	flaky.failLoads = 1
	flaky.mu.Unlock()
	// The chat waits for the load: when the load fails first, the chat
	// fails with it; when the load had already failed as the chat came in,
	// the chat loads again (and goes through). Either way no hang.
	if _, err := s2.Chat(ctx(t), ChatRequest{UserID: user, SessionID: acc.SessionID, Text: "one"}); err != nil && !errors.Is(err, ErrUnavailable) {
		t.Fatalf("chat while the store fails: %v", err)
	}
	flaky.mu.Lock()
	if flaky.failLoads != 0 {
		t.Fatalf("the failing load never ran")
	}
	flaky.mu.Unlock()
	r2 := newRecorder()
	if _, err := s2.Chat(ctx(t), ChatRequest{UserID: user, SessionID: acc.SessionID, Text: "two", Subscriber: r2}); err != nil {
		t.Fatalf("chat after the store recovered: %v", err)
	}
	r2.untilDone(t)
}

func TestRetryOfAFirstMessageFindsItsSession(t *testing.T) {
	model := newFakeModel()
	s, store := newTestSessions(t, model, nil)
	user := uuid.NewString()
	r1 := newRecorder()
	acc1, err := s.Chat(ctx(t), ChatRequest{UserID: user, Text: "hello", ClientMessageID: "first", Subscriber: r1})
	if err != nil {
		t.Fatal(err)
	}
	r1.untilDone(t)
	// The client never saw the answer (no session id) and retries.
	r2 := newRecorder()
	acc2, err := s.Chat(ctx(t), ChatRequest{UserID: user, Text: "hello", ClientMessageID: "first", Subscriber: r2})
	if err != nil {
		t.Fatal(err)
	}
	r2.untilDone(t)
	if acc2.SessionID != acc1.SessionID || !acc2.Duplicate {
		t.Fatalf("retry: %+v, first %+v", acc2, acc1)
	}
	if msgs, _ := store.ListMessages(ctx(t), acc1.SessionID, 10, 0); len(msgs) != 2 || len(model.prompts) != 1 {
		t.Fatalf("%d messages, %d model calls", len(msgs), len(model.prompts))
	}
	// Another user's identical client_message_id is another session.
	r3 := newRecorder()
	acc3, err := s.Chat(ctx(t), ChatRequest{UserID: uuid.NewString(), Text: "hello", ClientMessageID: "first", Subscriber: r3})
	if err != nil || acc3.SessionID == acc1.SessionID {
		t.Fatalf("other user: %+v %v", acc3, err)
	}
	r3.untilDone(t)
}

func TestUnsubscribeDuringCatchUpFromTheStore(t *testing.T) {
	s, _ := newTestSessions(t, newFakeModel(), func(c *Config) { c.IdleTimeout = 20 * time.Millisecond })
	user := uuid.NewString()
	rec := newRecorder()
	acc, err := s.Chat(ctx(t), ChatRequest{UserID: user, Text: "hi", Subscriber: rec})
	if err != nil {
		t.Fatal(err)
	}
	rec.untilDone(t)
	eventually(t, "passivation", func() bool { n, _ := s.Live(ctx(t)); return n == 0 })
	// after_seq 0 is older than memory: the catch-up is read from the store,
	// and the unsubscribe races it.
	follower := newRecorder()
	if err := s.Subscribe(ctx(t), SubscribeRequest{UserID: user, SessionID: acc.SessionID, AfterSeq: int64p(0), Subscriber: follower}); err != nil {
		t.Fatal(err)
	}
	s.Unsubscribe(acc.SessionID, follower)
	eventually(t, "passivation after the follower left", func() bool { n, _ := s.Live(ctx(t)); return n == 0 })
}

func TestPendingChatsAreBounded(t *testing.T) {
	gate := make(chan struct{})
	defer close(gate)
	s, _ := newTestSessions(t, newFakeModel(reply{tokens: []string{"a", "b"}, gate: gate}), nil)
	user := uuid.NewString()
	acc, err := s.Chat(ctx(t), ChatRequest{UserID: user, Text: "first"})
	if err != nil {
		t.Fatal(err)
	}
	var last error
	for i := 0; i < maxPendingChats+2 && last == nil; i++ {
		_, last = s.Chat(ctx(t), ChatRequest{UserID: user, SessionID: acc.SessionID, Text: "more"})
	}
	if !errors.Is(last, ErrTooManyPending) {
		t.Fatalf("err = %v, want ErrTooManyPending", last)
	}
}
