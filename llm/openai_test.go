package llm

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/storyd/storyd/llm/llmtest"
)

const testKey = "sk-test-secret-key"

func newTestOpenAI(t *testing.T, baseURL string, mod func(*OpenAIConfig)) *OpenAI {
	t.Helper()
	cfg := OpenAIConfig{
		BaseURL:        baseURL,
		APIKey:         testKey,
		Model:          "gpt-4o-mini",
		MaxRetries:     2,
		RetryBaseDelay: time.Millisecond,
	}
	if mod != nil {
		mod(&cfg)
	}
	o, err := NewOpenAI(cfg)
	if err != nil {
		t.Fatalf("NewOpenAI: %v", err)
	}
	return o
}

func testMessages() []Message {
	return []Message{
		{Role: RoleSystem, Content: InterviewerPrompt},
		{Role: RoleUser, Content: "It's about my grandmother."},
	}
}

// collect runs StreamChat and returns the emitted deltas.
func collect(ctx context.Context, o *OpenAI) ([]string, error) {
	var got []string
	err := o.StreamChat(ctx, testMessages(), func(d string) error {
		got = append(got, d)
		return nil
	})
	return got, err
}

// sse builds a raw event-stream body from data payloads.
func sse(payloads ...string) string {
	var b strings.Builder
	for _, p := range payloads {
		b.WriteString("data: " + p + "\n\n")
	}
	return b.String()
}

const (
	roleChunk    = `{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}`
	helloChunk   = `{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"hello"},"finish_reason":null}]}`
	finishChunk  = `{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`
	errorEvent   = `{"error":{"message":"The server is overloaded","type":"server_error","param":null,"code":null}}`
	keyInMessage = `{"error":{"message":"Incorrect API key provided: ` + testKey + `.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`
)

func TestOpenAIStreamOutcomes(t *testing.T) {
	abc := []string{"a", "b", "c"}
	tests := []struct {
		name      string
		responses []llmtest.Response
		want      []string // emitted deltas
		wantCode  string
		wantReqs  int
	}{
		{name: "normal stream", want: llmtest.DefaultTokens(), wantReqs: 1},
		{name: "empty reply", responses: []llmtest.Response{{Tokens: []string{}}}, want: nil, wantReqs: 1},
		{
			name:      "429 then success is retried",
			responses: []llmtest.Response{{Status: 429}, {Tokens: abc}},
			want:      abc, wantReqs: 2,
		},
		{
			name:      "503 then 500 then success",
			responses: []llmtest.Response{{Status: 503}, {Status: 500}, {Tokens: abc}},
			want:      abc, wantReqs: 3,
		},
		{
			name:      "persistent 500 gives up after MaxRetries",
			responses: []llmtest.Response{{Status: 500}, {Status: 500}, {Status: 500}, {Tokens: abc}},
			wantCode:  CodeUpstreamUnavailable, wantReqs: 3,
		},
		{
			name:      "persistent 429 is rate_limited",
			responses: []llmtest.Response{{Status: 429}, {Status: 429}, {Status: 429}, {Tokens: abc}},
			wantCode:  CodeRateLimited, wantReqs: 3,
		},
		{
			name:      "401 is not retried",
			responses: []llmtest.Response{{Status: 401}, {Tokens: abc}},
			wantCode:  CodeUpstreamAuth, wantReqs: 1,
		},
		{
			name:      "403 is not retried",
			responses: []llmtest.Response{{Status: 403}, {Tokens: abc}},
			wantCode:  CodeUpstreamAuth, wantReqs: 1,
		},
		{
			name:      "400 is rejected",
			responses: []llmtest.Response{{Status: 400}, {Tokens: abc}},
			wantCode:  CodeUpstreamRejected, wantReqs: 1,
		},
		{
			name:      "404 is rejected",
			responses: []llmtest.Response{{Status: 404}, {Tokens: abc}},
			wantCode:  CodeUpstreamRejected, wantReqs: 1,
		},
		{
			name:      "non-JSON 502 body is unavailable",
			responses: []llmtest.Response{{Status: 502, Body: "<html>bad gateway</html>"}, {Status: 502, Body: "x"}, {Status: 502, Body: "x"}},
			wantCode:  CodeUpstreamUnavailable, wantReqs: 3,
		},
		{
			name:      "connection cut mid-stream keeps tokens and is not retried",
			responses: []llmtest.Response{{Tokens: abc, CutAfter: 2}, {Tokens: abc}},
			want:      []string{"a", "b"}, wantCode: CodeStreamCut, wantReqs: 1,
		},
		{
			name:      "clean end without DONE after tokens is a cut",
			responses: []llmtest.Response{{Tokens: abc, EndAfter: 1}, {Tokens: abc}},
			want:      []string{"a"}, wantCode: CodeStreamCut, wantReqs: 1,
		},
		{
			name:      "end without DONE before any token is retried",
			responses: []llmtest.Response{{Body: sse(roleChunk)}, {Tokens: abc}},
			want:      abc, wantReqs: 2,
		},
		{
			name:      "error event mid-stream after tokens is a cut",
			responses: []llmtest.Response{{Body: sse(roleChunk, helloChunk, errorEvent)}, {Tokens: abc}},
			want:      []string{"hello"}, wantCode: CodeStreamCut, wantReqs: 1,
		},
		{
			name:      "error event before tokens is retried",
			responses: []llmtest.Response{{Body: sse(roleChunk, errorEvent)}, {Tokens: abc}},
			want:      abc, wantReqs: 2,
		},
		{
			name:      "DONE without finish_reason is success",
			responses: []llmtest.Response{{Body: sse(roleChunk, helloChunk, "[DONE]")}},
			want:      []string{"hello"}, wantReqs: 1,
		},
		{
			name:      "finish_reason without DONE is success",
			responses: []llmtest.Response{{Body: sse(roleChunk, helloChunk, finishChunk)}},
			want:      []string{"hello"}, wantReqs: 1,
		},
		{
			name:      "malformed chunk is a bad response",
			responses: []llmtest.Response{{Body: sse("{not json")}, {Tokens: abc}},
			wantCode:  CodeBadResponse, wantReqs: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := llmtest.NewServer(t)
			s.Enqueue(tt.responses...)
			o := newTestOpenAI(t, s.URL(), nil)
			got, err := collect(t.Context(), o)
			if !slices.Equal(got, tt.want) {
				t.Errorf("emitted %q, want %q", got, tt.want)
			}
			if code := CodeOf(err); code != tt.wantCode {
				t.Errorf("code %q, want %q (err: %v)", code, tt.wantCode, err)
			}
			if (err != nil) != (tt.wantCode != "") {
				t.Errorf("err = %v, want code %q", err, tt.wantCode)
			}
			if n := len(s.Requests()); n != tt.wantReqs {
				t.Errorf("%d requests, want %d", n, tt.wantReqs)
			}
		})
	}
}

func TestOpenAIRequestShape(t *testing.T) {
	s := llmtest.NewServer(t)
	o := newTestOpenAI(t, s.URL(), func(c *OpenAIConfig) { c.MaxTokens = 321; c.Temperature = 0.5 })
	if _, err := collect(t.Context(), o); err != nil {
		t.Fatalf("StreamChat: %v", err)
	}
	reqs := s.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if r.Method != http.MethodPost || r.Path != "/v1/chat/completions" {
		t.Errorf("request %s %s", r.Method, r.Path)
	}
	if got := r.Header.Get("Authorization"); got != "Bearer "+testKey {
		t.Errorf("Authorization %q", got)
	}
	if r.Model != "gpt-4o-mini" || !r.Stream {
		t.Errorf("model %q stream %v", r.Model, r.Stream)
	}
	if r.MaxTokens != 321 || r.Temperature == nil || *r.Temperature != 0.5 {
		t.Errorf("max_tokens %d temperature %v", r.MaxTokens, r.Temperature)
	}
	var want []llmtest.Message
	for _, m := range testMessages() {
		want = append(want, llmtest.Message{Role: m.Role, Content: m.Content})
	}
	if !slices.Equal(r.Messages, want) {
		t.Errorf("messages %+v, want %+v", r.Messages, want)
	}
}

func TestOpenAINoAPIKeySendsNoAuthorization(t *testing.T) {
	s := llmtest.NewServer(t)
	o := newTestOpenAI(t, s.URL(), func(c *OpenAIConfig) { c.APIKey = "" })
	if _, err := collect(t.Context(), o); err != nil {
		t.Fatalf("StreamChat: %v", err)
	}
	if h := s.Requests()[0].Header.Get("Authorization"); h != "" {
		t.Errorf("Authorization %q, want none", h)
	}
}

func TestOpenAIReasoningModelUsesMaxCompletionTokens(t *testing.T) {
	s := llmtest.NewServer(t)
	o := newTestOpenAI(t, s.URL(), func(c *OpenAIConfig) { c.Model = "o3-mini"; c.MaxTokens = 100 })
	if _, err := collect(t.Context(), o); err != nil {
		t.Fatalf("StreamChat: %v", err)
	}
	r := s.Requests()[0]
	if r.MaxTokens != 0 || r.MaxCompletionTokens != 100 {
		t.Errorf("max_tokens %d max_completion_tokens %d", r.MaxTokens, r.MaxCompletionTokens)
	}
}

func TestOpenAIRetryDelays(t *testing.T) {
	tests := []struct {
		name       string
		responses  []llmtest.Response
		ftt        time.Duration
		wantSleeps []time.Duration // exact; -1 means "a backoff step"
		wantCode   string
		wantReqs   int
	}{
		{
			name:       "Retry-After seconds is honoured",
			responses:  []llmtest.Response{{Status: 429, RetryAfter: "7"}, {}},
			wantSleeps: []time.Duration{7 * time.Second}, wantReqs: 2,
		},
		{
			name:       "fractional Retry-After",
			responses:  []llmtest.Response{{Status: 429, RetryAfter: "0.25"}, {}},
			wantSleeps: []time.Duration{250 * time.Millisecond}, wantReqs: 2,
		},
		{
			name:       "Retry-After is capped",
			responses:  []llmtest.Response{{Status: 429, RetryAfter: "120"}, {}},
			ftt:        time.Minute,
			wantSleeps: []time.Duration{maxRetryAfter}, wantReqs: 2,
		},
		{
			name:       "no Retry-After uses backoff",
			responses:  []llmtest.Response{{Status: 429}, {Status: 500}, {}},
			wantSleeps: []time.Duration{-1, -1}, wantReqs: 3,
		},
		{
			name:       "Retry-After beyond the first-token deadline gives up at once",
			responses:  []llmtest.Response{{Status: 429, RetryAfter: "15"}, {}},
			ftt:        5 * time.Second,
			wantSleeps: nil, wantCode: CodeRateLimited, wantReqs: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := llmtest.NewServer(t)
			s.Enqueue(tt.responses...)
			o := newTestOpenAI(t, s.URL(), func(c *OpenAIConfig) {
				c.RetryBaseDelay = 8 * time.Millisecond
				c.FirstTokenTimeout = tt.ftt
			})
			var mu sync.Mutex
			var sleeps []time.Duration
			o.sleep = func(ctx context.Context, d time.Duration) error {
				mu.Lock()
				defer mu.Unlock()
				sleeps = append(sleeps, d)
				return ctx.Err()
			}
			_, err := collect(t.Context(), o)
			if code := CodeOf(err); code != tt.wantCode {
				t.Fatalf("code %q, want %q (err: %v)", code, tt.wantCode, err)
			}
			if len(sleeps) != len(tt.wantSleeps) {
				t.Fatalf("slept %v, want %v", sleeps, tt.wantSleeps)
			}
			for i, want := range tt.wantSleeps {
				got := sleeps[i]
				if want == -1 {
					step := 8 * time.Millisecond << i
					if got < step/2 || got > step {
						t.Errorf("backoff %d = %v, want within [%v, %v]", i, got, step/2, step)
					}
				} else if got != want {
					t.Errorf("sleep %d = %v, want %v", i, got, want)
				}
			}
			if n := len(s.Requests()); n != tt.wantReqs {
				t.Errorf("%d requests, want %d", n, tt.wantReqs)
			}
		})
	}
}

func TestOpenAIConnectionRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	var attempts int
	o := newTestOpenAI(t, "http://"+addr+"/v1", func(c *OpenAIConfig) { c.MaxRetries = 2 })
	o.sleep = func(ctx context.Context, d time.Duration) error { attempts++; return nil }
	_, err = collect(t.Context(), o)
	if CodeOf(err) != CodeUpstreamUnavailable || !errors.Is(err, ErrUpstreamUnavailable) {
		t.Fatalf("err = %v, want upstream_unavailable", err)
	}
	if attempts != 2 {
		t.Errorf("%d retries, want 2", attempts)
	}
}

func TestOpenAIErrorsNeverContainKey(t *testing.T) {
	s := llmtest.NewServer(t)
	s.Enqueue(llmtest.Response{Status: 401, Body: keyInMessage})
	o := newTestOpenAI(t, s.URL(), nil)
	_, err := collect(t.Context(), o)
	if !errors.Is(err, ErrUpstreamAuth) {
		t.Fatalf("err = %v, want ErrUpstreamAuth", err)
	}
	if strings.Contains(err.Error(), testKey) {
		t.Errorf("error text leaks the key: %v", err)
	}
	var e *Error
	if !errors.As(err, &e) || e.Status != 401 {
		t.Errorf("err = %#v, want *Error with status 401", err)
	}
}

func TestOpenAICancelMidStreamClosesUpstream(t *testing.T) {
	s := llmtest.NewServer(t)
	hold := make(chan struct{}) // never released: only cancellation ends the request
	s.Enqueue(llmtest.Response{Tokens: []string{"a", "b", "c"}, Hold: hold, HoldAt: 1})
	o := newTestOpenAI(t, s.URL(), nil)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var got []string
	err := o.StreamChat(ctx, testMessages(), func(d string) error {
		got = append(got, d)
		cancel() // the caller goes away after the first token
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if CodeOf(err) != "" {
		t.Errorf("cancellation carries code %q", CodeOf(err))
	}
	if !slices.Equal(got, []string{"a"}) {
		t.Errorf("emitted %q", got)
	}
	waitCtx, waitCancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer waitCancel()
	if err := s.WaitClientGone(waitCtx); err != nil {
		t.Fatalf("server never saw the client go away: %v", err)
	}
	if len(s.Requests()) != 1 {
		t.Errorf("%d requests, want 1", len(s.Requests()))
	}
}

func TestOpenAIAlreadyCancelled(t *testing.T) {
	s := llmtest.NewServer(t)
	o := newTestOpenAI(t, s.URL(), nil)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := collect(ctx, o); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if n := len(s.Requests()); n != 0 {
		t.Errorf("%d requests, want 0", n)
	}
}

func TestOpenAITimeouts(t *testing.T) {
	tests := []struct {
		name   string
		holdAt int
		cfg    func(*OpenAIConfig)
		want   []string
	}{
		{
			name:   "first token timeout",
			holdAt: 0,
			cfg:    func(c *OpenAIConfig) { c.FirstTokenTimeout = 50 * time.Millisecond },
		},
		{
			name:   "whole reply timeout after first token",
			holdAt: 1,
			cfg:    func(c *OpenAIConfig) { c.Timeout = 500 * time.Millisecond },
			want:   []string{"a"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := llmtest.NewServer(t)
			hold := make(chan struct{}) // released by the server's cleanup
			s.Enqueue(llmtest.Response{Tokens: []string{"a", "b"}, Hold: hold, HoldAt: tt.holdAt})
			o := newTestOpenAI(t, s.URL(), tt.cfg)
			got, err := collect(t.Context(), o)
			if CodeOf(err) != CodeUpstreamTimeout || !errors.Is(err, ErrUpstreamTimeout) {
				t.Fatalf("err = %v, want upstream_timeout", err)
			}
			if errors.Is(err, context.Canceled) {
				t.Errorf("a timeout must not look like caller cancellation: %v", err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("emitted %q, want %q", got, tt.want)
			}
			waitCtx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			if err := s.WaitClientGone(waitCtx); err != nil {
				t.Fatalf("server never saw the client go away: %v", err)
			}
		})
	}
}

func TestOpenAICallerDeadline(t *testing.T) {
	s := llmtest.NewServer(t)
	s.Enqueue(llmtest.Response{Tokens: []string{"a"}, Hold: make(chan struct{}), HoldAt: 0})
	o := newTestOpenAI(t, s.URL(), nil)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err := collect(ctx, o)
	if !errors.Is(err, context.DeadlineExceeded) || CodeOf(err) != "" {
		t.Fatalf("err = %v, want the caller's context.DeadlineExceeded", err)
	}
}

func TestOpenAIEmitErrorStops(t *testing.T) {
	s := llmtest.NewServer(t)
	s.Enqueue(llmtest.Response{Tokens: []string{"a", "b", "c", "d"}})
	o := newTestOpenAI(t, s.URL(), nil)
	errStop := errors.New("subscriber gone")
	var got []string
	err := o.StreamChat(t.Context(), testMessages(), func(d string) error {
		got = append(got, d)
		if len(got) == 2 {
			return errStop
		}
		return nil
	})
	if !errors.Is(err, errStop) {
		t.Fatalf("err = %v, want errStop", err)
	}
	if CodeOf(err) != "" {
		t.Errorf("emit error carries code %q", CodeOf(err))
	}
	if !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("emitted %q", got)
	}
	if n := len(s.Requests()); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

func TestOpenAINoMessages(t *testing.T) {
	o := newTestOpenAI(t, "http://127.0.0.1:1/v1", nil)
	err := o.StreamChat(t.Context(), nil, func(string) error { return nil })
	if !errors.Is(err, ErrNoMessages) {
		t.Fatalf("err = %v, want ErrNoMessages", err)
	}
}

func TestNewOpenAIValidation(t *testing.T) {
	tests := []struct {
		name    string
		cfg     OpenAIConfig
		wantErr bool
	}{
		{name: "minimal", cfg: OpenAIConfig{Model: "gpt-4o-mini"}},
		{name: "ollama", cfg: OpenAIConfig{Model: "llama3", BaseURL: "http://localhost:11434/v1"}},
		{name: "trailing slash", cfg: OpenAIConfig{Model: "m", BaseURL: "https://api.openai.com/v1/"}},
		{name: "no model", cfg: OpenAIConfig{Model: " "}, wantErr: true},
		{name: "bad scheme", cfg: OpenAIConfig{Model: "m", BaseURL: "ftp://example.com/v1"}, wantErr: true},
		{name: "relative URL", cfg: OpenAIConfig{Model: "m", BaseURL: "api.openai.com/v1"}, wantErr: true},
		{name: "no host", cfg: OpenAIConfig{Model: "m", BaseURL: "http:///v1"}, wantErr: true},
		{name: "unparsable URL", cfg: OpenAIConfig{Model: "m", BaseURL: "http://[::1"}, wantErr: true},
		{name: "negative timeout", cfg: OpenAIConfig{Model: "m", Timeout: -time.Second}, wantErr: true},
		{name: "negative max tokens", cfg: OpenAIConfig{Model: "m", MaxTokens: -1}, wantErr: true},
		{name: "reasoning model refuses temperature", cfg: OpenAIConfig{Model: "o3-mini", Temperature: 0.5}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := NewOpenAI(tt.cfg)
			if tt.wantErr {
				if !errors.Is(err, ErrInvalidConfig) {
					t.Fatalf("err = %v, want ErrInvalidConfig", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("NewOpenAI: %v", err)
			}
			if o.Name() != "openai:"+tt.cfg.Model {
				t.Errorf("Name() = %q", o.Name())
			}
		})
	}
}

func TestNewOpenAIDefaults(t *testing.T) {
	o, err := NewOpenAI(OpenAIConfig{Model: "m", MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	if o.timeout != DefaultTimeout || o.firstTokenTimeout != DefaultFirstTokenTimeout ||
		o.retryBaseDelay != DefaultRetryBaseDelay || o.maxRetries != 0 {
		t.Errorf("defaults: %v %v %v %d", o.timeout, o.firstTokenTimeout, o.retryBaseDelay, o.maxRetries)
	}
	o, err = NewOpenAI(OpenAIConfig{Model: "m"})
	if err != nil {
		t.Fatal(err)
	}
	if o.maxRetries != DefaultMaxRetries {
		t.Errorf("maxRetries %d, want %d", o.maxRetries, DefaultMaxRetries)
	}
}

func TestRetryAfterParsing(t *testing.T) {
	tests := []struct {
		name   string
		header map[string]string
		want   time.Duration
		ok     bool
	}{
		{name: "none", ok: false},
		{name: "seconds", header: map[string]string{"Retry-After": "3"}, want: 3 * time.Second, ok: true},
		{name: "ms wins", header: map[string]string{"Retry-After": "3", "Retry-After-Ms": "150"}, want: 150 * time.Millisecond, ok: true},
		{name: "capped", header: map[string]string{"Retry-After": "3600"}, want: maxRetryAfter, ok: true},
		{name: "past date", header: map[string]string{"Retry-After": "Mon, 02 Jan 2006 15:04:05 GMT"}, want: 0, ok: true},
		{name: "garbage", header: map[string]string{"Retry-After": "soon"}, ok: false},
		{name: "negative", header: map[string]string{"Retry-After": "-1"}, ok: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tt.header {
				h.Set(k, v)
			}
			got, ok := retryAfter(h)
			if ok != tt.ok || got != tt.want {
				t.Errorf("retryAfter = %v, %v; want %v, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestOpenAINonStreamAnswerIsBadResponse(t *testing.T) {
	var mu sync.Mutex
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls++
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"id":"x","object":"chat.completion","choices":[]}`)
	}))
	defer srv.Close()
	o := newTestOpenAI(t, srv.URL+"/v1", nil)
	_, err := collect(t.Context(), o)
	if CodeOf(err) != CodeBadResponse {
		t.Fatalf("err = %v, want upstream_bad_response", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if calls != 1 {
		t.Errorf("%d calls, want 1", calls)
	}
}
