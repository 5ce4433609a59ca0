package auth_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/storyd/storyd/auth"
	"github.com/storyd/storyd/auth/authtest"
)

// t0 is the fixed "now" of the tests.
var t0 = time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)

const secret = "test-secret-with-at-least-32-bytes-of-entropy"

// clock is a controllable clock for Config.Now.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock(now time.Time) *clock { return &clock{now: now} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// config is the usual configuration against iss: JWKS, secret and issuer,
// at t0.
func config(iss *authtest.Issuer) auth.Config {
	return auth.Config{
		JWKSURL:     iss.JWKSURL(),
		HS256Secret: secret,
		Issuer:      iss.IssuerURL(),
		Now:         newClock(t0).Now,
		HTTPClient:  iss.Client(),
	}
}

// newVerifier builds a Verifier that is closed when the test ends.
func newVerifier(t *testing.T, cfg auth.Config) *auth.Verifier {
	t.Helper()
	v, err := auth.New(t.Context(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(v.Close)
	return v
}

// splice returns a token with a's header and signature and b's payload.
func splice(a, b string) string {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	return pa[0] + "." + pb[1] + "." + pa[2]
}

// flipSignature changes one character in the middle of the signature, where
// every bit counts (the last character may hold only padding bits).
func flipSignature(tok string) string {
	i := strings.LastIndex(tok, ".") + (len(tok)-strings.LastIndex(tok, "."))/2
	b := []byte(tok)
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}

// assertSafe fails if err's text contains the token or the secret.
func assertSafe(t *testing.T, err error, tok string) {
	t.Helper()
	if err == nil {
		return
	}
	msg := err.Error()
	if strings.Contains(msg, secret) {
		t.Errorf("error contains the secret: %q", msg)
	}
	for _, part := range strings.Split(tok, ".") {
		if len(part) >= 8 && strings.Contains(msg, part) {
			t.Errorf("error contains part of the token: %q", msg)
		}
	}
}
