package llm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	openai "github.com/sashabaranov/go-openai"
)

// Defaults applied by [NewOpenAI] to zero fields of [OpenAIConfig].
const (
	// DefaultTimeout bounds a whole streamed reply.
	DefaultTimeout = 2 * time.Minute
	// DefaultFirstTokenTimeout bounds the wait for the first token.
	DefaultFirstTokenTimeout = 30 * time.Second
	// DefaultMaxRetries is how many retries happen before the first token.
	DefaultMaxRetries = 3
	// DefaultRetryBaseDelay is the first backoff step.
	DefaultRetryBaseDelay = 500 * time.Millisecond
)

const (
	// maxRetryAfter caps how long a Retry-After header may make us wait.
	maxRetryAfter = 20 * time.Second
	// maxBackoff caps one exponential backoff step.
	maxBackoff = 10 * time.Second
)

// OpenAIConfig configures an [OpenAI] provider. Zero values select the
// documented defaults.
type OpenAIConfig struct {
	// BaseURL of the OpenAI-compatible API, including the version path, e.g.
	// https://api.openai.com/v1 or http://localhost:11434/v1 (Ollama).
	// Empty selects go-openai's default (api.openai.com).
	BaseURL string
	// APIKey is sent as a bearer token; it may be empty (Ollama, vLLM).
	APIKey string
	// Model names the chat model, e.g. gpt-4o-mini. Required.
	Model string
	// Timeout bounds one whole StreamChat call, retries and streaming
	// included. 0 selects DefaultTimeout.
	Timeout time.Duration
	// FirstTokenTimeout bounds the time until the first content token,
	// across all attempts and backoffs. 0 selects DefaultFirstTokenTimeout.
	FirstTokenTimeout time.Duration
	// MaxRetries is how many times a failed attempt is retried before the
	// first token (429, 5xx, connection errors). 0 selects
	// DefaultMaxRetries; a negative value disables retries.
	MaxRetries int
	// RetryBaseDelay is the base of the jittered exponential backoff.
	// 0 selects DefaultRetryBaseDelay. A 429's Retry-After (or
	// retry-after-ms) header wins when present, capped at 20s.
	RetryBaseDelay time.Duration
	// HTTPClient is used for requests; nil selects a plain http.Client.
	// Its Timeout should be zero: StreamChat enforces its own deadlines and
	// a client timeout would cut long streams.
	HTTPClient *http.Client
	// MaxTokens caps the reply length; 0 leaves it unset. For reasoning
	// models it is sent as max_completion_tokens.
	MaxTokens int
	// Temperature is sent when non-zero.
	Temperature float32
}

// OpenAI streams chat completions from an OpenAI-compatible endpoint with
// go-openai, retrying transient failures before the first token. It is safe
// for concurrent use.
type OpenAI struct {
	clientCfg         openai.ClientConfig // HTTPClient is replaced per attempt
	httpClient        *http.Client
	apiKey            string
	model             string
	maxTokens         int
	maxCompletionToks int
	temperature       float32
	timeout           time.Duration
	firstTokenTimeout time.Duration
	maxRetries        int
	retryBaseDelay    time.Duration

	// sleep waits d or until ctx ends; tests replace it to observe delays.
	sleep func(ctx context.Context, d time.Duration) error
}

// NewOpenAI validates cfg and returns a provider. It fails with an error
// matching [ErrInvalidConfig] when Model is empty, BaseURL is not an
// absolute http(s) URL, a duration is negative, or the model refuses the
// sampling settings.
func NewOpenAI(cfg OpenAIConfig) (*OpenAI, error) {
	model := strings.TrimSpace(cfg.Model)
	if model == "" {
		return nil, fmt.Errorf("%w: model is required", ErrInvalidConfig)
	}
	if cfg.Timeout < 0 || cfg.FirstTokenTimeout < 0 || cfg.RetryBaseDelay < 0 {
		return nil, fmt.Errorf("%w: durations must not be negative", ErrInvalidConfig)
	}
	if cfg.MaxTokens < 0 {
		return nil, fmt.Errorf("%w: max tokens must not be negative", ErrInvalidConfig)
	}
	clientCfg := openai.DefaultConfig(cfg.APIKey)
	if cfg.BaseURL != "" {
		u, err := url.Parse(cfg.BaseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			// The URL is not echoed: it could carry credentials.
			return nil, fmt.Errorf("%w: base URL must be an absolute http(s) URL", ErrInvalidConfig)
		}
		clientCfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	}
	o := &OpenAI{
		clientCfg:         clientCfg,
		httpClient:        cfg.HTTPClient,
		apiKey:            cfg.APIKey,
		model:             model,
		maxTokens:         cfg.MaxTokens,
		temperature:       cfg.Temperature,
		timeout:           orDefault(cfg.Timeout, DefaultTimeout),
		firstTokenTimeout: orDefault(cfg.FirstTokenTimeout, DefaultFirstTokenTimeout),
		maxRetries:        cfg.MaxRetries,
		retryBaseDelay:    orDefault(cfg.RetryBaseDelay, DefaultRetryBaseDelay),
		sleep:             sleepCtx,
	}
	if o.httpClient == nil {
		o.httpClient = &http.Client{}
	}
	switch {
	case cfg.MaxRetries == 0:
		o.maxRetries = DefaultMaxRetries
	case cfg.MaxRetries < 0:
		o.maxRetries = 0
	}
	// Reasoning models refuse max_tokens; go-openai checks that locally, so
	// move the cap to max_completion_tokens for them and check the rest now
	// rather than on every call.
	v := openai.NewReasoningValidator()
	req := o.request(nil)
	if err := v.Validate(req); errors.Is(err, openai.ErrReasoningModelMaxTokensDeprecated) ||
		errors.Is(err, openai.ErrO1MaxTokensDeprecated) {
		o.maxCompletionToks, o.maxTokens = o.maxTokens, 0
		req = o.request(nil)
	}
	if err := v.Validate(req); err != nil {
		return nil, fmt.Errorf("%w: model %s: %w", ErrInvalidConfig, model, err)
	}
	return o, nil
}

// Name identifies the provider in logs and metrics, e.g. "openai:gpt-4o-mini".
func (o *OpenAI) Name() string { return "openai:" + o.model }

// StreamChat sends msgs to the chat completions endpoint with stream=true and
// calls emit with each non-empty content delta as it arrives.
//
// Before the first delta was emitted, 429, 5xx and connection failures are
// retried with jittered exponential backoff (honouring Retry-After); after
// it, any failure is returned at once, so the caller keeps what it got and
// marks the reply partial. A stream that ends without [DONE] (or a finish
// reason) is an error with code [CodeStreamCut], never a success.
//
// If emit returns an error, streaming stops and that error is returned
// wrapped. If ctx ends, the upstream request is closed and the returned
// error wraps ctx.Err(). Upstream failures are [*Error] values; see [CodeOf].
func (o *OpenAI) StreamChat(ctx context.Context, msgs []Message, emit func(delta string) error) error {
	if len(msgs) == 0 {
		return ErrNoMessages
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("llm: %s: %w", o.Name(), err)
	}
	parent := ctx
	ctx, cancel := context.WithTimeoutCause(ctx, o.timeout, errReplyTimeout)
	defer cancel()
	// attemptCtx additionally ends at the first-token deadline, unless the
	// first token got through before it.
	attemptCtx, cancelAttempt := context.WithCancelCause(ctx)
	defer cancelAttempt(nil)
	gate := &firstTokenGate{}
	firstTokenDeadline := time.Now().Add(o.firstTokenTimeout)
	timer := time.AfterFunc(o.firstTokenTimeout, func() {
		gate.expire(func() { cancelAttempt(errFirstTokenTimeout) })
	})
	defer timer.Stop()

	req := o.request(msgs)
	emitted := false
	gatedEmit := func(delta string) error {
		if !emitted {
			if !gate.pass() {
				return context.Cause(attemptCtx)
			}
			emitted = true
		}
		if err := emit(delta); err != nil {
			return &emitError{err: err}
		}
		return nil
	}

	for attempt := 0; ; attempt++ {
		var rec attemptRecord
		err := o.attempt(attemptCtx, req, &rec, gatedEmit)
		if err == nil {
			return nil
		}
		if ee, ok := errors.AsType[*emitError](err); ok {
			return fmt.Errorf("llm: %s: emit: %w", o.Name(), ee.err)
		}
		if cerr := o.contextError(parent, attemptCtx); cerr != nil {
			return cerr
		}
		uerr, retryable := o.classify(err, &rec)
		if !retryable || emitted || attempt >= o.maxRetries {
			return uerr
		}
		delay := o.backoff(attempt)
		if uerr.Status == http.StatusTooManyRequests || uerr.Status == http.StatusServiceUnavailable {
			if ra, ok := retryAfter(rec.header); ok {
				delay = ra
			}
		}
		// Do not start a wait that cannot end before a deadline: report
		// what the upstream said instead of a timeout.
		deadline := firstTokenDeadline
		if d, ok := attemptCtx.Deadline(); ok && d.Before(deadline) {
			deadline = d
		}
		if time.Until(deadline) < delay {
			return uerr
		}
		if err := o.sleep(attemptCtx, delay); err != nil {
			if cerr := o.contextError(parent, attemptCtx); cerr != nil {
				return cerr
			}
			return uerr
		}
	}
}

// attempt makes one streaming request and pumps it into emit.
func (o *OpenAI) attempt(ctx context.Context, req openai.ChatCompletionRequest, rec *attemptRecord, emit func(string) error) error {
	cfg := o.clientCfg
	cfg.HTTPClient = &recordingDoer{client: o.httpClient, rec: rec}
	stream, err := openai.NewClientWithConfig(cfg).CreateChatCompletionStream(ctx, req)
	if err != nil {
		return err
	}
	defer stream.Close()
	rec.opened = true
	finished := false
	for chunks := 0; ; chunks++ {
		chunk, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			// go-openai reports [DONE] and a connection closed cleanly
			// without [DONE] both as io.EOF; the recorder tells them apart.
			if rec.sawDone.Load() || finished {
				return nil
			}
			if chunks == 0 && !strings.Contains(rec.header.Get("Content-Type"), "event-stream") {
				return errNotEventStream // e.g. a proxy that ignored stream=true
			}
			return errNoDone
		}
		if err != nil {
			return err
		}
		for _, ch := range chunk.Choices {
			if ch.Index != 0 {
				continue
			}
			if ch.Delta.Content != "" {
				if err := emit(ch.Delta.Content); err != nil {
					return err
				}
			}
			if ch.FinishReason != "" && ch.FinishReason != openai.FinishReasonNull {
				finished = true
			}
		}
	}
}

// contextError reports why the attempt context ended, if it did: the
// caller's cancellation (wrapping ctx.Err()) or one of our own deadlines.
func (o *OpenAI) contextError(parent, attemptCtx context.Context) error {
	if err := parent.Err(); err != nil {
		return fmt.Errorf("llm: %s: %w", o.Name(), err)
	}
	if attemptCtx.Err() == nil {
		return nil
	}
	// Only our own deadlines end attemptCtx while parent is alive; the
	// cause says which one.
	return &Error{Code: CodeUpstreamTimeout, Err: context.Cause(attemptCtx)}
}

// classify maps one failed attempt to a coded error and says whether it may
// be retried (provided nothing was emitted yet).
func (o *OpenAI) classify(err error, rec *attemptRecord) (*Error, bool) {
	err = redact(err, o.apiKey)
	status := 0
	if apiErr, ok := errors.AsType[*openai.APIError](err); ok {
		status = apiErr.HTTPStatusCode
	} else if reqErr, ok := errors.AsType[*openai.RequestError](err); ok {
		status = reqErr.HTTPStatusCode
	}
	if status == 0 && !rec.opened && rec.status >= http.StatusBadRequest {
		status = rec.status // e.g. the error body could not be read
	}
	switch {
	case status == http.StatusTooManyRequests:
		return &Error{Code: CodeRateLimited, Status: status, Err: err}, true
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return &Error{Code: CodeUpstreamAuth, Status: status, Err: err}, false
	case status >= 500:
		return &Error{Code: CodeUpstreamUnavailable, Status: status, Err: err}, true
	case status >= 400:
		return &Error{Code: CodeUpstreamRejected, Status: status, Err: err}, false
	}
	if !rec.called {
		// go-openai refused to build the request; nothing reached the wire.
		return &Error{Code: CodeUpstreamRejected, Err: err}, false
	}
	if isBadResponse(err) {
		return &Error{Code: CodeBadResponse, Err: err}, false
	}
	if rec.opened {
		// The stream started and then broke: an in-stream error event, a
		// cut connection, or an end without [DONE].
		return &Error{Code: CodeStreamCut, Err: err}, true
	}
	// Dial failures, resets, EOF before the response headers.
	return &Error{Code: CodeUpstreamUnavailable, Err: err}, true
}

func isBadResponse(err error) bool {
	if errors.Is(err, openai.ErrTooManyEmptyStreamMessages) || errors.Is(err, errNotEventStream) {
		return true
	}
	if _, ok := errors.AsType[*json.SyntaxError](err); ok {
		return true
	}
	_, ok := errors.AsType[*json.UnmarshalTypeError](err)
	return ok
}

// request builds the go-openai request for msgs.
func (o *OpenAI) request(msgs []Message) openai.ChatCompletionRequest {
	out := make([]openai.ChatCompletionMessage, len(msgs))
	for i, m := range msgs {
		out[i] = openai.ChatCompletionMessage{Role: m.Role, Content: m.Content}
	}
	return openai.ChatCompletionRequest{
		Model:               o.model,
		Messages:            out,
		Stream:              true,
		MaxTokens:           o.maxTokens,
		MaxCompletionTokens: o.maxCompletionToks,
		Temperature:         o.temperature,
	}
}

// backoff returns the jittered exponential delay before retry number
// attempt+1: uniformly in [d/2, d] with d = base·2^attempt, capped.
func (o *OpenAI) backoff(attempt int) time.Duration {
	d := o.retryBaseDelay
	for i := 0; i < attempt && d < maxBackoff; i++ {
		d *= 2
	}
	d = min(d, maxBackoff)
	half := d / 2
	if half <= 0 {
		return d
	}
	return half + rand.N(half+1)
}

// retryAfter reads retry-after-ms (OpenAI) or Retry-After (seconds, possibly
// fractional, or an HTTP date), capped at maxRetryAfter.
func retryAfter(h http.Header) (time.Duration, bool) {
	if h == nil {
		return 0, false
	}
	var d time.Duration
	if v := strings.TrimSpace(h.Get("Retry-After-Ms")); v != "" {
		ms, err := strconv.ParseFloat(v, 64)
		if err != nil || ms < 0 {
			return 0, false
		}
		d = time.Duration(ms * float64(time.Millisecond))
	} else if v := strings.TrimSpace(h.Get("Retry-After")); v != "" {
		if secs, err := strconv.ParseFloat(v, 64); err == nil {
			if secs < 0 {
				return 0, false
			}
			d = time.Duration(secs * float64(time.Second))
		} else if t, err := http.ParseTime(v); err == nil {
			d = max(time.Until(t), 0)
		} else {
			return 0, false
		}
	} else {
		return 0, false
	}
	return min(d, maxRetryAfter), true
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// firstTokenGate settles the race between the first token and the
// first-token deadline: exactly one of pass and expire wins.
type firstTokenGate struct {
	mu      sync.Mutex
	passed  bool
	expired bool
}

// pass records the first token; it reports false if the deadline won.
func (g *firstTokenGate) pass() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.expired {
		return false
	}
	g.passed = true
	return true
}

// expire runs cancel unless the first token won. cancel runs under the
// lock, so once pass reports false the attempt context is already done.
func (g *firstTokenGate) expire(cancel func()) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.passed {
		return
	}
	g.expired = true
	cancel()
}

// emitError marks an error returned by the caller's emit so it is passed
// through untouched instead of being classified as an upstream failure.
type emitError struct{ err error }

func (e *emitError) Error() string { return e.err.Error() }
func (e *emitError) Unwrap() error { return e.err }
