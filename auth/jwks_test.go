package auth_test

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/storyd/storyd/auth"
	"github.com/storyd/storyd/auth/authtest"
)

// TestJWKSRotation: a token signed with a key published after start
// verifies once the unknown kid has triggered a refetch, and later tokens
// use the cache.
func TestJWKSRotation(t *testing.T) {
	iss := authtest.NewIssuer(t)
	v := newVerifier(t, config(iss))
	at := authtest.At(t0)
	if got := iss.Hits(); got != 1 {
		t.Fatalf("hits after New = %d, want 1", got)
	}
	old := iss.Token(t, at)
	kid := iss.Rotate(t)
	if kid == "rsa-1" {
		t.Fatalf("Rotate kept kid %q", kid)
	}
	rotated := iss.Token(t, at)

	steps := []struct {
		name     string
		token    string
		wantHits int
	}{
		{"old key still cached", old, 1},
		{"new kid refetches", rotated, 2},
		{"new key now cached", rotated, 2},
		{"old key still published", old, 2},
	}
	for _, s := range steps {
		if _, err := v.Verify(t.Context(), s.token); err != nil {
			t.Fatalf("%s: Verify: %v", s.name, err)
		}
		if got := iss.Hits(); got != s.wantHits {
			t.Fatalf("%s: hits = %d, want %d", s.name, got, s.wantHits)
		}
	}
}

// TestJWKSUnknownKIDRateLimited: tokens naming a kid that never existed
// cause at most one refetch per rate-limit window.
func TestJWKSUnknownKIDRateLimited(t *testing.T) {
	iss := authtest.NewIssuer(t)
	cfg := config(iss)
	cfg.RefreshRateLimit = time.Hour
	v := newVerifier(t, cfg)
	tok := iss.Token(t, authtest.At(t0), authtest.Kid("never-existed"))
	for i := range 20 {
		_, err := v.Verify(t.Context(), tok)
		if !errors.Is(err, auth.ErrInvalidToken) || auth.Reason(err) != "unknown signing key" {
			t.Fatalf("attempt %d: Verify error = %v, want unknown signing key", i, err)
		}
	}
	if got := iss.Hits(); got != 2 { // the initial fetch and one refetch
		t.Fatalf("hits = %d, want 2", got)
	}
	// The window is spent: even a real new key waits for the next one.
	iss.Rotate(t)
	_, err := v.Verify(t.Context(), iss.Token(t, authtest.At(t0)))
	if auth.Reason(err) != "unknown signing key" || iss.Hits() != 2 {
		t.Fatalf("Verify error = %v, hits = %d; want unknown signing key and 2 hits", err, iss.Hits())
	}
}

// TestJWKSUnavailable: storyd starts while the JWKS is down; tokens that
// need it fail with ErrUnavailable (not ErrInvalidToken) until a fetch
// succeeds, and HS256 tokens are unaffected.
func TestJWKSUnavailable(t *testing.T) {
	tests := []struct {
		name      string
		downAtNew bool
		rateLimit time.Duration
		steps     []struct {
			failing bool
			kid     string // "" = the current key
			want    error  // nil, ErrUnavailable or ErrInvalidToken
		}
	}{
		{
			name: "down at start, rate limited", downAtNew: true, rateLimit: time.Hour,
			steps: []struct {
				failing bool
				kid     string
				want    error
			}{
				{failing: true, want: auth.ErrUnavailable},
				{failing: false, want: auth.ErrUnavailable}, // back up, but no refetch allowed yet
			},
		},
		{
			name: "down at start, recovers", downAtNew: true, rateLimit: time.Nanosecond,
			steps: []struct {
				failing bool
				kid     string
				want    error
			}{
				{failing: true, want: auth.ErrUnavailable},
				{failing: false, want: nil},
				{failing: false, kid: "never-existed", want: auth.ErrInvalidToken},
			},
		},
		{
			name: "down after start", rateLimit: time.Nanosecond,
			steps: []struct {
				failing bool
				kid     string
				want    error
			}{
				{failing: true, want: nil}, // cached keys keep working
				{failing: true, kid: "never-existed", want: auth.ErrUnavailable},
				{failing: true, want: nil}, // a failed refetch keeps the cache
				{failing: false, kid: "never-existed", want: auth.ErrInvalidToken},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			iss := authtest.NewIssuer(t)
			iss.SetFailing(tt.downAtNew)
			cfg := config(iss)
			cfg.RefreshRateLimit = tt.rateLimit
			v := newVerifier(t, cfg)
			if _, err := v.Verify(t.Context(), iss.HS256(t, secret, authtest.At(t0))); err != nil {
				t.Fatalf("HS256 Verify: %v", err)
			}
			for i, s := range tt.steps {
				iss.SetFailing(s.failing)
				opts := []authtest.Option{authtest.At(t0)}
				if s.kid != "" {
					opts = append(opts, authtest.Kid(s.kid))
				}
				_, err := v.Verify(t.Context(), iss.Token(t, opts...))
				switch {
				case s.want == nil && err != nil:
					t.Fatalf("step %d: Verify: %v", i, err)
				case s.want != nil && !errors.Is(err, s.want):
					t.Fatalf("step %d: Verify error = %v, want %v", i, err, s.want)
				case errors.Is(err, auth.ErrUnavailable) && errors.Is(err, auth.ErrInvalidToken):
					t.Fatalf("step %d: %v is both unavailable and invalid", i, err)
				case errors.Is(err, auth.ErrUnavailable) && auth.Reason(err) != "authentication temporarily unavailable":
					t.Fatalf("step %d: Reason = %q", i, auth.Reason(err))
				}
			}
		})
	}
}

// syncBuffer is a bytes.Buffer safe for the refresh goroutine to log into.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestJWKSFailureLogged(t *testing.T) {
	iss := authtest.NewIssuer(t)
	iss.SetFailing(true)
	var buf syncBuffer
	cfg := config(iss)
	cfg.Logger = slog.New(slog.NewTextHandler(&buf, nil))
	newVerifier(t, cfg)
	if out := buf.String(); !strings.Contains(out, "JWKS fetch failed") || strings.Contains(out, secret) {
		t.Fatalf("log = %q, want one JWKS fetch warning without the secret", out)
	}
}
