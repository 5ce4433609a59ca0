package llmtest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// DefaultTokens is the reply streamed when no scripted [Response] is queued.
func DefaultTokens() []string {
	return []string{"Hello", " from", " the", " fake", " model."}
}

// Response scripts the answer to one chat completions request. The zero
// value streams [DefaultTokens] with status 200.
type Response struct {
	// Status other than 0 and 200 answers with an OpenAI-shaped JSON error
	// body {"error":{"message","type","param","code"}}.
	Status int
	// RetryAfter, when set, is sent as the Retry-After header.
	RetryAfter string
	// Body, when set, is written verbatim instead of the generated body
	// (an error body, or a malformed stream), to test bad responses.
	Body string
	// Tokens are the content deltas, one chat.completion.chunk each. Nil
	// selects DefaultTokens; use an empty non-nil slice for an empty reply.
	Tokens []string
	// CutAfter > 0 abruptly closes the connection (hijack and close) after
	// that many token chunks, without a finish chunk or [DONE].
	CutAfter int
	// EndAfter > 0 ends the response cleanly after that many token chunks,
	// without a finish chunk or [DONE]: the body simply stops.
	EndAfter int
	// Hold, when non-nil, blocks before token chunk number HoldAt (0 = before
	// the first token; len(Tokens) = before the finish chunk) until it is
	// closed, the client goes away, or the test ends. A non-streaming answer
	// is held before it is written, whatever HoldAt says.
	Hold   chan struct{}
	HoldAt int
	// Delay is waited before each token and finish chunk (with a timer that
	// stops when the client goes away); once before a non-streaming answer.
	Delay time.Duration
	// FirstDelay, when set, is waited before the first token chunk instead
	// of Delay: the model's time to first token.
	FirstDelay time.Duration
	// Stamp replaces each token's text, at the moment its chunk is written,
	// with its send time: "w<unix nanoseconds> " (see [Stamp]). The text
	// survives any relay that forwards the content, so a client can compute
	// the latency of every chunk it receives ([ParseStamps]).
	Stamp bool
	// FinishReason replaces "stop" as the finish reason, e.g. "length" for
	// a truncated answer or "content_filter".
	FinishReason string
	// Refusal, when set, answers a non-streaming request with a refusal:
	// message.refusal holds it and message.content is null.
	Refusal string
	// PromptTokens and CompletionTokens, when non-zero, are reported in a
	// non-streaming answer's usage instead of the server's estimate.
	PromptTokens, CompletionTokens int
}

// Message is one chat message as received on the wire. Content holds the
// string content, or the raw JSON when the client sent content parts.
type Message struct {
	Role    string
	Content string
}

// Request is one request the server received, decoded.
type Request struct {
	Method string
	Path   string
	Header http.Header
	Body   []byte // raw JSON body

	Model               string
	Messages            []Message
	Stream              bool
	MaxTokens           int
	MaxCompletionTokens int
	Temperature         *float64
	ResponseFormat      json.RawMessage // as sent, nil when absent
}

// Server is a fake OpenAI-compatible API on a loopback httptest server.
type Server struct {
	srv     *httptest.Server
	closing chan struct{}

	mu        sync.Mutex
	queue     []Response
	responder func(Request) Response
	requests  []Request
	discard   bool // do not keep requests (a long-running mock)
	nextID    int
	gone      int
	changed   chan struct{} // closed and replaced whenever gone grows
}

// NewServer starts a fake server that is closed when the test ends.
func NewServer(t testing.TB) *Server {
	t.Helper()
	s := Start()
	t.Cleanup(s.Close)
	return s
}

// Start starts a fake server outside a test (a command that measures
// against a model, such as cmd/storyeval); the caller must Close it.
func Start() *Server {
	s := &Server{closing: make(chan struct{}), changed: make(chan struct{})}
	s.srv = httptest.NewServer(http.HandlerFunc(s.handle))
	return s
}

// Listen starts a fake server on addr (host:port; port 0 picks one), for
// a long-running mock such as `storyload mockllm`; the caller must Close it.
func Listen(addr string) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("llmtest: listen %s: %w", addr, err)
	}
	s := &Server{closing: make(chan struct{}), changed: make(chan struct{})}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.handle))
	_ = s.srv.Listener.Close()
	s.srv.Listener = ln
	s.srv.Start()
	return s, nil
}

// Close releases held replies and stops the server, waiting for the
// requests in flight. Call it once.
func (s *Server) Close() {
	close(s.closing) // release held replies before Close waits for them
	s.srv.Close()
}

// SetResponder makes the server compute the answer to each request that
// finds no scripted [Response] queued, e.g. a fake extraction model that
// answers from the prompt. f runs on the request's goroutine, possibly
// concurrently.
func (s *Server) SetResponder(f func(Request) Response) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.responder = f
}

// DiscardRequests stops keeping the requests received, so that a
// long-running mock does not grow; [Server.Requests] then returns none.
func (s *Server) DiscardRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.discard, s.requests = true, nil
}

// URL returns the API base URL including /v1, usable as a go-openai or
// llm.OpenAIConfig base URL.
func (s *Server) URL() string { return s.srv.URL + "/v1" }

// Client returns an HTTP client for the server.
func (s *Server) Client() *http.Client { return s.srv.Client() }

// Enqueue appends scripted responses; each request consumes one, in order.
func (s *Server) Enqueue(rs ...Response) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queue = append(s.queue, rs...)
}

// Requests returns a copy of the requests received so far, in arrival order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, len(s.requests))
	copy(out, s.requests)
	return out
}

// ClientsGone returns how many streaming responses were abandoned by their
// client (connection closed) before the server finished writing them.
func (s *Server) ClientsGone() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gone
}

// WaitClientGone blocks until at least one client went away before its
// response was finished, or ctx ends. It proves that a cancelled caller
// really closed the upstream request.
func (s *Server) WaitClientGone(ctx context.Context) error {
	for {
		s.mu.Lock()
		n, ch := s.gone, s.changed
		s.mu.Unlock()
		if n > 0 {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("llmtest: wait for client gone: %w", ctx.Err())
		}
	}
}

func (s *Server) markGone() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gone++
	close(s.changed)
	s.changed = make(chan struct{})
}

// next pops the next scripted response, or asks the responder, or returns
// the default one.
func (s *Server) next(req Request) (Response, string) {
	s.mu.Lock()
	s.nextID++
	id := fmt.Sprintf("chatcmpl-fake%06d", s.nextID)
	if len(s.queue) == 0 {
		f := s.responder
		s.mu.Unlock()
		if f != nil {
			return f(req), id
		}
		return Response{}, id
	}
	defer s.mu.Unlock()
	r := s.queue[0]
	s.queue = s.queue[1:]
	return r, id
}

type wireMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

type wireRequest struct {
	Model               string          `json:"model"`
	Messages            []wireMessage   `json:"messages"`
	Stream              bool            `json:"stream"`
	MaxTokens           int             `json:"max_tokens"`
	MaxCompletionTokens int             `json:"max_completion_tokens"`
	Temperature         *float64        `json:"temperature"`
	ResponseFormat      json.RawMessage `json:"response_format"`
}

func (s *Server) handle(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 8<<20))
	if err != nil {
		writeError(w, http.StatusBadRequest, "could not read body", "")
		return
	}
	rec := Request{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: body}
	var wr wireRequest
	decodeErr := json.Unmarshal(body, &wr)
	if decodeErr == nil {
		rec.Model, rec.Stream = wr.Model, wr.Stream
		rec.MaxTokens, rec.MaxCompletionTokens = wr.MaxTokens, wr.MaxCompletionTokens
		rec.Temperature, rec.ResponseFormat = wr.Temperature, wr.ResponseFormat
		for _, m := range wr.Messages {
			var text string
			if json.Unmarshal(m.Content, &text) != nil {
				text = string(m.Content)
			}
			rec.Messages = append(rec.Messages, Message{Role: m.Role, Content: text})
		}
	}
	s.mu.Lock()
	if !s.discard {
		s.requests = append(s.requests, rec)
	}
	s.mu.Unlock()

	switch {
	case r.URL.Path != "/v1/chat/completions":
		writeError(w, http.StatusNotFound, "Invalid URL ("+r.Method+" "+r.URL.Path+")", "")
		return
	case r.Method != http.MethodPost:
		writeError(w, http.StatusMethodNotAllowed, "Method not allowed.", "")
		return
	case decodeErr != nil:
		writeError(w, http.StatusBadRequest, "We could not parse the JSON body of your request.", "")
		return
	case wr.Model == "":
		writeError(w, http.StatusBadRequest, "you must provide a model parameter", "")
		return
	case len(wr.Messages) == 0:
		writeError(w, http.StatusBadRequest, "[] is too short - 'messages'", "")
		return
	}

	resp, id := s.next(rec)
	if resp.RetryAfter != "" {
		w.Header().Set("Retry-After", resp.RetryAfter)
	}
	if resp.Status != 0 && resp.Status != http.StatusOK {
		if resp.Body != "" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(resp.Status)
			_, _ = io.WriteString(w, resp.Body)
			return
		}
		msg, code := defaultError(resp.Status, wr.Model)
		writeError(w, resp.Status, msg, code)
		return
	}
	tokens := resp.Tokens
	if tokens == nil {
		tokens = DefaultTokens()
	}
	if !wr.Stream {
		s.complete(w, r, resp, id, wr, tokens)
		return
	}
	s.stream(w, r, resp, id, wr.Model, tokens)
}

// complete answers a non-streaming request with a chat.completion object,
// after Hold (whatever HoldAt says) and one Delay.
func (s *Server) complete(w http.ResponseWriter, r *http.Request, resp Response, id string, wr wireRequest, tokens []string) {
	if resp.Hold != nil {
		select {
		case <-resp.Hold:
		case <-r.Context().Done():
			s.markGone()
			return
		case <-s.closing:
			return
		}
	}
	if resp.Delay > 0 && !s.wait(r.Context(), resp.Delay) {
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if resp.Body != "" {
		_, _ = io.WriteString(w, resp.Body)
		return
	}
	prompt := 0
	for _, m := range wr.Messages {
		prompt += 4 + (len(m.Content)+3)/4
	}
	completionTokens := len(tokens)
	if resp.PromptTokens != 0 {
		prompt = resp.PromptTokens
	}
	if resp.CompletionTokens != 0 {
		completionTokens = resp.CompletionTokens
	}
	content := strings.Join(tokens, "")
	msg := completionMessage{Role: "assistant", Content: &content}
	if resp.Refusal != "" {
		refusal := resp.Refusal
		msg = completionMessage{Role: "assistant", Refusal: &refusal}
	}
	out := completion{
		ID: id, Object: "chat.completion", Created: time.Now().Unix(),
		Model: wr.Model, SystemFingerprint: "fp_fake",
		Choices: []completionChoice{{
			Index:        0,
			Message:      msg,
			FinishReason: finishReason(resp),
		}},
		Usage: usage{PromptTokens: prompt, CompletionTokens: completionTokens, TotalTokens: prompt + completionTokens},
	}
	_ = json.NewEncoder(w).Encode(out)
}

// stream answers a streaming request with server-sent events, one flushed
// chunk at a time, following the script in resp.
func (s *Server) stream(w http.ResponseWriter, r *http.Request, resp Response, id, model string, tokens []string) {
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("Connection", "keep-alive")
	w.WriteHeader(http.StatusOK)
	if resp.Body != "" {
		_, _ = io.WriteString(w, resp.Body)
		return
	}
	created := time.Now().Unix()
	send := func(payload string) bool {
		if _, err := io.WriteString(w, "data: "+payload+"\n\n"); err != nil {
			s.markGone()
			return false
		}
		if err := rc.Flush(); err != nil {
			s.markGone()
			return false
		}
		return true
	}
	chunkJSON := func(d delta, finish *string) string {
		b, _ := json.Marshal(chunk{
			ID: id, Object: "chat.completion.chunk", Created: created, Model: model,
			SystemFingerprint: "fp_fake",
			Choices:           []chunkChoice{{Index: 0, Delta: d, FinishReason: finish}},
		})
		return string(b)
	}
	empty := ""
	if !send(chunkJSON(delta{Role: "assistant", Content: &empty}, nil)) {
		return
	}
	for i := 0; i <= len(tokens); i++ {
		switch {
		case resp.CutAfter > 0 && i == resp.CutAfter:
			if conn, _, err := rc.Hijack(); err == nil {
				_ = conn.Close()
			}
			return
		case resp.EndAfter > 0 && i == resp.EndAfter:
			return
		}
		if resp.Hold != nil && i == resp.HoldAt {
			select {
			case <-resp.Hold:
			case <-r.Context().Done():
				s.markGone()
				return
			case <-s.closing:
				return
			}
		}
		delay := resp.Delay
		if i == 0 && resp.FirstDelay > 0 {
			delay = resp.FirstDelay
		}
		if delay > 0 && !s.wait(r.Context(), delay) {
			return
		}
		if i == len(tokens) {
			break
		}
		tok := tokens[i]
		if resp.Stamp {
			tok = Stamp(time.Now())
		}
		if !send(chunkJSON(delta{Content: &tok}, nil)) {
			return
		}
	}
	stop := finishReason(resp)
	if !send(chunkJSON(delta{}, &stop)) {
		return
	}
	send("[DONE]")
}

// finishReason is the scripted finish reason, "stop" by default.
func finishReason(resp Response) string {
	if resp.FinishReason != "" {
		return resp.FinishReason
	}
	return "stop"
}

// wait waits d; it reports false (and records a lost client when that is
// the reason) if the request or the server ends first.
func (s *Server) wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		s.markGone()
		return false
	case <-s.closing:
		return false
	}
}

func defaultError(status int, model string) (msg, code string) {
	switch {
	case status == http.StatusUnauthorized:
		return "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.", "invalid_api_key"
	case status == http.StatusForbidden:
		return "You are not allowed to sample from this model.", ""
	case status == http.StatusNotFound:
		return "The model `" + model + "` does not exist or you do not have access to it.", "model_not_found"
	case status == http.StatusTooManyRequests:
		return "Rate limit reached for requests. Please try again later.", "rate_limit_exceeded"
	case status >= 500:
		return "The server had an error while processing your request. Sorry about that!", ""
	}
	return "Invalid request.", ""
}

func errorType(status int) string {
	switch {
	case status == http.StatusTooManyRequests:
		return "requests"
	case status >= 500:
		return "server_error"
	}
	return "invalid_request_error"
}

func writeError(w http.ResponseWriter, status int, msg, code string) {
	var e apiError
	e.Error.Message, e.Error.Type = msg, errorType(status)
	if code != "" {
		e.Error.Code = &code
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(e)
}

type apiError struct {
	Error struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    *string `json:"code"`
	} `json:"error"`
}

type delta struct {
	Role    string  `json:"role,omitempty"`
	Content *string `json:"content,omitempty"`
}

type chunkChoice struct {
	Index        int             `json:"index"`
	Delta        delta           `json:"delta"`
	Logprobs     json.RawMessage `json:"logprobs"`
	FinishReason *string         `json:"finish_reason"`
}

type chunk struct {
	ID                string        `json:"id"`
	Object            string        `json:"object"`
	Created           int64         `json:"created"`
	Model             string        `json:"model"`
	SystemFingerprint string        `json:"system_fingerprint"`
	Choices           []chunkChoice `json:"choices"`
}

type completionMessage struct {
	Role    string  `json:"role"`
	Content *string `json:"content"`
	Refusal *string `json:"refusal"`
}

type completionChoice struct {
	Index        int               `json:"index"`
	Message      completionMessage `json:"message"`
	Logprobs     json.RawMessage   `json:"logprobs"`
	FinishReason string            `json:"finish_reason"`
}

type usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

type completion struct {
	ID                string             `json:"id"`
	Object            string             `json:"object"`
	Created           int64              `json:"created"`
	Model             string             `json:"model"`
	SystemFingerprint string             `json:"system_fingerprint"`
	Choices           []completionChoice `json:"choices"`
	Usage             usage              `json:"usage"`
}
