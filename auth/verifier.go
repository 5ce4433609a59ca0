package auth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/golang-jwt/jwt/v5"
)

// maxTokenLen bounds the work done on a token before its signature is
// checked. Supabase access tokens are a few kilobytes at most, even with
// large user metadata.
const maxTokenLen = 64 << 10

// Verifier checks access tokens. Build it with New; it is safe for
// concurrent use.
type Verifier struct {
	secret   []byte      // nil when HS256 is not configured
	hsParser *jwt.Parser // nil when HS256 is not configured
	jwks     *jwksSource // nil when no JWKS is configured
	pkParser *jwt.Parser // nil when no JWKS is configured
	cancel   context.CancelFunc
}

// New returns a Verifier for cfg. With a JWKS URL it fetches the JWKS once,
// blocking for at most cfg.FetchTimeout; a failed fetch does not fail New
// (see the package documentation), so storyd starts while Supabase is
// down. ctx bounds the background JWKS refresh: cancel it, or call Close,
// when the Verifier is no longer needed. It returns ErrNotConfigured when
// cfg names no key source and ErrInvalidConfig for an unusable cfg.
func New(ctx context.Context, cfg Config) (*Verifier, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("auth: new verifier: %w", err)
	}
	opts := []jwt.ParserOption{
		jwt.WithAudience(cfg.Audience),
		jwt.WithLeeway(cfg.Leeway),
		jwt.WithTimeFunc(cfg.Now),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	ctx, cancel := context.WithCancel(ctx)
	v := &Verifier{cancel: cancel}
	if cfg.HS256Secret != "" {
		v.secret = []byte(cfg.HS256Secret)
		v.hsParser = jwt.NewParser(append(opts, jwt.WithValidMethods([]string{"HS256"}))...)
	}
	if cfg.JWKSURL != "" {
		v.jwks, err = newJWKSSource(ctx, cfg)
		if err != nil {
			cancel()
			return nil, err
		}
		v.pkParser = jwt.NewParser(append(opts, jwt.WithValidMethods(asymmetricAlgs()))...)
	}
	return v, nil
}

// Close stops the background JWKS refresh, as cancelling New's ctx does;
// it does not wait for the goroutine to exit. Verify keeps working after
// Close with the keys already cached (an unknown "kid" still triggers a
// rate-limited refetch, bounded by Verify's ctx). Close is idempotent.
func (v *Verifier) Close() {
	v.cancel()
}

// supabaseClaims is the payload of a Supabase access token, as far as
// storyd reads it.
type supabaseClaims struct {
	jwt.RegisteredClaims
	Email       string `json:"email"`
	Role        string `json:"role"`
	IsAnonymous bool   `json:"is_anonymous"`
}

// Verify checks token (the bare JWT, without "Bearer ") and returns its
// claims. A rejected token yields an error wrapping ErrInvalidToken (and
// ErrExpired when it has expired); a token whose keys cannot be fetched
// yields ErrUnavailable; a cancelled ctx yields ctx's error. ctx bounds the
// JWKS refetch an unknown "kid" may trigger.
func (v *Verifier) Verify(ctx context.Context, token string) (Claims, error) {
	if token == "" {
		return Claims{}, invalid(reasonMissing, nil)
	}
	if len(token) > maxTokenLen {
		return Claims{}, invalid(reasonMalformed, fmt.Errorf("token longer than %d bytes", maxTokenLen))
	}
	alg, err := headerAlg(token)
	if err != nil {
		return Claims{}, invalid(reasonMalformed, err)
	}
	var (
		parser *jwt.Parser
		key    jwt.Keyfunc
	)
	switch {
	case alg == "HS256" && v.hsParser != nil:
		parser, key = v.hsParser, v.hmacKey
	case isAsymmetric(alg) && v.pkParser != nil:
		parser, key = v.pkParser, v.jwks.keyfunc(ctx)
	default:
		// "none", "None", an HS256 token without a secret, an RS256
		// token without a JWKS, and anything else.
		return Claims{}, invalid(reasonAlgorithm, fmt.Errorf("alg %q not accepted", alg))
	}
	var c supabaseClaims
	if _, err := parser.ParseWithClaims(token, &c, key); err != nil {
		return Claims{}, classify(ctx, err)
	}
	sub, err := canonicalUUID(c.Subject)
	if err != nil {
		return Claims{}, invalid(reasonSubject, err)
	}
	return Claims{
		Subject:     sub,
		Email:       c.Email,
		Role:        c.Role,
		IsAnonymous: c.IsAnonymous,
		ExpiresAt:   c.ExpiresAt.UTC(), // non-nil: exp is required
	}, nil
}

// hmacKey is the keyfunc of HS256 tokens. The parser already allows only
// HS256; the type check keeps the secret away from any other method even
// if that ever changed.
func (v *Verifier) hmacKey(t *jwt.Token) (any, error) {
	if _, ok := t.Method.(*jwt.SigningMethodHMAC); !ok {
		return nil, &keyError{reason: reasonAlgorithm}
	}
	return v.secret, nil
}

// headerAlg decodes just enough of token to route it to a key source.
func headerAlg(token string) (string, error) {
	header, _, ok := strings.Cut(token, ".")
	if !ok {
		return "", errors.New("not a JWT")
	}
	raw, err := base64.RawURLEncoding.DecodeString(header)
	if err != nil {
		return "", fmt.Errorf("header: %w", err)
	}
	var h struct {
		Alg string `json:"alg"`
	}
	if err := json.Unmarshal(raw, &h); err != nil {
		return "", fmt.Errorf("header: %w", err)
	}
	return h.Alg, nil
}

func isAsymmetric(alg string) bool {
	for _, a := range asymmetricAlgs() {
		if a == alg {
			return true
		}
	}
	return false
}

// classify maps an error from the JWT parser to this package's errors. The
// order matters where the parser reports several problems at once: a bad
// signature first (nothing else in the token can be trusted), then expiry,
// so a client told "expired" knows a refresh will help.
func classify(ctx context.Context, err error) error {
	var ke *keyError
	if errors.As(err, &ke) {
		if ke.unavailable {
			return fmt.Errorf("%w: %v", ErrUnavailable, ke.cause)
		}
		return invalid(ke.reason, ke.cause)
	}
	if ctxErr := ctx.Err(); ctxErr != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		return fmt.Errorf("auth: verify: %w", ctxErr)
	}
	reasons := []struct {
		is     error
		reason string
	}{
		{jwt.ErrTokenMalformed, reasonMalformed},
		{jwt.ErrTokenUnverifiable, reasonSignature},
		{jwt.ErrTokenSignatureInvalid, reasonSignature},
		{jwt.ErrTokenExpired, reasonExpired},
		{jwt.ErrTokenNotValidYet, reasonNotYetValid},
		{jwt.ErrTokenUsedBeforeIssued, reasonIssuedFuture},
		{jwt.ErrTokenRequiredClaimMissing, reasonMissingClaim},
		{jwt.ErrTokenInvalidAudience, reasonAudience},
		{jwt.ErrTokenInvalidIssuer, reasonIssuer},
	}
	for _, r := range reasons {
		if errors.Is(err, r.is) {
			if r.reason == reasonExpired {
				return expired(err)
			}
			return invalid(r.reason, err)
		}
	}
	return invalid(reasonInvalid, err)
}
