package auth_test

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/storyd/storyd/auth"
	"github.com/storyd/storyd/auth/authtest"
)

func TestVerify(t *testing.T) {
	iss := authtest.NewIssuer(t)
	v := newVerifier(t, config(iss))
	at := authtest.At(t0)

	pub, err := x509.MarshalPKIXPublicKey(iss.PublicKey("rsa-1"))
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}))
	valid := iss.Token(t, at)
	other := iss.Token(t, at, authtest.Sub("00000000-0000-4000-8000-000000000001"))

	tests := []struct {
		name    string
		token   string
		wantErr error  // nil, auth.ErrInvalidToken or auth.ErrExpired
		reason  string // Reason(err)
		want    *auth.Claims
	}{
		// Accepted.
		{name: "RS256", token: valid, want: &auth.Claims{
			Subject: authtest.DefaultSubject, Role: "authenticated", ExpiresAt: t0.Add(time.Hour)}},
		{name: "ES256", token: iss.Token(t, at, authtest.Alg("ES256"))},
		{name: "EdDSA", token: iss.Token(t, at, authtest.Alg("EdDSA"))},
		{name: "HS256", token: iss.HS256(t, secret, at), want: &auth.Claims{
			Subject: authtest.DefaultSubject, Role: "authenticated", ExpiresAt: t0.Add(time.Hour)}},
		{name: "claims mapped, sub lower-cased", token: iss.Token(t, at,
			authtest.Sub("0B5C3F8E-2D7A-4C1E-9F3B-6A8D2E4C1B7F"), authtest.Email("a@b.c"),
			authtest.Anonymous(), authtest.Role("authenticated"), authtest.ExpiresIn(5*time.Minute)),
			want: &auth.Claims{Subject: "0b5c3f8e-2d7a-4c1e-9f3b-6a8d2e4c1b7f", Email: "a@b.c",
				Role: "authenticated", IsAnonymous: true, ExpiresAt: t0.Add(5 * time.Minute)}},
		{name: "aud array", token: iss.Token(t, at, authtest.Aud("other", "authenticated"))},
		{name: "exp past within leeway", token: iss.Token(t, at, authtest.ExpiresIn(-10*time.Second))},
		{name: "nbf future within leeway", token: iss.Token(t, at, authtest.NotBefore(t0.Add(10*time.Second)))},
		{name: "iat future within leeway", token: iss.Token(t, at, authtest.IssuedAt(t0.Add(10*time.Second)))},

		// Algorithm.
		{name: "alg none", token: iss.Token(t, at, authtest.Alg("none")),
			wantErr: auth.ErrInvalidToken, reason: "unsupported signing algorithm"},
		{name: "alg None", token: iss.Token(t, at, authtest.Alg("None")),
			wantErr: auth.ErrInvalidToken, reason: "unsupported signing algorithm"},
		{name: "alg none with kid", token: iss.Token(t, at, authtest.Alg("none"), authtest.Kid("rsa-1")),
			wantErr: auth.ErrInvalidToken, reason: "unsupported signing algorithm"},
		{name: "HS512 with the secret", token: hs512(t, secret),
			wantErr: auth.ErrInvalidToken, reason: "unsupported signing algorithm"},
		{name: "HS256 signed with the public key PEM", token: iss.HS256(t, pubPEM, at, authtest.Kid("rsa-1")),
			wantErr: auth.ErrInvalidToken, reason: "signature invalid"},
		{name: "HS256 signed with the public key DER", token: iss.HS256(t, string(pub), at, authtest.Kid("rsa-1")),
			wantErr: auth.ErrInvalidToken, reason: "signature invalid"},
		{name: "HS256 wrong secret", token: iss.HS256(t, strings.ToUpper(secret), at),
			wantErr: auth.ErrInvalidToken, reason: "signature invalid"},
		{name: "RS256 with kid of EC key", token: iss.Token(t, at, authtest.Kid("ec-1")),
			wantErr: auth.ErrInvalidToken, reason: "signing key mismatch"},
		{name: "RS384 with RS256 key", token: iss.Token(t, at, authtest.Alg("RS384")),
			wantErr: auth.ErrInvalidToken, reason: "signing key mismatch"},
		{name: "no kid", token: iss.Token(t, at, authtest.Kid("")),
			wantErr: auth.ErrInvalidToken, reason: "missing key id"},

		// Tampering.
		{name: "tampered payload", token: splice(valid, other),
			wantErr: auth.ErrInvalidToken, reason: "signature invalid"},
		{name: "tampered signature", token: flipSignature(valid),
			wantErr: auth.ErrInvalidToken, reason: "signature invalid"},
		{name: "signature removed", token: valid[:strings.LastIndex(valid, ".")+1],
			wantErr: auth.ErrInvalidToken, reason: "signature invalid"},
		{name: "tampered HS256 payload", token: splice(iss.HS256(t, secret, at), iss.HS256(t, secret, at, authtest.Role("service_role"))),
			wantErr: auth.ErrInvalidToken, reason: "signature invalid"},

		// Time.
		{name: "expired", token: iss.Token(t, at, authtest.ExpiresIn(-31*time.Second)),
			wantErr: auth.ErrExpired, reason: "token expired"},
		{name: "expired HS256", token: iss.HS256(t, secret, at, authtest.ExpiresIn(-time.Hour)),
			wantErr: auth.ErrExpired, reason: "token expired"},
		{name: "no exp", token: iss.Token(t, at, authtest.Without("exp")),
			wantErr: auth.ErrInvalidToken, reason: "missing required claim"},
		{name: "nbf future", token: iss.Token(t, at, authtest.NotBefore(t0.Add(31*time.Second))),
			wantErr: auth.ErrInvalidToken, reason: "token not valid yet"},
		{name: "iat future", token: iss.Token(t, at, authtest.IssuedAt(t0.Add(time.Hour))),
			wantErr: auth.ErrInvalidToken, reason: "token issued in the future"},

		// Audience, issuer, subject.
		{name: "wrong aud", token: iss.Token(t, at, authtest.Aud("anon")),
			wantErr: auth.ErrInvalidToken, reason: "audience mismatch"},
		{name: "wrong aud array", token: iss.Token(t, at, authtest.Aud("a", "b")),
			wantErr: auth.ErrInvalidToken, reason: "audience mismatch"},
		{name: "no aud", token: iss.Token(t, at, authtest.Aud()),
			wantErr: auth.ErrInvalidToken, reason: "missing required claim"},
		{name: "wrong iss", token: iss.Token(t, at, authtest.Iss("https://evil.example/auth/v1")),
			wantErr: auth.ErrInvalidToken, reason: "issuer mismatch"},
		{name: "no iss", token: iss.Token(t, at, authtest.Without("iss")),
			wantErr: auth.ErrInvalidToken, reason: "missing required claim"},
		{name: "no sub", token: iss.Token(t, at, authtest.Without("sub")),
			wantErr: auth.ErrInvalidToken, reason: "invalid subject"},
		{name: "sub not a UUID", token: iss.Token(t, at, authtest.Sub("user-1")),
			wantErr: auth.ErrInvalidToken, reason: "invalid subject"},
		{name: "sub UUID without dashes", token: iss.Token(t, at, authtest.Sub("0b5c3f8e2d7a4c1e9f3b6a8d2e4c1b7f")),
			wantErr: auth.ErrInvalidToken, reason: "invalid subject"},
		{name: "anon API key", token: iss.HS256(t, secret, at, authtest.Without("sub"), authtest.Role("anon"), authtest.Aud()),
			wantErr: auth.ErrInvalidToken},

		// Malformed.
		{name: "empty", token: "", wantErr: auth.ErrInvalidToken, reason: "missing token"},
		{name: "one segment", token: "abc", wantErr: auth.ErrInvalidToken, reason: "malformed token"},
		{name: "garbage segments", token: "a.b.c", wantErr: auth.ErrInvalidToken, reason: "malformed token"},
		{name: "bad base64", token: "!!!.x.y", wantErr: auth.ErrInvalidToken, reason: "malformed token"},
		{name: "four segments", token: valid + ".x", wantErr: auth.ErrInvalidToken, reason: "malformed token"},
		{name: "bearer prefix", token: "Bearer " + valid, wantErr: auth.ErrInvalidToken, reason: "malformed token"},
		{name: "huge", token: valid + strings.Repeat("A", 70<<10), wantErr: auth.ErrInvalidToken, reason: "malformed token"},
		{name: "sub of wrong type", token: iss.Token(t, at, authtest.Claim("sub", 42)),
			wantErr: auth.ErrInvalidToken, reason: "malformed token"},
		{name: "exp of wrong type", token: iss.Token(t, at, authtest.Claim("exp", "tomorrow")),
			wantErr: auth.ErrInvalidToken, reason: "malformed token"},
		{name: "is_anonymous of wrong type", token: iss.Token(t, at, authtest.Claim("is_anonymous", "no")),
			wantErr: auth.ErrInvalidToken, reason: "malformed token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := v.Verify(t.Context(), tt.token)
			assertSafe(t, err, tt.token)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if tt.want != nil && got != *tt.want {
					t.Errorf("claims = %+v, want %+v", got, *tt.want)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Verify error = %v, want %v", err, tt.wantErr)
			}
			if !errors.Is(err, auth.ErrInvalidToken) {
				t.Errorf("error %v does not wrap ErrInvalidToken", err)
			}
			if tt.wantErr != auth.ErrExpired && errors.Is(err, auth.ErrExpired) {
				t.Errorf("error %v wraps ErrExpired", err)
			}
			if errors.Is(err, auth.ErrUnavailable) {
				t.Errorf("error %v wraps ErrUnavailable", err)
			}
			if tt.reason != "" && auth.Reason(err) != tt.reason {
				t.Errorf("Reason = %q, want %q (error %v)", auth.Reason(err), tt.reason, err)
			}
			if got != (auth.Claims{}) {
				t.Errorf("claims = %+v on error, want zero", got)
			}
		})
	}
}

// hs512 signs a valid-looking token with HS512, which storyd does not accept.
func hs512(t *testing.T, key string) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS512, jwt.MapClaims{
		"sub": authtest.DefaultSubject, "aud": "authenticated", "exp": t0.Add(time.Hour).Unix(),
	}).SignedString([]byte(key))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestKeySources checks that each token goes to the one key source its alg
// names, and nowhere else.
func TestKeySources(t *testing.T) {
	iss := authtest.NewIssuer(t)
	at := authtest.At(t0)
	pub, err := x509.MarshalPKIXPublicKey(iss.PublicKey("rsa-1"))
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}))
	jwksOnly := func(c *auth.Config) { c.HS256Secret = "" }
	secretOnly := func(c *auth.Config) { c.JWKSURL = "" }

	tests := []struct {
		name   string
		cfg    func(*auth.Config)
		token  string
		reason string // "" when the token verifies
	}{
		{"JWKS only: RS256", jwksOnly, iss.Token(t, at), ""},
		{"JWKS only: HS256", jwksOnly, iss.HS256(t, secret, at), "unsupported signing algorithm"},
		{"JWKS only: HS256 signed with public key PEM", jwksOnly, iss.HS256(t, pubPEM, at, authtest.Kid("rsa-1")), "unsupported signing algorithm"},
		{"JWKS only: HS256 signed with public key DER", jwksOnly, iss.HS256(t, string(pub), at, authtest.Kid("rsa-1")), "unsupported signing algorithm"},
		{"secret only: HS256", secretOnly, iss.HS256(t, secret, at), ""},
		{"secret only: RS256", secretOnly, iss.Token(t, at), "unsupported signing algorithm"},
		{"secret only: ES256", secretOnly, iss.Token(t, at, authtest.Alg("ES256")), "unsupported signing algorithm"},
		{"secret only: none", secretOnly, iss.Token(t, at, authtest.Alg("none")), "unsupported signing algorithm"},
		{"both: RS256", func(*auth.Config) {}, iss.Token(t, at), ""},
		{"both: HS256", func(*auth.Config) {}, iss.HS256(t, secret, at), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := config(iss)
			tt.cfg(&cfg)
			v := newVerifier(t, cfg)
			_, err := v.Verify(t.Context(), tt.token)
			assertSafe(t, err, tt.token)
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				return
			}
			if !errors.Is(err, auth.ErrInvalidToken) || auth.Reason(err) != tt.reason {
				t.Fatalf("Verify error = %v (reason %q), want reason %q", err, auth.Reason(err), tt.reason)
			}
		})
	}
}

// TestVerifyAudienceAndLeewayConfig checks the configurable checks against
// their defaults.
func TestVerifyConfiguredChecks(t *testing.T) {
	iss := authtest.NewIssuer(t)
	at := authtest.At(t0)
	tests := []struct {
		name   string
		cfg    func(*auth.Config)
		token  string
		reason string
	}{
		{"custom audience accepted", func(c *auth.Config) { c.Audience = "storyd" }, iss.Token(t, at, authtest.Aud("storyd")), ""},
		{"custom audience rejects default", func(c *auth.Config) { c.Audience = "storyd" }, iss.Token(t, at), "audience mismatch"},
		{"issuer unchecked when unset", func(c *auth.Config) { c.Issuer = "" }, iss.Token(t, at, authtest.Iss("anything")), ""},
		{"small leeway", func(c *auth.Config) { c.Leeway = time.Second }, iss.Token(t, at, authtest.ExpiresIn(-10*time.Second)), "token expired"},
		{"large leeway", func(c *auth.Config) { c.Leeway = time.Hour }, iss.Token(t, at, authtest.ExpiresIn(-10*time.Minute)), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := config(iss)
			tt.cfg(&cfg)
			v := newVerifier(t, cfg)
			_, err := v.Verify(t.Context(), tt.token)
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				return
			}
			if auth.Reason(err) != tt.reason {
				t.Fatalf("Verify error = %v, want reason %q", err, tt.reason)
			}
		})
	}
}

// TestVerifyExpiryOverTime is what a WebSocket sees: a token that was valid
// when the connection opened becomes ErrExpired once the clock passes its
// exp plus the leeway.
func TestVerifyExpiryOverTime(t *testing.T) {
	iss := authtest.NewIssuer(t)
	clk := newClock(t0)
	cfg := config(iss)
	cfg.Now = clk.Now
	v := newVerifier(t, cfg)
	tok := iss.Token(t, authtest.At(t0), authtest.ExpiresIn(time.Minute))

	steps := []struct {
		advance time.Duration
		wantErr error
	}{
		{0, nil},
		{time.Minute, nil},                      // at exp
		{auth.DefaultLeeway - time.Second, nil}, // within the leeway
		{time.Second, auth.ErrExpired},          // at exp + leeway: exp is exclusive
		{24 * time.Hour, auth.ErrExpired},       // long after
	}
	for _, s := range steps {
		clk.Advance(s.advance)
		c, err := v.Verify(t.Context(), tok)
		if !errors.Is(err, s.wantErr) || (s.wantErr == nil && err != nil) {
			t.Fatalf("at %v: Verify error = %v, want %v", clk.Now().Sub(t0), err, s.wantErr)
		}
		if err == nil && !c.ExpiresAt.Equal(t0.Add(time.Minute)) {
			t.Fatalf("ExpiresAt = %v, want %v", c.ExpiresAt, t0.Add(time.Minute))
		}
	}
}

func TestVerifyConcurrent(t *testing.T) {
	iss := authtest.NewIssuer(t)
	v := newVerifier(t, config(iss))
	toks := []string{
		iss.Token(t, authtest.At(t0)),
		iss.Token(t, authtest.At(t0), authtest.Alg("ES256")),
		iss.HS256(t, secret, authtest.At(t0)),
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8*len(toks))
	for range 8 {
		for _, tok := range toks {
			wg.Go(func() {
				if _, err := v.Verify(t.Context(), tok); err != nil {
					errs <- err
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestVerifyCancelledContext(t *testing.T) {
	iss := authtest.NewIssuer(t)
	v := newVerifier(t, config(iss))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := v.Verify(ctx, iss.Token(t, authtest.At(t0), authtest.Kid("unknown")))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Verify error = %v, want context.Canceled", err)
	}
	if errors.Is(err, auth.ErrInvalidToken) || errors.Is(err, auth.ErrUnavailable) {
		t.Fatalf("Verify error = %v, want neither invalid nor unavailable", err)
	}
}
