package llm

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

func TestErrorCodesAndSentinels(t *testing.T) {
	tests := []struct {
		code     string
		sentinel error
	}{
		{CodeRateLimited, ErrRateLimited},
		{CodeUpstreamUnavailable, ErrUpstreamUnavailable},
		{CodeUpstreamTimeout, ErrUpstreamTimeout},
		{CodeUpstreamAuth, ErrUpstreamAuth},
		{CodeUpstreamRejected, ErrUpstreamRejected},
		{CodeStreamCut, ErrStreamCut},
		{CodeBadResponse, ErrBadResponse},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			err := fmt.Errorf("session x: %w", &Error{Code: tt.code, Status: 500, Err: errors.New("boom")})
			if CodeOf(err) != tt.code {
				t.Errorf("CodeOf = %q", CodeOf(err))
			}
			if !errors.Is(err, tt.sentinel) {
				t.Errorf("errors.Is(err, %v) = false", tt.sentinel)
			}
			for _, other := range tests {
				if other.code != tt.code && errors.Is(err, other.sentinel) {
					t.Errorf("also matches %v", other.sentinel)
				}
			}
		})
	}
	if CodeOf(nil) != "" || CodeOf(context.Canceled) != "" {
		t.Error("CodeOf of a non-*Error must be empty")
	}
	e := &Error{Code: CodeUpstreamAuth, Status: 401, Err: errors.New("nope")}
	if got, want := e.Error(), "llm: upstream_auth (status 401): nope"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestRedact(t *testing.T) {
	base := errors.New("bad key sk-123 given")
	err := redact(base, "sk-123")
	if err.Error() != "bad key [redacted] given" || !errors.Is(err, base) {
		t.Errorf("redact = %q", err)
	}
	if redact(base, "") != base {
		t.Error("empty secret must not wrap")
	}
}
