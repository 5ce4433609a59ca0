package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"
)

// idleConfig is one `storyload idle`.
type idleConfig struct {
	url       string
	n         int
	srcIPs    string
	rate      int
	inflight  int
	hold      time.Duration
	storms    int
	duration  time.Duration
	pid       int
	json      bool
	readyFile string

	src []net.IP
}

func parseIdle(args []string, stderr io.Writer) (idleConfig, error) {
	var c idleConfig
	fs := newFlagSet("idle", stderr)
	fs.StringVar(&c.url, "url", "ws://127.0.0.1:8000/api/v1/ws", "storyd's WebSocket URL (loopback only)")
	fs.IntVar(&c.n, "n", 1000, "connections to open and hold, each subscribed to its own session")
	fs.StringVar(&c.srcIPs, "src-ips", "", "bind the connections to the addresses of this part of 127.0.0.0/8 in turn (e.g. 127.0.1.0/24)")
	fs.IntVar(&c.rate, "rate", 1000, "connections opened per second")
	fs.IntVar(&c.inflight, "inflight", 200, "connection set-ups (dial, chat, reply) in flight at once")
	fs.DurationVar(&c.hold, "hold", 20*time.Second, "how long to hold the connections once all are open")
	fs.IntVar(&c.storms, "storms", 0, "reconnect storms after the hold: drop every connection at once, reconnect and resubscribe with after_seq")
	fs.DurationVar(&c.duration, "duration", 5*time.Minute, "hard limit of the run")
	fs.IntVar(&c.pid, "pid", 0, "storyd's process id, to report its RSS from /proc once all connections are held")
	fs.BoolVar(&c.json, "json", false, "print the summary as JSON")
	fs.StringVar(&c.readyFile, "ready-file", "", "write the number of connections held to this file once all are open")
	if err := parseFlags(fs, args); err != nil {
		return c, err
	}
	var ck checks
	_, err := loopbackURL("url", c.url, "ws", "wss")
	ck.add(err)
	ck.positive("n", c.n)
	ck.atMost("n", c.n, 18_000) // the open-file limit here is 20000 per process
	ck.positive("rate", c.rate)
	ck.atMost("rate", c.rate, 100_000)
	ck.positive("inflight", c.inflight)
	ck.atMost("inflight", c.inflight, 10_000)
	ck.duration("hold", c.hold, 0, time.Hour)
	ck.atLeast("storms", c.storms, 0)
	ck.atMost("storms", c.storms, 100)
	ck.duration("duration", c.duration, time.Second, 2*time.Hour)
	src, err := srcAddrs(c.srcIPs)
	ck.add(err)
	c.src = src
	if c.pid != 0 {
		if _, err := readProc(c.pid); err != nil {
			ck.add(fmt.Errorf("-pid %d: no such local process", c.pid))
		}
	}
	return c, ck.err()
}

// idleConn is one held connection.
type idleConn struct {
	user, sessionID string
	lastSeq         atomic.Int64
	conn            atomic.Pointer[websocket.Conn]
	done            chan struct{} // closed when its reader returns
}

type idleReport struct {
	Mode      string           `json:"mode"`
	Requested int              `json:"requested"`
	Held      int64            `json:"held"`
	SrcIPs    int              `json:"src_ips"`
	OpenS     float64          `json:"open_s"` // time to open them all
	Setup     summary          `json:"setup"`  // dial + chat + reply, per connection
	Storms    []stormReport    `json:"storms,omitempty"`
	Errors    map[string]int64 `json:"errors"`
	Storyd    *procReport      `json:"storyd_at_hold,omitempty"`
}

type stormReport struct {
	Reconnected int64            `json:"reconnected"`
	TookS       float64          `json:"took_s"`
	Resubscribe summary          `json:"resubscribe"` // dial + subscribe + pong, per connection
	Errors      map[string]int64 `json:"errors"`
}

type errCount struct {
	mu sync.Mutex
	m  map[string]int64
}

func (e *errCount) add(kind string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.m == nil {
		e.m = map[string]int64{}
	}
	e.m[kind]++
}

func (e *errCount) snapshot() map[string]int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := map[string]int64{}
	for k, v := range e.m {
		out[k] = v
	}
	return out
}

func runIdle(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c, err := parseIdle(args, stderr)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, c.duration)
	defer cancel()
	var next atomic.Uint64
	dialer := func(ctx context.Context, network, addr string) (net.Conn, error) {
		d := net.Dialer{Timeout: 10 * time.Second}
		if len(c.src) > 0 {
			d.LocalAddr = &net.TCPAddr{IP: c.src[next.Add(1)%uint64(len(c.src))]}
		}
		return d.DialContext(ctx, network, addr)
	}
	opts := &websocket.DialOptions{HTTPClient: &http.Client{Transport: &http.Transport{DialContext: dialer}}}

	var held atomic.Int64
	var errs errCount
	var setup hist
	conns := make([]*idleConn, c.n)
	var readers sync.WaitGroup
	sem := make(chan struct{}, c.inflight)
	tick := time.NewTicker(time.Second / time.Duration(c.rate))
	start := time.Now()
	var opening sync.WaitGroup
	for i := 0; i < c.n && ctx.Err() == nil; i++ {
		select {
		case <-tick.C:
		case <-ctx.Done():
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			continue
		}
		opening.Add(1)
		go func() {
			defer opening.Done()
			defer func() { <-sem }()
			ic := &idleConn{user: uuid.NewString()}
			t0 := time.Now()
			if err := ic.open(ctx, c.url, opts); err != nil {
				if ctx.Err() == nil {
					errs.add(errKind(err))
				}
				return
			}
			setup.add(time.Since(t0))
			conns[i] = ic
			held.Add(1)
			ic.follow(&readers)
		}()
	}
	tick.Stop()
	opening.Wait()
	r := idleReport{Mode: "idle", Requested: c.n, SrcIPs: len(c.src), OpenS: time.Since(start).Seconds()}
	r.Held = held.Load()
	fmt.Fprintf(stderr, "storyload idle: holding %d connections (opened in %.1fs)\n", r.Held, r.OpenS)
	if c.readyFile != "" {
		if err := os.WriteFile(c.readyFile, []byte(fmt.Sprintf("%d\n", r.Held)), 0o644); err != nil {
			return fmt.Errorf("-ready-file: %w", err)
		}
	}
	if c.pid != 0 {
		if st, err := readProc(c.pid); err == nil {
			r.Storyd = &procReport{PID: c.pid, RSSKiB: st.RSSKiB, PeakKiB: st.PeakKiB, Threads: st.Threads, FDs: st.FDs}
		}
	}
	sleepCtx(ctx, c.hold)
	// Connections the server closed while held are errors too.
	for _, ic := range conns {
		if ic == nil {
			continue
		}
		select {
		case <-ic.done:
			if ctx.Err() == nil {
				errs.add("lost_while_held")
			}
		default:
		}
	}
	for s := 0; s < c.storms && ctx.Err() == nil; s++ {
		r.Storms = append(r.Storms, storm(ctx, conns, c.url, opts, &readers))
	}
	cancel()
	for _, ic := range conns {
		if ic != nil {
			if conn := ic.conn.Load(); conn != nil {
				_ = conn.CloseNow()
			}
		}
	}
	readers.Wait()
	r.Setup = setup.summary()
	r.Errors = errs.snapshot()
	return r.print(stdout, c.json)
}

// open dials, chats once (creating the connection's own session, which the
// socket then follows) and waits for the reply's done.
func (ic *idleConn) open(ctx context.Context, wsURL string, opts *websocket.DialOptions) error {
	conn, err := wsDial(ctx, wsURL, ic.user, opts)
	if err != nil {
		return err
	}
	if err := wsWrite(ctx, conn, map[string]string{"type": "chat", "text": "hello"}); err != nil {
		conn.CloseNow()
		return err
	}
	rctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		_, data, err := conn.Read(rctx)
		if err != nil {
			conn.CloseNow()
			return kindError{"read", err}
		}
		var ev frame
		_ = json.Unmarshal(data, &ev)
		if ev.Seq > ic.lastSeq.Load() {
			ic.lastSeq.Store(ev.Seq)
		}
		switch ev.Type {
		case "ack":
			ic.sessionID = ev.SessionID
		case "error":
			if ev.Error != nil && ev.SessionID == "" {
				conn.CloseNow()
				return kindError{"refused_" + ev.Error.Code, errors.New(ev.Error.Code)}
			}
		case "done":
			ic.conn.Store(conn)
			return nil
		}
	}
}

// follow reads the socket until it closes (answering pings, keeping the
// last seq seen).
func (ic *idleConn) follow(readers *sync.WaitGroup) {
	conn := ic.conn.Load()
	done := make(chan struct{})
	ic.done = done
	readers.Add(1)
	go func() {
		defer readers.Done()
		defer close(done)
		for {
			_, data, err := conn.Read(context.Background())
			if err != nil {
				return
			}
			var ev frame
			if json.Unmarshal(data, &ev) == nil && ev.Seq > ic.lastSeq.Load() {
				ic.lastSeq.Store(ev.Seq)
			}
		}
	}()
}

// storm drops every held connection at once and reconnects them all, each
// resubscribing after the last seq it saw; a pong after the subscribe says
// the server has taken it.
func storm(ctx context.Context, conns []*idleConn, wsURL string, opts *websocket.DialOptions, readers *sync.WaitGroup) stormReport {
	for _, ic := range conns {
		if ic != nil {
			if conn := ic.conn.Load(); conn != nil {
				_ = conn.CloseNow()
			}
		}
	}
	for _, ic := range conns {
		if ic != nil && ic.done != nil {
			<-ic.done
		}
	}
	var lat hist
	var errs errCount
	var ok atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for _, ic := range conns {
		if ic == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			t0 := time.Now()
			if err := ic.resubscribe(ctx, wsURL, opts); err != nil {
				if ctx.Err() == nil {
					errs.add(errKind(err))
				}
				return
			}
			lat.add(time.Since(t0))
			ok.Add(1)
			ic.follow(readers)
		}()
	}
	wg.Wait()
	return stormReport{Reconnected: ok.Load(), TookS: time.Since(start).Seconds(), Resubscribe: lat.summary(), Errors: errs.snapshot()}
}

func (ic *idleConn) resubscribe(ctx context.Context, wsURL string, opts *websocket.DialOptions) error {
	conn, err := wsDial(ctx, wsURL, ic.user, opts)
	if err != nil {
		ic.conn.Store(nil)
		return err
	}
	ic.conn.Store(conn)
	if err := wsWrite(ctx, conn, map[string]any{"type": "subscribe", "session_id": ic.sessionID, "after_seq": ic.lastSeq.Load()}); err != nil {
		return err
	}
	if err := wsWrite(ctx, conn, map[string]string{"type": "ping"}); err != nil {
		return err
	}
	rctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		_, data, err := conn.Read(rctx)
		if err != nil {
			return kindError{"read", err}
		}
		var ev frame
		_ = json.Unmarshal(data, &ev)
		switch ev.Type {
		case "pong":
			return nil
		case "error":
			code := "unknown"
			if ev.Error != nil {
				code = ev.Error.Code
			}
			return kindError{"refused_" + code, errors.New(code)}
		}
	}
}

func (r idleReport) print(w io.Writer, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	fmt.Fprintf(w, "idle: held %d of %d connections from %d source addresses, opened in %.1fs\n", r.Held, r.Requested, r.SrcIPs, r.OpenS)
	fmt.Fprintf(w, "set-up (dial, chat, reply) p50 %s p99 %s max %s\n", us(r.Setup.P50), us(r.Setup.P99), us(r.Setup.Max))
	if s := r.Storyd; s != nil {
		fmt.Fprintf(w, "storyd (pid %d) while held: RSS %d KiB, %d threads, %d fds\n", s.PID, s.RSSKiB, s.Threads, s.FDs)
	}
	for i, s := range r.Storms {
		fmt.Fprintf(w, "storm %d: %d reconnected and resubscribed in %.2fs (each p50 %s p99 %s); errors: %s\n",
			i+1, s.Reconnected, s.TookS, us(s.Resubscribe.P50), us(s.Resubscribe.P99), kinds(s.Errors))
	}
	fmt.Fprintf(w, "errors: %s\n", kinds(r.Errors))
	return nil
}

func kinds(m map[string]int64) string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	var parts []string
	for _, k := range ks {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return orNone(strings.Join(parts, ", "))
}
