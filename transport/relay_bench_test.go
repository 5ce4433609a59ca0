package transport

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/coder/websocket"
	"github.com/google/uuid"

	"github.com/storyd/storyd/actors"
	"github.com/storyd/storyd/llm"
	"github.com/storyd/storyd/persistence"
)

// burstModel replies with n tokens as fast as the caller takes them.
type burstModel struct{ n atomic.Int64 }

func (m *burstModel) StreamChat(ctx context.Context, _ []llm.Message, emit func(string) error) error {
	for i := int64(0); i < m.n.Load(); i++ {
		if err := emit("tok "); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// BenchmarkWebSocketFanout is storyd's whole share of the token path over
// real loopback WebSockets: the session actor numbers each token and hands
// it to the sockets of the session's subscribers, whose writers encode and
// write it; clients only read frames. b.N tokens make one reply; the
// metric is frames delivered per second (subscribers × tokens), with the
// clients on the same cores.
func BenchmarkWebSocketFanout(b *testing.B) {
	for _, subs := range []int{1, 3} {
		b.Run(fmt.Sprintf("subscribers=%d", subs), func(b *testing.B) {
			benchFanout(b, subs)
		})
	}
}

func benchFanout(b *testing.B, subs int) {
	ctx := context.Background()
	store, err := persistence.OpenSQLite(ctx, b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	if _, err := store.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	model := &burstModel{}
	model.n.Store(1)
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.DiscardHandler)
	}))
	defer system.Shutdown()
	sessions, err := actors.NewSessions(system, actors.Config{Store: store, Model: model, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	// The queue must hold a whole burst: the model outruns the sockets.
	api := NewServer(Config{Sessions: sessions, Store: store, Provider: "bench", QueueSize: 1 << 20,
		Logger: slog.New(slog.DiscardHandler)})
	ts := httptest.NewServer(api)
	defer func() {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_ = sessions.Shutdown(sctx)
		api.Close()
		ts.Close()
	}()
	url := "ws" + strings.TrimPrefix(ts.URL, "http") + "/api/v1/ws?user_id="
	user := uuid.NewString()
	dial := func() *websocket.Conn {
		c, _, err := websocket.Dial(ctx, url+user, nil)
		if err != nil {
			b.Fatal(err)
		}
		c.SetReadLimit(1 << 20)
		return c
	}
	send := func(c *websocket.Conn, v any) {
		p, _ := json.Marshal(v)
		if err := c.Write(ctx, websocket.MessageText, p); err != nil {
			b.Fatal(err)
		}
	}
	// readUntil reads frames until one contains marker.
	readUntil := func(c *websocket.Conn, marker string) []byte {
		for {
			_, p, err := c.Read(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if bytes.Contains(p, []byte(marker)) {
				return p
			}
		}
	}
	chatter := dial()
	defer chatter.CloseNow()
	send(chatter, map[string]string{"type": "chat", "text": "hello"})
	var ack struct {
		SessionID string `json:"session_id"`
	}
	_ = json.Unmarshal(readUntil(chatter, `"type":"ack"`), &ack)
	readUntil(chatter, `"type":"done"`)
	conns := []*websocket.Conn{chatter}
	for i := 1; i < subs; i++ {
		c := dial()
		defer c.CloseNow()
		send(c, map[string]any{"type": "subscribe", "session_id": ack.SessionID})
		send(c, map[string]string{"type": "ping"}) // answered after the subscribe is taken
		readUntil(c, `"type":"pong"`)
		conns = append(conns, c)
	}
	model.n.Store(int64(b.N))
	b.ResetTimer()
	send(chatter, map[string]string{"type": "chat", "text": "go", "session_id": ack.SessionID})
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			readUntil(c, `"type":"done"`)
		}()
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N*subs)/b.Elapsed().Seconds(), "frames/s")
}
