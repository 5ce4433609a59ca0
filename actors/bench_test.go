package actors

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/uuid"
)

// countingSub counts events and signals done; it never blocks or refuses.
type countingSub struct {
	n    int
	done chan struct{}
}

func (c *countingSub) Deliver(ev Event) bool {
	c.n++
	if ev.Type == EventDone {
		close(c.done)
	}
	return true
}

func (c *countingSub) DeliverBatch(evs []Event) bool {
	for _, ev := range evs {
		c.Deliver(ev)
	}
	return true
}

func (c *countingSub) Drop(error) {}

// BenchmarkRelay measures the token path through a session actor: the model
// goroutine hands each token to the actor, which numbers it, keeps it for
// resume and delivers it to every follower. b.N tokens make one reply.
func BenchmarkRelay(b *testing.B) {
	for _, followers := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("followers=%d", followers), func(b *testing.B) {
			tokens := make([]string, b.N)
			for i := range tokens {
				tokens[i] = "tok "
			}
			s, _ := newBenchSessions(b, newFakeModel(reply{tokens: []string{"hi"}}, reply{tokens: tokens}))
			user := uuid.NewString()
			ctx := context.Background()
			// Create the session, then let every follower subscribe before
			// the measured reply starts.
			warm := &countingSub{done: make(chan struct{})}
			acc, err := s.Chat(ctx, ChatRequest{UserID: user, Text: "hello", Subscriber: warm})
			if err != nil {
				b.Fatal(err)
			}
			<-warm.done
			var subs []*countingSub
			for i := 0; i < followers; i++ {
				c := &countingSub{done: make(chan struct{})}
				subs = append(subs, c)
				if err := s.Subscribe(ctx, SubscribeRequest{UserID: user, SessionID: acc.SessionID, Subscriber: c}); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			if _, err := s.Chat(ctx, ChatRequest{UserID: user, SessionID: acc.SessionID, Text: "go"}); err != nil {
				b.Fatal(err)
			}
			for _, c := range subs {
				<-c.done
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N*followers)/b.Elapsed().Seconds(), "deliveries/s")
		})
	}
}
