package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"
)

// asymmetricAlgs lists the algorithms verified against JWKS keys.
func asymmetricAlgs() []string {
	return []string{
		"RS256", "RS384", "RS512",
		"PS256", "PS384", "PS512",
		"ES256", "ES384", "ES512",
		"EdDSA",
	}
}

// jwksSource resolves a token's "kid" to a public key from a remote JWKS and
// remembers whether the most recent fetch succeeded, so that a missing key
// can be told apart from an unreachable JWKS.
type jwksSource struct {
	url    string
	logger *slog.Logger
	cache  *jwkset.MemoryJWKSet // the keys of the last successful fetch
	kf     keyfunc.Keyfunc

	mu      sync.Mutex
	fetched bool  // the most recent fetch succeeded
	lastErr error // the error of the most recent fetch, if it failed
}

// newJWKSSource fetches the JWKS once (a failure is remembered, not
// returned) and starts jwkset's refresh goroutine, which ends with ctx.
func newJWKSSource(ctx context.Context, cfg Config) (*jwksSource, error) {
	s := &jwksSource{
		url:     cfg.JWKSURL,
		logger:  cfg.Logger,
		cache:   jwkset.NewMemoryStorage(),
		lastErr: errors.New("JWKS not fetched yet"),
	}
	remote, err := jwkset.NewStorageFromHTTP(cfg.JWKSURL, jwkset.HTTPClientStorageOptions{
		Client:                    cfg.HTTPClient,
		Ctx:                       ctx,
		HTTPTimeout:               cfg.FetchTimeout,
		NoErrorReturnFirstHTTPReq: true,
		RefreshErrorHandler:       s.fetchFailed,
		RefreshInterval:           cfg.RefreshInterval,
		Storage:                   observedStorage{MemoryJWKSet: s.cache, replaced: s.fetchSucceeded},
	})
	if err != nil {
		return nil, fmt.Errorf("auth: JWKS storage: %w", err)
	}
	client, err := jwkset.NewHTTPClient(jwkset.HTTPClientOptions{
		HTTPURLs: map[string]jwkset.Storage{cfg.JWKSURL: remote},
		// Bounds both the wait for the limiter and the refetch itself. A
		// waiter that would need longer fails at once, so at most one
		// request per window ever waits.
		RateLimitWaitMax:  cfg.FetchTimeout,
		RefreshUnknownKID: rate.NewLimiter(rate.Every(cfg.RefreshRateLimit), 1),
	})
	if err != nil {
		return nil, fmt.Errorf("auth: JWKS client: %w", err)
	}
	kf, err := keyfunc.New(keyfunc.Options{
		Ctx:     ctx,
		Storage: client,
		// A key marked for encryption never verifies a signature; a key
		// with no "use" may.
		UseWhitelist: []jwkset.USE{jwkset.UseSig, ""},
	})
	if err != nil {
		return nil, fmt.Errorf("auth: keyfunc: %w", err)
	}
	s.kf = kf
	return s, nil
}

// observedStorage is the in-memory key cache behind the remote JWKS. jwkset
// replaces its contents exactly when a fetch succeeds, which is how the
// source learns of success (failures arrive through RefreshErrorHandler).
type observedStorage struct {
	*jwkset.MemoryJWKSet
	replaced func()
}

// KeyReplaceAll stores the keys of a successful fetch and records the
// success.
func (o observedStorage) KeyReplaceAll(ctx context.Context, given []jwkset.JWK) error {
	if err := o.MemoryJWKSet.KeyReplaceAll(ctx, given); err != nil {
		return err
	}
	o.replaced()
	return nil
}

func (s *jwksSource) fetchSucceeded() {
	s.mu.Lock()
	s.fetched, s.lastErr = true, nil
	s.mu.Unlock()
}

func (s *jwksSource) fetchFailed(ctx context.Context, err error) {
	s.mu.Lock()
	s.fetched, s.lastErr = false, err
	s.mu.Unlock()
	if s.logger != nil {
		s.logger.WarnContext(ctx, "auth: JWKS fetch failed", "url", s.url, "error", err)
	}
}

// health reports whether the most recent fetch succeeded and, if not, why.
func (s *jwksSource) health() (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fetched, s.lastErr
}

// keyError is returned by the JWKS keyfunc when no usable key was found;
// Verify turns it into ErrUnavailable or a rejection.
type keyError struct {
	unavailable bool   // the JWKS could not be fetched
	reason      string // client-safe, when !unavailable
	cause       error
}

// Error describes the failed lookup.
func (e *keyError) Error() string {
	if e.unavailable {
		return "signing keys unavailable: " + e.cause.Error()
	}
	if e.cause == nil {
		return e.reason
	}
	return e.reason + ": " + e.cause.Error()
}

// keyfunc returns the jwt.Keyfunc for one Verify call: ctx bounds a refetch
// triggered by an unknown "kid". It only ever returns public keys of an
// asymmetric type, never a JWKS "oct" key.
func (s *jwksSource) keyfunc(ctx context.Context) jwt.Keyfunc {
	lookup := s.kf.KeyfuncCtx(ctx)
	return func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		if kid == "" {
			// Supabase always names the key; without a kid every
			// cached key would be tried and rotation never noticed.
			return nil, &keyError{reason: reasonMissingKID}
		}
		key, err := lookup(t)
		if err != nil {
			if ctxErr := ctx.Err(); ctxErr != nil {
				return nil, ctxErr
			}
			if _, cerr := s.cache.KeyRead(ctx, kid); cerr == nil {
				// The key exists but refused this token: its "alg"
				// or "use" does not fit.
				return nil, &keyError{reason: reasonKeyMismatch, cause: err}
			}
			if ok, fetchErr := s.health(); !ok {
				return nil, &keyError{unavailable: true, cause: fetchErr}
			}
			return nil, &keyError{reason: reasonUnknownKID}
		}
		switch key.(type) {
		case *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey:
			return key, nil
		default:
			return nil, &keyError{reason: reasonKeyMismatch, cause: fmt.Errorf("JWKS key %T is not a public key", key)}
		}
	}
}
