package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"
	"golang.org/x/time/rate"

	"github.com/storyd/storyd/llm/llmtest"
)

// loadConfig is one `storyload run`.
type loadConfig struct {
	url       string
	transport string // ws or sse
	clients   int
	followers int
	turns     int // per client; 0: until -duration
	think     time.Duration
	rate      float64 // chats per second over all clients; 0: no limit
	ramp      time.Duration
	warmup    time.Duration
	duration  time.Duration
	mock      string // the mock upstream's base URL, for the baseline
	direct    int    // baseline clients reading the mock directly
	pid       int
	json      bool
	text      string

	wsURL   string // derived
	httpURL string // derived: scheme://host of storyd
}

func parseLoad(args []string, stderr io.Writer) (loadConfig, error) {
	var c loadConfig
	fs := newFlagSet("run", stderr)
	fs.StringVar(&c.url, "url", "ws://127.0.0.1:8000/api/v1/ws", "storyd's WebSocket URL, or its http:// base for SSE (loopback only)")
	fs.StringVar(&c.transport, "transport", "ws", "ws (WebSocket) or sse (POST /api/v1/chat, followers on /sessions/{id}/stream)")
	fs.IntVar(&c.clients, "clients", 100, "concurrent chatting clients, one session each")
	fs.IntVar(&c.followers, "followers", 0, "extra connections following each session (other tabs)")
	fs.IntVar(&c.turns, "turns", 3, "messages each client sends (0: keep chatting until -duration)")
	fs.DurationVar(&c.think, "think", 0, "pause between a reply's end and the client's next message")
	fs.Float64Var(&c.rate, "rate", 0, "chats sent per second over all clients (0: each client sends its next one when its reply is done)")
	fs.DurationVar(&c.ramp, "ramp", 0, "spread the clients' start over this long")
	fs.DurationVar(&c.warmup, "warmup", 0, "record nothing during the first part of the run")
	fs.DurationVar(&c.duration, "duration", time.Minute, "hard limit of the run")
	fs.StringVar(&c.mock, "mock", "", "the mock upstream's API URL (http://127.0.0.1:9100/v1): measure the direct baseline beside storyd")
	fs.IntVar(&c.direct, "direct", -1, "baseline clients streaming from -mock directly (default: a tenth of -clients, at least 1)")
	fs.IntVar(&c.pid, "pid", 0, "storyd's process id, to report its RSS and CPU from /proc")
	fs.BoolVar(&c.json, "json", false, "print the summary as JSON")
	fs.StringVar(&c.text, "text", "A film about my grandmother and the lighthouse she kept", "the text each client sends")
	if err := parseFlags(fs, args); err != nil {
		return c, err
	}
	var ck checks
	u, err := loopbackURL("url", c.url, "ws", "wss", "http", "https")
	ck.add(err)
	switch c.transport {
	case "ws", "sse":
	default:
		ck.add(fmt.Errorf("-transport %q: want ws or sse", c.transport))
	}
	ck.positive("clients", c.clients)
	ck.atMost("clients", c.clients, 50_000)
	ck.atLeast("followers", c.followers, 0)
	ck.atMost("followers", c.followers, 100)
	ck.atLeast("turns", c.turns, 0)
	ck.duration("think", c.think, 0, time.Hour)
	if c.rate < 0 || c.rate > 1e6 || c.rate != c.rate {
		ck.add(fmt.Errorf("-rate %g: want chats per second from 0 (no limit) to 1000000", c.rate))
	}
	ck.duration("duration", c.duration, time.Second, 2*time.Hour)
	ck.duration("ramp", c.ramp, 0, c.duration)
	ck.duration("warmup", c.warmup, 0, c.duration-time.Second)
	if c.text == "" {
		ck.add(errors.New("-text: want a non-empty message"))
	}
	if c.mock != "" {
		_, err := loopbackURL("mock", c.mock, "http")
		ck.add(err)
		if c.direct < 0 {
			c.direct = max(1, c.clients/10)
		}
		ck.atMost("direct", c.direct, 50_000)
	} else if c.direct > 0 {
		ck.add(errors.New("-direct needs -mock, the upstream to read directly"))
	}
	c.direct = max(c.direct, 0)
	if c.pid != 0 {
		if _, err := readProc(c.pid); err != nil {
			ck.add(fmt.Errorf("-pid %d: no such local process", c.pid))
		}
	}
	if c.clients*(1+c.followers)+c.direct > 18_000 {
		ck.add(fmt.Errorf("-clients × (1 + -followers) + -direct = %d connections: more than one process may open here (18000); run several storyload processes", c.clients*(1+c.followers)+c.direct))
	}
	if u != nil {
		scheme := "http"
		if u.Scheme == "wss" || u.Scheme == "https" {
			scheme = "https"
		}
		c.httpURL = scheme + "://" + u.Host
		c.wsURL = c.url
		if u.Scheme == "http" || u.Scheme == "https" || u.Path == "" || u.Path == "/" {
			c.wsURL = strings.Replace(scheme, "http", "ws", 1) + "://" + u.Host + "/api/v1/ws"
		}
	}
	return c, ck.err()
}

// loadStats are a run's measurements, updated by every client.
type loadStats struct {
	measuring atomic.Bool
	relay     hist // model chunk sent → client frame received, via storyd
	ttft      hist // chat sent → first text frame
	direct    hist // model chunk sent → client received, read directly
	directTTF hist
	turns     atomic.Int64 // replies finished at the chatting client
	tokens    atomic.Int64 // stamped chunks received (text frames without stamps count one)
	frames    atomic.Int64 // every frame or SSE event received
	dTurns    atomic.Int64
	dTokens   atomic.Int64
	held      atomic.Int64
	heldMax   atomic.Int64

	limiter *rate.Limiter // paces chats over all clients; nil: no limit

	mu     sync.Mutex
	errors map[string]int64
}

// pace waits for the next chat's turn under -rate; it reports false when
// the run ended first.
func (st *loadStats) pace(ctx context.Context) bool {
	if st.limiter == nil {
		return ctx.Err() == nil
	}
	return st.limiter.Wait(ctx) == nil
}

func (st *loadStats) fail(kind string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.errors == nil {
		st.errors = map[string]int64{}
	}
	st.errors[kind]++
}

func (st *loadStats) open() func() {
	n := st.held.Add(1)
	for {
		m := st.heldMax.Load()
		if n <= m || st.heldMax.CompareAndSwap(m, n) {
			break
		}
	}
	return func() { st.held.Add(-1) }
}

// textArrived records a text frame's content received at now: each stamp
// in it gives one relay latency.
func (st *loadStats) textArrived(h *hist, tokens *atomic.Int64, content string, now time.Time, record bool, buf *[]int64) {
	*buf = llmtest.ParseStamps((*buf)[:0], content)
	if !st.measuring.Load() {
		return
	}
	n := int64(len(*buf))
	if n == 0 {
		n = 1
	}
	tokens.Add(n)
	if !record {
		return
	}
	nowNs := now.UnixNano()
	for _, s := range *buf {
		h.add(time.Duration(nowNs - s))
	}
}

// frame is what storyload reads of a storyd event.
type frame struct {
	Type      string `json:"type"`
	SessionID string `json:"session_id"`
	Seq       int64  `json:"seq"`
	Content   string `json:"content"`
	Error     *struct {
		Code string `json:"code"`
	} `json:"error"`
}

func runLoad(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c, err := parseLoad(args, stderr)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, c.duration)
	defer cancel()
	st := &loadStats{}
	st.measuring.Store(c.warmup == 0)
	if c.rate > 0 {
		st.limiter = rate.NewLimiter(rate.Limit(c.rate), 1)
	}
	hc := &http.Client{Transport: &http.Transport{
		MaxIdleConns: c.clients*(1+c.followers) + c.direct, MaxIdleConnsPerHost: c.clients*(1+c.followers) + c.direct,
		IdleConnTimeout: time.Minute, DisableCompression: true,
	}}
	defer hc.CloseIdleConnections()

	var before procStat
	if c.pid != 0 {
		before, _ = readProc(c.pid)
	}
	start := time.Now()
	measureFrom := start
	var snapTurns, snapTokens, snapFrames, snapDTurns, snapDTokens int64
	var wg sync.WaitGroup
	if c.warmup > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case <-time.After(c.warmup):
				measureFrom = time.Now()
				if c.pid != 0 {
					before, _ = readProc(c.pid)
				}
				snapTurns, snapTokens, snapFrames = st.turns.Load(), st.tokens.Load(), st.frames.Load()
				snapDTurns, snapDTokens = st.dTurns.Load(), st.dTokens.Load()
				st.measuring.Store(true)
			case <-ctx.Done():
			}
		}()
	}
	spread := func(i, n int) time.Duration {
		if c.ramp == 0 || n == 0 {
			return 0
		}
		return c.ramp * time.Duration(i) / time.Duration(n)
	}
	for i := 0; i < c.clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if !sleepCtx(ctx, spread(i, c.clients)) {
				return
			}
			var err error
			if c.transport == "sse" {
				err = sseClient(ctx, c, hc, st)
			} else {
				err = wsClient(ctx, c, st)
			}
			if err != nil && ctx.Err() == nil {
				st.fail(errKind(err))
			}
		}()
	}
	for i := 0; i < c.direct; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if !sleepCtx(ctx, spread(i, c.direct)) {
				return
			}
			if err := directClient(ctx, c, hc, st); err != nil && ctx.Err() == nil {
				st.fail("direct_" + errKind(err))
			}
		}()
	}
	wg.Wait()
	end := time.Now()
	elapsed := end.Sub(measureFrom)
	if !st.measuring.Load() {
		return errors.New("the run ended before -warmup did: nothing was measured")
	}
	r := loadReport{
		Mode: "run", Transport: c.transport, Clients: c.clients, Followers: c.followers, Direct: c.direct,
		ElapsedS: elapsed.Seconds(), HeldMax: st.heldMax.Load(),
		Turns:  st.turns.Load() - snapTurns,
		Tokens: st.tokens.Load() - snapTokens,
		Frames: st.frames.Load() - snapFrames,
		Relay:  st.relay.summary(), TTFT: st.ttft.summary(),
		Errors: st.errors,
	}
	r.TurnsPerS = float64(r.Turns) / elapsed.Seconds()
	r.TokensPerS = float64(r.Tokens) / elapsed.Seconds()
	r.FramesPerS = float64(r.Frames) / elapsed.Seconds()
	if c.direct > 0 {
		b := &baselineReport{Turns: st.dTurns.Load() - snapDTurns, Tokens: st.dTokens.Load() - snapDTokens,
			Relay: st.direct.summary(), TTFT: st.directTTF.summary()}
		r.Baseline = b
		r.Added = &added{P50: r.Relay.P50 - b.Relay.P50, P90: r.Relay.P90 - b.Relay.P90, P99: r.Relay.P99 - b.Relay.P99}
	}
	if c.pid != 0 {
		if after, err := readProc(c.pid); err == nil {
			r.Storyd = procDelta(c.pid, before, after, elapsed)
		}
	}
	return r.print(stdout, c.json)
}

// sleepCtx waits d; it reports false when ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// errKind names an error for the summary's errors-by-kind.
func errKind(err error) string {
	var ke kindError
	if errors.As(err, &ke) {
		return ke.kind
	}
	if s := websocket.CloseStatus(err); s != -1 {
		return fmt.Sprintf("ws_close_%d", s)
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "eof"
	}
	return "other"
}

// kindError is an error with its kind for the summary.
type kindError struct {
	kind string
	err  error
}

func (e kindError) Error() string { return e.kind + ": " + e.err.Error() }
func (e kindError) Unwrap() error { return e.err }

func wsDial(ctx context.Context, wsURL, user string, opts *websocket.DialOptions) (*websocket.Conn, error) {
	conn, resp, err := websocket.Dial(ctx, wsURL+"?user_id="+user, opts)
	if err != nil {
		if resp != nil {
			return nil, kindError{fmt.Sprintf("http_%d", resp.StatusCode), err}
		}
		return nil, kindError{"dial", err}
	}
	conn.SetReadLimit(1 << 20)
	return conn, nil
}

// wsRead reads and decodes the next frame, and the time it arrived (taken
// as the read returns, before decoding), counting it while measuring.
func wsRead(ctx context.Context, conn *websocket.Conn, st *loadStats) (frame, time.Time, error) {
	_, data, err := conn.Read(ctx)
	now := time.Now()
	if err != nil {
		return frame{}, now, err
	}
	var ev frame
	if json.Unmarshal(data, &ev) != nil {
		return frame{}, now, kindError{"bad_frame", fmt.Errorf("%.80s", data)}
	}
	if st.measuring.Load() {
		st.frames.Add(1)
	}
	return ev, now, nil
}

func wsWrite(ctx context.Context, conn *websocket.Conn, v any) error {
	b, _ := json.Marshal(v)
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := conn.Write(wctx, websocket.MessageText, b); err != nil {
		return kindError{"write", err}
	}
	return nil
}

// wsClient chats in a new session over one WebSocket; its followers watch
// the session from other sockets.
func wsClient(ctx context.Context, c loadConfig, st *loadStats) error {
	user := uuid.NewString()
	conn, err := wsDial(ctx, c.wsURL, user, nil)
	if err != nil {
		return err
	}
	defer st.open()()
	defer conn.CloseNow()
	var followers sync.WaitGroup
	defer followers.Wait()
	sessionID := ""
	var stamps []int64
	for turn := 0; c.turns == 0 || turn < c.turns; turn++ {
		if turn > 0 && !sleepCtx(ctx, c.think) {
			return nil
		}
		if !st.pace(ctx) {
			return nil
		}
		f := map[string]string{"type": "chat", "text": c.text}
		if sessionID != "" {
			f["session_id"] = sessionID
		}
		sent := time.Now()
		if err := wsWrite(ctx, conn, f); err != nil {
			return err
		}
		first := true
		for {
			ev, now, err := wsRead(ctx, conn, st)
			if err != nil {
				return err
			}
			switch ev.Type {
			case "ack":
				if sessionID == "" {
					sessionID = ev.SessionID
					for i := 0; i < c.followers; i++ {
						followers.Add(1)
						go func() {
							defer followers.Done()
							if err := wsFollow(ctx, c, user, sessionID, st); err != nil && ctx.Err() == nil {
								st.fail("follower_" + errKind(err))
							}
						}()
					}
				}
			case "text":
				if first && st.measuring.Load() {
					st.ttft.add(now.Sub(sent))
				}
				first = false
				st.textArrived(&st.relay, &st.tokens, ev.Content, now, true, &stamps)
			case "error":
				if ev.Error != nil && ev.SessionID != "" {
					st.fail("stream_" + ev.Error.Code)
				} else if ev.Error != nil {
					return kindError{"refused_" + ev.Error.Code, errors.New(ev.Error.Code)}
				}
			}
			if ev.Type == "done" {
				if st.measuring.Load() {
					st.turns.Add(1)
				}
				break
			}
		}
	}
	conn.Close(websocket.StatusNormalClosure, "")
	return nil
}

// wsFollow watches a session from its own socket until it has seen the
// chatter's -turns replies end (or the run ends, with -turns 0). Its first
// reply may start with a catch-up of earlier text, so it records latencies
// only after its first done.
func wsFollow(ctx context.Context, c loadConfig, user, sessionID string, st *loadStats) error {
	conn, err := wsDial(ctx, c.wsURL, user, nil)
	if err != nil {
		return err
	}
	defer st.open()()
	defer conn.CloseNow()
	if err := wsWrite(ctx, conn, map[string]any{"type": "subscribe", "session_id": sessionID}); err != nil {
		return err
	}
	live, dones := false, 0
	var stamps []int64
	for c.turns == 0 || dones < c.turns {
		ev, now, err := wsRead(ctx, conn, st)
		if err != nil {
			return err
		}
		switch ev.Type {
		case "text":
			st.textArrived(&st.relay, &st.tokens, ev.Content, now, live, &stamps)
		case "done":
			live = true
			dones++
		case "error":
			if ev.Error != nil {
				st.fail("stream_" + ev.Error.Code)
			}
		}
	}
	conn.Close(websocket.StatusNormalClosure, "")
	return nil
}

// sseEvents reads SSE data lines from body, calling f with each payload
// and the time it was read, until f reports false or the body ends.
func sseEvents(body io.Reader, f func(payload []byte, now time.Time) bool) error {
	br := bufio.NewReaderSize(body, 64<<10)
	for {
		line, err := br.ReadSlice('\n')
		now := time.Now()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return io.EOF
			}
			return kindError{"read", err}
		}
		if p, ok := bytes.CutPrefix(line, []byte("data: ")); ok {
			if !f(bytes.TrimRight(p, "\r\n"), now) {
				return nil
			}
		}
	}
}

func httpDo(ctx context.Context, hc *http.Client, req *http.Request) (*http.Response, error) {
	resp, err := hc.Do(req.WithContext(ctx))
	if err != nil {
		return nil, kindError{"dial", err}
	}
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		return nil, kindError{fmt.Sprintf("http_%d", resp.StatusCode), errors.New(resp.Status)}
	}
	return resp, nil
}

// sseClient chats in a new session with POST /api/v1/chat, one request a
// turn; its followers watch it on GET /api/v1/sessions/{id}/stream.
func sseClient(ctx context.Context, c loadConfig, hc *http.Client, st *loadStats) error {
	user := uuid.NewString()
	var followers sync.WaitGroup
	defer followers.Wait()
	sessionID := ""
	var stamps []int64
	for turn := 0; c.turns == 0 || turn < c.turns; turn++ {
		if turn > 0 && !sleepCtx(ctx, c.think) {
			return nil
		}
		if !st.pace(ctx) {
			return nil
		}
		body, _ := json.Marshal(map[string]string{"text": c.text, "session_id": sessionID})
		req, _ := http.NewRequest(http.MethodPost, c.httpURL+"/api/v1/chat", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-User-ID", user)
		sent := time.Now()
		resp, err := httpDo(ctx, hc, req)
		if err != nil {
			return err
		}
		closeStream := st.open()
		first, done := true, false
		err = sseEvents(resp.Body, func(p []byte, now time.Time) bool {
			var ev frame
			if json.Unmarshal(p, &ev) != nil {
				return true
			}
			if st.measuring.Load() {
				st.frames.Add(1)
			}
			if sessionID == "" && ev.SessionID != "" {
				sessionID = ev.SessionID
				for i := 0; i < c.followers; i++ {
					followers.Add(1)
					go func() {
						defer followers.Done()
						if err := sseFollow(ctx, c, hc, user, sessionID, st); err != nil && ctx.Err() == nil {
							st.fail("follower_" + errKind(err))
						}
					}()
				}
			}
			switch ev.Type {
			case "text":
				if first && st.measuring.Load() {
					st.ttft.add(now.Sub(sent))
				}
				first = false
				st.textArrived(&st.relay, &st.tokens, ev.Content, now, true, &stamps)
			case "error":
				if ev.Error != nil {
					st.fail("stream_" + ev.Error.Code)
				}
			case "done":
				done = true
				return false
			}
			return true
		})
		resp.Body.Close()
		closeStream()
		if !done {
			if err == nil || errors.Is(err, io.EOF) {
				err = kindError{"eof", io.ErrUnexpectedEOF}
			}
			return err
		}
		if st.measuring.Load() {
			st.turns.Add(1)
		}
	}
	return nil
}

func sseFollow(ctx context.Context, c loadConfig, hc *http.Client, user, sessionID string, st *loadStats) error {
	req, _ := http.NewRequest(http.MethodGet, c.httpURL+"/api/v1/sessions/"+url.PathEscape(sessionID)+"/stream?user_id="+user, nil)
	resp, err := httpDo(ctx, hc, req)
	if err != nil {
		return err
	}
	defer st.open()()
	defer resp.Body.Close()
	live, dones := false, 0
	var stamps []int64
	err = sseEvents(resp.Body, func(p []byte, now time.Time) bool {
		var ev frame
		if json.Unmarshal(p, &ev) != nil {
			return true
		}
		if st.measuring.Load() {
			st.frames.Add(1)
		}
		switch ev.Type {
		case "text":
			st.textArrived(&st.relay, &st.tokens, ev.Content, now, live, &stamps)
		case "done":
			live = true
			dones++
		}
		return c.turns == 0 || dones < c.turns
	})
	if errors.Is(err, io.EOF) && c.turns > 0 && dones >= c.turns {
		return nil
	}
	return err
}

// directClient is the baseline: it streams replies from the mock upstream
// itself, the way storyd does, and measures the same latencies.
func directClient(ctx context.Context, c loadConfig, hc *http.Client, st *loadStats) error {
	body, _ := json.Marshal(map[string]any{"model": "gpt-4o-mini", "stream": true,
		"messages": []map[string]string{{"role": "user", "content": c.text}}})
	var stamps []int64
	for turn := 0; c.turns == 0 || turn < c.turns; turn++ {
		if turn > 0 && !sleepCtx(ctx, c.think) {
			return nil
		}
		req, _ := http.NewRequest(http.MethodPost, strings.TrimRight(c.mock, "/")+"/chat/completions", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer storyload")
		sent := time.Now()
		resp, err := httpDo(ctx, hc, req)
		if err != nil {
			return err
		}
		closeStream := st.open()
		first, done := true, false
		err = sseEvents(resp.Body, func(p []byte, now time.Time) bool {
			if string(p) == "[DONE]" {
				done = true
				return false
			}
			var ch struct {
				Choices []struct {
					Delta struct {
						Content string `json:"content"`
					} `json:"delta"`
				} `json:"choices"`
			}
			if json.Unmarshal(p, &ch) != nil || len(ch.Choices) == 0 || ch.Choices[0].Delta.Content == "" {
				return true
			}
			if first && st.measuring.Load() {
				st.directTTF.add(now.Sub(sent))
			}
			first = false
			st.textArrived(&st.direct, &st.dTokens, ch.Choices[0].Delta.Content, now, true, &stamps)
			return true
		})
		resp.Body.Close()
		closeStream()
		if !done {
			if err == nil || errors.Is(err, io.EOF) {
				// A cut injected by the mock: count it and go on.
				st.fail("direct_stream_cut")
				continue
			}
			return err
		}
		if st.measuring.Load() {
			st.dTurns.Add(1)
		}
	}
	return nil
}

type baselineReport struct {
	Turns  int64   `json:"turns"`
	Tokens int64   `json:"tokens"`
	Relay  summary `json:"relay"`
	TTFT   summary `json:"ttft"`
}

type added struct {
	P50 float64 `json:"p50_us"`
	P90 float64 `json:"p90_us"`
	P99 float64 `json:"p99_us"`
}

// loadReport is the summary of a run; -json prints it as is.
type loadReport struct {
	Mode       string           `json:"mode"`
	Transport  string           `json:"transport"`
	Clients    int              `json:"clients"`
	Followers  int              `json:"followers"`
	Direct     int              `json:"direct_clients"`
	ElapsedS   float64          `json:"elapsed_s"`
	HeldMax    int64            `json:"connections_held_max"`
	Turns      int64            `json:"turns"`
	TurnsPerS  float64          `json:"turns_per_s"`
	Tokens     int64            `json:"tokens"`
	TokensPerS float64          `json:"tokens_per_s"`
	Frames     int64            `json:"frames"`
	FramesPerS float64          `json:"frames_per_s"`
	Relay      summary          `json:"relay"`
	TTFT       summary          `json:"ttft"`
	Baseline   *baselineReport  `json:"baseline,omitempty"`
	Added      *added           `json:"added_latency,omitempty"`
	Errors     map[string]int64 `json:"errors"`
	Storyd     *procReport      `json:"storyd,omitempty"`
}

func (r loadReport) print(w io.Writer, asJSON bool) error {
	if r.Errors == nil {
		r.Errors = map[string]int64{}
	}
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	lat := func(s summary) string {
		return fmt.Sprintf("p50 %s p90 %s p99 %s max %s (n=%d)", us(s.P50), us(s.P90), us(s.P99), us(s.Max), s.Count)
	}
	fmt.Fprintf(w, "%s: %d clients, %d followers each, %d baseline clients, measured %.1fs, held up to %d connections\n",
		r.Transport, r.Clients, r.Followers, r.Direct, r.ElapsedS, r.HeldMax)
	fmt.Fprintf(w, "turns %d (%.1f/s), tokens delivered %d (%.0f/s), frames %d (%.0f/s)\n",
		r.Turns, r.TurnsPerS, r.Tokens, r.TokensPerS, r.Frames, r.FramesPerS)
	fmt.Fprintf(w, "relay latency via storyd: %s\n", lat(r.Relay))
	fmt.Fprintf(w, "time to first token via storyd: %s\n", lat(r.TTFT))
	if b := r.Baseline; b != nil {
		fmt.Fprintf(w, "relay latency direct:     %s\n", lat(b.Relay))
		fmt.Fprintf(w, "time to first token direct:     %s\n", lat(b.TTFT))
		fmt.Fprintf(w, "added by storyd: p50 %s p90 %s p99 %s\n", us(r.Added.P50), us(r.Added.P90), us(r.Added.P99))
	}
	kinds := make([]string, 0, len(r.Errors))
	for k := range r.Errors {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	var parts []string
	for _, k := range kinds {
		parts = append(parts, fmt.Sprintf("%s %d", k, r.Errors[k]))
	}
	fmt.Fprintf(w, "errors: %s\n", orNone(strings.Join(parts, ", ")))
	if s := r.Storyd; s != nil {
		fmt.Fprintf(w, "storyd (pid %d): RSS %d KiB (peak %d KiB), CPU %.2f cores, %d threads, %d fds\n",
			s.PID, s.RSSKiB, s.PeakKiB, s.CPUCores, s.Threads, s.FDs)
	}
	return nil
}

func us(v float64) string {
	return time.Duration(v * 1e3).Round(time.Microsecond).String()
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
