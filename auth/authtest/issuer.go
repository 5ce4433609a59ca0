package authtest

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
)

const (
	// DefaultSubject is the "sub" of a token minted without Sub.
	DefaultSubject = "5f0c6d1e-8a3b-4c7d-9e2f-1a2b3c4d5e6f"
	// DefaultAudience is the "aud" of a token minted without Aud, as in
	// Supabase.
	DefaultAudience = "authenticated"
	// DefaultRole is the "role" of a token minted without Role.
	DefaultRole = "authenticated"
	// DefaultTTL is the lifetime of a token minted without an expiry
	// option; Supabase's default is one hour.
	DefaultTTL = time.Hour
	// JWKSPath is where the Issuer serves its JWKS, as Supabase does.
	JWKSPath = "/auth/v1/.well-known/jwks.json"
)

// Issuer is a fake Supabase Auth: an httptest server publishing a JWKS with
// an RSA (RS256, kid "rsa-1"), a P-256 (ES256, kid "ec-1") and an Ed25519
// (EdDSA, kid "ed-1") key, which mints tokens signed with them.
type Issuer struct {
	srv  *httptest.Server
	hits atomic.Int64

	mu      sync.Mutex
	keys    []*signingKey          // published, oldest first
	current map[string]*signingKey // key family ("RSA", "EC", "OKP") → signing key
	jwks    []byte                 // the JSON served
	failing bool
}

type signingKey struct {
	kid    string
	alg    string // the alg the JWKS binds the key to
	family string
	signer crypto.Signer
}

// NewIssuer starts an Issuer whose server is closed by t.Cleanup.
func NewIssuer(t testing.TB) *Issuer {
	t.Helper()
	i := &Issuer{current: map[string]*signingKey{}}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatalf("authtest: generate RSA key: %v", err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("authtest: generate EC key: %v", err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatalf("authtest: generate Ed25519 key: %v", err)
	}
	for _, k := range []*signingKey{
		{kid: "rsa-1", alg: "RS256", family: "RSA", signer: rsaKey},
		{kid: "ec-1", alg: "ES256", family: "EC", signer: ecKey},
		{kid: "ed-1", alg: "EdDSA", family: "OKP", signer: edKey},
	} {
		i.publishLocked(t, k)
	}
	i.srv = httptest.NewServer(http.HandlerFunc(i.serveHTTP))
	t.Cleanup(i.srv.Close)
	return i
}

// publishLocked adds k to the JWKS and makes it its family's signing key.
func (i *Issuer) publishLocked(t testing.TB, k *signingKey) {
	t.Helper()
	i.keys = append(i.keys, k)
	i.current[k.family] = k
	store := jwkset.NewMemoryStorage()
	ctx := context.Background()
	for _, k := range i.keys {
		jwk, err := jwkset.NewJWKFromKey(k.signer.Public(), jwkset.JWKOptions{
			Metadata: jwkset.JWKMetadataOptions{ALG: jwkset.ALG(k.alg), KID: k.kid, USE: jwkset.UseSig},
		})
		if err != nil {
			t.Fatalf("authtest: JWK for %s: %v", k.kid, err)
		}
		if err := store.KeyWrite(ctx, jwk); err != nil {
			t.Fatalf("authtest: JWK for %s: %v", k.kid, err)
		}
	}
	raw, err := store.JSONPublic(ctx)
	if err != nil {
		t.Fatalf("authtest: JWKS: %v", err)
	}
	i.jwks = raw
}

func (i *Issuer) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != JWKSPath {
		http.NotFound(w, r)
		return
	}
	i.hits.Add(1)
	i.mu.Lock()
	failing, body := i.failing, i.jwks
	i.mu.Unlock()
	if failing {
		http.Error(w, "unavailable", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

// URL is the base URL of the fake project, like $SUPABASE_URL.
func (i *Issuer) URL() string { return i.srv.URL }

// IssuerURL is the "iss" of minted tokens, like $SUPABASE_URL/auth/v1.
func (i *Issuer) IssuerURL() string { return i.srv.URL + "/auth/v1" }

// JWKSURL is where the JWKS is served.
func (i *Issuer) JWKSURL() string { return i.srv.URL + JWKSPath }

// Client is an HTTP client for the server; its connections are closed with
// the server, which keeps goroutine-leak checks quiet.
func (i *Issuer) Client() *http.Client { return i.srv.Client() }

// Hits counts the JWKS requests served so far, failed ones included.
func (i *Issuer) Hits() int { return int(i.hits.Load()) }

// SetFailing makes the JWKS endpoint answer 503 (true) or serve the keys
// again (false), to simulate a Supabase outage.
func (i *Issuer) SetFailing(failing bool) {
	i.mu.Lock()
	i.failing = failing
	i.mu.Unlock()
}

// Rotate publishes a new RSA key beside the old ones and signs RSA tokens
// with it from now on. It returns the new key's kid ("rsa-2", "rsa-3"…).
func (i *Issuer) Rotate(t testing.TB) string {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatalf("authtest: generate RSA key: %v", err)
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	n := 1
	for _, k := range i.keys {
		if k.family == "RSA" {
			n++
		}
	}
	k := &signingKey{kid: fmt.Sprintf("rsa-%d", n), alg: "RS256", family: "RSA", signer: key}
	i.publishLocked(t, k)
	return k.kid
}

// KeyID returns the kid Token currently uses for alg.
func (i *Issuer) KeyID(t testing.TB, alg string) string {
	t.Helper()
	return i.key(t, alg).kid
}

// PublicKey returns the public key published under kid, or nil. Tests of
// algorithm confusion use it as an HMAC secret.
func (i *Issuer) PublicKey(kid string) crypto.PublicKey {
	i.mu.Lock()
	defer i.mu.Unlock()
	for _, k := range i.keys {
		if k.kid == kid {
			return k.signer.Public()
		}
	}
	return nil
}

// key returns the current signing key for alg.
func (i *Issuer) key(t testing.TB, alg string) *signingKey {
	t.Helper()
	var family string
	switch alg {
	case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
		family = "RSA"
	case "ES256":
		family = "EC"
	case "EdDSA":
		family = "OKP"
	default:
		t.Fatalf("authtest: no key for alg %q (use Issuer.HS256 for HS256)", alg)
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.current[family]
}

// Token mints a token signed with the Issuer's current key for its alg
// (RS256 unless Alg says otherwise). Without options it is a valid token of
// a registered user: sub DefaultSubject, aud and role "authenticated",
// iss IssuerURL, iat now, exp now+DefaultTTL, is_anonymous false, kid the
// signing key's.
func (i *Issuer) Token(t testing.TB, opts ...Option) string {
	t.Helper()
	s := newSpec(opts)
	claims := s.build(i.IssuerURL())
	alg := s.alg
	if alg == "" {
		alg = "RS256"
	}
	if strings.EqualFold(alg, "none") {
		return unsigned(t, alg, s.kid, claims)
	}
	k := i.key(t, alg)
	kid := k.kid
	if s.kid != nil {
		kid = *s.kid
	}
	return sign(t, jwt.GetSigningMethod(alg), k.signer, kid, claims)
}

// HS256 mints a token signed with secret, as a legacy Supabase project
// does, with the same defaults and options as Token (Alg is ignored). It
// has no kid unless Kid sets one.
func (i *Issuer) HS256(t testing.TB, secret string, opts ...Option) string {
	t.Helper()
	s := newSpec(opts)
	kid := ""
	if s.kid != nil {
		kid = *s.kid
	}
	return sign(t, jwt.SigningMethodHS256, []byte(secret), kid, s.build(i.IssuerURL()))
}

func sign(t testing.TB, method jwt.SigningMethod, key any, kid string, claims map[string]any) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, jwt.MapClaims(claims))
	if kid != "" {
		tok.Header["kid"] = kid
	}
	signed, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("authtest: sign %s token: %v", method.Alg(), err)
	}
	return signed
}

// unsigned builds an "alg: none" token by hand: the JWT library refuses to
// spell "none" any other way.
func unsigned(t testing.TB, alg string, kid *string, claims map[string]any) string {
	t.Helper()
	header := map[string]any{"alg": alg, "typ": "JWT"}
	if kid != nil && *kid != "" {
		header["kid"] = *kid
	}
	h, err := json.Marshal(header)
	if err != nil {
		t.Fatalf("authtest: header: %v", err)
	}
	c, err := json.Marshal(claims)
	if err != nil {
		t.Fatalf("authtest: claims: %v", err)
	}
	enc := base64.RawURLEncoding
	return enc.EncodeToString(h) + "." + enc.EncodeToString(c) + "."
}
