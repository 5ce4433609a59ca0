package llm

import (
	"errors"
	"fmt"
	"strings"
)

// Error codes carried by [Error]. They are stable and sent to clients, so
// they never change meaning once released.
const (
	// CodeRateLimited means the upstream kept answering 429 after all retries.
	CodeRateLimited = "rate_limited"
	// CodeUpstreamUnavailable means 5xx answers or connection failures after all retries.
	CodeUpstreamUnavailable = "upstream_unavailable"
	// CodeUpstreamTimeout means the first token or the whole reply took longer than allowed.
	CodeUpstreamTimeout = "upstream_timeout"
	// CodeUpstreamAuth means the upstream refused the credentials (401 or 403).
	CodeUpstreamAuth = "upstream_auth"
	// CodeUpstreamRejected means the upstream refused the request (any other 4xx).
	CodeUpstreamRejected = "upstream_rejected"
	// CodeStreamCut means the stream broke after it had started: an error
	// event, a cut connection, or an end without [DONE].
	CodeStreamCut = "upstream_stream_cut"
	// CodeBadResponse means the upstream answered something that is not a
	// valid chat completion stream.
	CodeBadResponse = "upstream_bad_response"
)

// Sentinel errors. Each code of [Error] matches its sentinel under
// errors.Is, so callers can write errors.Is(err, llm.ErrRateLimited).
var (
	// ErrRateLimited matches errors with code [CodeRateLimited].
	ErrRateLimited = errors.New("llm: rate limited")
	// ErrUpstreamUnavailable matches errors with code [CodeUpstreamUnavailable].
	ErrUpstreamUnavailable = errors.New("llm: upstream unavailable")
	// ErrUpstreamTimeout matches errors with code [CodeUpstreamTimeout].
	ErrUpstreamTimeout = errors.New("llm: upstream timeout")
	// ErrUpstreamAuth matches errors with code [CodeUpstreamAuth].
	ErrUpstreamAuth = errors.New("llm: upstream refused credentials")
	// ErrUpstreamRejected matches errors with code [CodeUpstreamRejected].
	ErrUpstreamRejected = errors.New("llm: upstream rejected request")
	// ErrStreamCut matches errors with code [CodeStreamCut].
	ErrStreamCut = errors.New("llm: upstream stream cut")
	// ErrBadResponse matches errors with code [CodeBadResponse].
	ErrBadResponse = errors.New("llm: bad upstream response")

	// ErrInvalidConfig is returned by constructors given an unusable configuration.
	ErrInvalidConfig = errors.New("llm: invalid config")
	// ErrNoMessages is returned by StreamChat when called without messages
	// (a caller bug, not an upstream failure, so it carries no code).
	ErrNoMessages = errors.New("llm: no messages")
)

// Internal causes, wrapped inside an [Error] to say what exactly happened.
var (
	errFirstTokenTimeout = errors.New("no first token before the deadline")
	errReplyTimeout      = errors.New("reply not finished before the deadline")
	errNoDone            = errors.New("stream ended without [DONE]")
	errNotEventStream    = errors.New("response is not an event stream")
)

// Error is an upstream failure with a stable code for clients. Status is the
// upstream's HTTP error status when it answered with one (0 otherwise). Err is the cause; its
// text never contains the API key.
type Error struct {
	Code   string
	Status int
	Err    error
}

// Error returns "llm: <code> (status N): <cause>".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("llm: ")
	b.WriteString(e.Code)
	if e.Status != 0 {
		fmt.Fprintf(&b, " (status %d)", e.Status)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is the sentinel of e's code, so that
// errors.Is(err, ErrRateLimited) works without errors.As.
func (e *Error) Is(target error) bool {
	s := sentinelOf(e.Code)
	return s != nil && target == s
}

// CodeOf returns the code of the first [*Error] in err's chain, or "" when
// there is none (nil, caller cancellation, emit errors, config errors).
func CodeOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

func sentinelOf(code string) error {
	switch code {
	case CodeRateLimited:
		return ErrRateLimited
	case CodeUpstreamUnavailable:
		return ErrUpstreamUnavailable
	case CodeUpstreamTimeout:
		return ErrUpstreamTimeout
	case CodeUpstreamAuth:
		return ErrUpstreamAuth
	case CodeUpstreamRejected:
		return ErrUpstreamRejected
	case CodeStreamCut:
		return ErrStreamCut
	case CodeBadResponse:
		return ErrBadResponse
	}
	return nil
}

// redactedError hides a secret from an upstream error's text while keeping
// the original in the chain for errors.Is/As.
type redactedError struct {
	msg string
	err error
}

func (r *redactedError) Error() string { return r.msg }
func (r *redactedError) Unwrap() error { return r.err }

// redact returns err with every occurrence of secret removed from its text.
func redact(err error, secret string) error {
	if err == nil || secret == "" || !strings.Contains(err.Error(), secret) {
		return err
	}
	return &redactedError{msg: strings.ReplaceAll(err.Error(), secret, "[redacted]"), err: err}
}
