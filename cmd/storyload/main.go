// Command storyload is storyd's load tool: it opens many WebSocket clients
// against a running storyd on this machine, has each one chat in its own
// session (and, optionally, extra followers watch each session), and reports
// replies, tokens relayed per second and time to first token.
//
//	storyd serve &   # best with STORYD_OFFLINE_TOKEN_DELAY=0
//	go run ./cmd/storyload -url ws://127.0.0.1:8000/api/v1/ws -clients 200 -turns 5
//
// It is bounded: every client sends -turns messages and the whole run stops
// after -duration. Only loopback addresses are accepted.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
	"github.com/google/uuid"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "storyload:", err)
		os.Exit(1)
	}
}

// config is one load run.
type config struct {
	url       string
	clients   int
	followers int
	turns     int
	duration  time.Duration
}

// stats are the run's measurements, updated by every client.
type stats struct {
	mu        sync.Mutex
	ttft      []time.Duration // time to first token, per reply
	replyTime []time.Duration
	replies   atomic.Int64
	tokens    atomic.Int64 // text events received, followers included
	errors    atomic.Int64
}

func run(ctx context.Context, args []string, out io.Writer) error {
	var c config
	fs := flag.NewFlagSet("storyload", flag.ContinueOnError)
	fs.StringVar(&c.url, "url", "ws://127.0.0.1:8000/api/v1/ws", "storyd's WebSocket URL (loopback only)")
	fs.IntVar(&c.clients, "clients", 100, "concurrent chatting clients, one session each")
	fs.IntVar(&c.followers, "followers", 0, "extra sockets following each session")
	fs.IntVar(&c.turns, "turns", 3, "messages each client sends")
	fs.DurationVar(&c.duration, "duration", time.Minute, "hard limit of the run")
	if err := fs.Parse(args); err != nil {
		return err
	}
	u, err := url.Parse(c.url)
	if err != nil {
		return fmt.Errorf("parse -url: %w", err)
	}
	if ip := net.ParseIP(u.Hostname()); u.Hostname() != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return errors.New("-url must be a loopback address: storyload only loads this machine")
	}
	if c.clients < 1 || c.turns < 1 || c.followers < 0 {
		return errors.New("-clients and -turns must be at least 1, -followers at least 0")
	}
	ctx, cancel := context.WithTimeout(ctx, c.duration)
	defer cancel()

	var st stats
	start := time.Now()
	var wg sync.WaitGroup
	for i := 0; i < c.clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := client(ctx, c, &st); err != nil && ctx.Err() == nil {
				st.errors.Add(1)
				fmt.Fprintln(os.Stderr, "storyload: client:", err)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	report(out, c, &st, elapsed)
	return nil
}

// client chats -turns times in a new session; its followers watch it.
func client(ctx context.Context, c config, st *stats) error {
	user := uuid.NewString()
	conn, _, err := websocket.Dial(ctx, c.url+"?user_id="+user, nil)
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	defer conn.CloseNow()
	conn.SetReadLimit(1 << 20)
	var followers sync.WaitGroup
	defer followers.Wait()
	sessionID := ""
	for turn := 0; turn < c.turns; turn++ {
		sent := time.Now()
		frame := map[string]string{"type": "chat", "text": fmt.Sprintf("A film about my grandmother, part %d", turn)}
		if sessionID != "" {
			frame["session_id"] = sessionID
		}
		if err := wsjson.Write(ctx, conn, frame); err != nil {
			return fmt.Errorf("send: %w", err)
		}
		var first time.Duration
		for {
			var ev struct {
				Type      string `json:"type"`
				SessionID string `json:"session_id"`
			}
			if err := wsjson.Read(ctx, conn, &ev); err != nil {
				return fmt.Errorf("read: %w", err)
			}
			switch ev.Type {
			case "ack":
				if sessionID == "" {
					sessionID = ev.SessionID
					for f := 0; f < c.followers; f++ {
						followers.Add(1)
						go func() {
							defer followers.Done()
							if err := follow(ctx, c, user, sessionID, c.turns, st); err != nil && ctx.Err() == nil {
								st.errors.Add(1)
							}
						}()
					}
				}
			case "text":
				st.tokens.Add(1)
				if first == 0 {
					first = time.Since(sent)
				}
			case "error":
				st.errors.Add(1)
			}
			if ev.Type == "done" {
				break
			}
		}
		st.replies.Add(1)
		st.mu.Lock()
		st.ttft = append(st.ttft, first)
		st.replyTime = append(st.replyTime, time.Since(sent))
		st.mu.Unlock()
	}
	conn.Close(websocket.StatusNormalClosure, "")
	return nil
}

// follow watches a session until it has seen `replies` done events (or the
// run ends), counting the text it relays.
func follow(ctx context.Context, c config, user, sessionID string, replies int, st *stats) error {
	conn, _, err := websocket.Dial(ctx, c.url+"?user_id="+user, nil)
	if err != nil {
		return err
	}
	defer conn.CloseNow()
	conn.SetReadLimit(1 << 20)
	if err := wsjson.Write(ctx, conn, map[string]any{"type": "subscribe", "session_id": sessionID, "after_seq": 0}); err != nil {
		return err
	}
	for done := 0; done < replies; {
		var ev struct{ Type string }
		if err := wsjson.Read(ctx, conn, &ev); err != nil {
			return err
		}
		switch ev.Type {
		case "text":
			st.tokens.Add(1)
		case "done":
			done++
		}
	}
	return nil
}

func report(out io.Writer, c config, st *stats, elapsed time.Duration) {
	st.mu.Lock()
	defer st.mu.Unlock()
	pct := func(ds []time.Duration, p float64) time.Duration {
		if len(ds) == 0 {
			return 0
		}
		s := slices.Clone(ds)
		slices.Sort(s)
		return s[int(float64(len(s)-1)*p)]
	}
	fmt.Fprintf(out, "clients %d, followers per session %d, turns %d, elapsed %s\n",
		c.clients, c.followers, c.turns, elapsed.Round(time.Millisecond))
	fmt.Fprintf(out, "replies %d, errors %d\n", st.replies.Load(), st.errors.Load())
	fmt.Fprintf(out, "text events received %d (%.0f/s)\n", st.tokens.Load(), float64(st.tokens.Load())/elapsed.Seconds())
	fmt.Fprintf(out, "time to first token p50 %s p99 %s; reply p50 %s p99 %s\n",
		pct(st.ttft, 0.5).Round(time.Microsecond), pct(st.ttft, 0.99).Round(time.Microsecond),
		pct(st.replyTime, 0.5).Round(time.Microsecond), pct(st.replyTime, 0.99).Round(time.Microsecond))
}
