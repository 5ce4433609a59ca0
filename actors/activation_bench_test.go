package actors

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/google/uuid"

	"github.com/storyd/storyd/persistence"
	"github.com/storyd/storyd/persistence/pgtest"
)

// storedMessages is the size of the session BenchmarkColdActivation wakes.
const storedMessages = 10_000

// BenchmarkColdActivation measures how long a session with 10,000 stored
// messages takes to answer its first command after the node started: the
// actor reads the session, its context window (the newest HistoryLimit
// messages), a block of seqs and the project's dossier. Each iteration
// starts a fresh actor system over the same store (whose own caches stay
// warm, as on a running node), subscribes, and stops it untimed. It reports
// the p50 and p99 of the iterations; run it with -benchtime 100x or so.
// PostgreSQL runs when STORYD_TEST_DATABASE_URL names a server.
func BenchmarkColdActivation(b *testing.B) {
	b.Run("store=sqlite", func(b *testing.B) {
		store, err := persistence.OpenSQLite(context.Background(), b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		defer store.Close()
		if _, err := store.Migrate(context.Background()); err != nil {
			b.Fatal(err)
		}
		benchActivation(b, store)
	})
	b.Run("store=postgres", func(b *testing.B) {
		benchActivation(b, pgtest.NewStore(b))
	})
}

func benchActivation(b *testing.B, store Store) {
	ctx := context.Background()
	user, project, session := uuid.NewString(), uuid.NewString(), uuid.NewString()
	if _, err := store.EnsureUser(ctx, persistence.User{ID: user, IsAnonymous: true}); err != nil {
		b.Fatal(err)
	}
	if _, err := store.CreateProject(ctx, persistence.Project{ID: project, UserID: user, Title: "bench"}); err != nil {
		b.Fatal(err)
	}
	if _, err := store.CreateSession(ctx, persistence.Session{ID: session, UserID: user, ProjectID: project, Title: "bench"}); err != nil {
		b.Fatal(err)
	}
	_, last, err := store.ReserveSeqs(ctx, session, storedMessages+1)
	if err != nil {
		b.Fatal(err)
	}
	for i := int64(1); i <= storedMessages; i++ {
		role, turn := persistence.RoleUser, uuid.NewString()
		if i%2 == 0 {
			role = persistence.RoleAssistant
		}
		seq := last - storedMessages + i
		if _, _, err := store.AppendMessage(ctx, persistence.Message{ID: uuid.NewString(), SessionID: session, Seq: seq, EndSeq: seq,
			TurnID: turn, Role: role, Content: fmt.Sprintf("message %d of a long conversation about a lighthouse keeper", i),
			Status: persistence.StatusComplete}); err != nil {
			b.Fatal(err)
		}
	}
	quiet := slog.New(slog.DiscardHandler)
	var took []time.Duration
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return quiet }))
		s, err := NewSessions(system, Config{Store: store, Model: newFakeModel(), Logger: quiet})
		if err != nil {
			b.Fatal(err)
		}
		sub := &countingSub{done: make(chan struct{})}
		b.StartTimer()
		start := time.Now()
		if err := s.Subscribe(ctx, SubscribeRequest{UserID: user, SessionID: session, Subscriber: sub}); err != nil {
			b.Fatal(err)
		}
		took = append(took, time.Since(start))
		b.StopTimer()
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		if err := s.Shutdown(sctx); err != nil {
			b.Fatal(err)
		}
		cancel()
		system.Shutdown()
		b.StartTimer()
	}
	b.StopTimer()
	slices.Sort(took)
	q := func(p float64) float64 { return float64(took[int(p*float64(len(took)-1))].Microseconds()) / 1e3 }
	b.ReportMetric(q(0.5), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	b.ReportMetric(float64(took[len(took)-1].Microseconds())/1e3, "max-ms")
}
