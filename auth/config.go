package auth

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"
)

// Defaults applied by New to zero Config fields.
const (
	// DefaultAudience is the "aud" Supabase puts in every user token,
	// anonymous sign-ins included.
	DefaultAudience = "authenticated"
	// DefaultLeeway absorbs clock skew between Supabase and storyd on
	// "exp", "nbf" and "iat" without meaningfully extending a token's life.
	DefaultLeeway = 30 * time.Second
	// DefaultRefreshInterval is how often the JWKS is refetched in the
	// background. Supabase publishes a new key well before it signs with
	// it, and an unknown "kid" triggers a refetch anyway, so this only
	// bounds how long a revoked key stays trusted.
	DefaultRefreshInterval = time.Hour
	// DefaultRefreshRateLimit is the minimum time between refetches caused
	// by an unknown "kid". It bounds both the load that forged tokens can
	// put on Supabase (two requests a minute per storyd) and how long a
	// rotated key or recovery after an outage takes to be noticed.
	DefaultRefreshRateLimit = 30 * time.Second
	// DefaultFetchTimeout bounds one JWKS request, and so how long New
	// and a Verify that triggers a refetch can block.
	DefaultFetchTimeout = 10 * time.Second
)

// minSecretLen is the shortest HS256 secret accepted; Supabase requires at
// least 32 characters, and a shorter secret can be brute-forced offline
// from any token.
const minSecretLen = 32

// Config configures a Verifier. At least one of JWKSURL and HS256Secret
// must be set; when both are, each token is checked against the source its
// "alg" header names.
type Config struct {
	// JWKSURL is the JWKS endpoint, such as
	// $SUPABASE_URL/auth/v1/.well-known/jwks.json; "" disables asymmetric
	// tokens.
	JWKSURL string
	// HS256Secret is the legacy Supabase JWT secret (SUPABASE_JWT_SECRET),
	// at least 32 bytes; "" disables HS256 tokens.
	HS256Secret string
	// Audience is the required "aud" (a string or one entry of an array);
	// "" means DefaultAudience.
	Audience string
	// Issuer, when non-empty, is the required "iss", such as
	// $SUPABASE_URL/auth/v1.
	Issuer string
	// Leeway is the clock skew allowed on "exp", "nbf" and "iat"; 0 means
	// DefaultLeeway.
	Leeway time.Duration
	// Now is the clock tokens are checked against; nil means time.Now.
	Now func() time.Time
	// HTTPClient fetches the JWKS; nil means http.DefaultClient.
	HTTPClient *http.Client
	// RefreshInterval is the period of the background JWKS refetch; 0
	// means DefaultRefreshInterval.
	RefreshInterval time.Duration
	// RefreshRateLimit is the minimum time between refetches triggered by
	// an unknown "kid"; 0 means DefaultRefreshRateLimit.
	RefreshRateLimit time.Duration
	// FetchTimeout bounds one JWKS request; 0 means DefaultFetchTimeout.
	FetchTimeout time.Duration
	// Logger, when non-nil, receives a warning for every failed JWKS
	// fetch. The package logs nothing else.
	Logger *slog.Logger
}

// withDefaults validates c and fills its zero fields.
func (c Config) withDefaults() (Config, error) {
	if c.JWKSURL == "" && c.HS256Secret == "" {
		return c, ErrNotConfigured
	}
	if c.JWKSURL != "" {
		u, err := url.Parse(c.JWKSURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return c, fmt.Errorf("%w: JWKS URL must be an absolute http(s) URL", ErrInvalidConfig)
		}
	}
	if c.HS256Secret != "" && len(c.HS256Secret) < minSecretLen {
		return c, fmt.Errorf("%w: HS256 secret must be at least %d bytes", ErrInvalidConfig, minSecretLen)
	}
	for _, d := range []struct {
		name string
		d    time.Duration
	}{
		{"leeway", c.Leeway},
		{"refresh interval", c.RefreshInterval},
		{"refresh rate limit", c.RefreshRateLimit},
		{"fetch timeout", c.FetchTimeout},
	} {
		if d.d < 0 {
			return c, fmt.Errorf("%w: negative %s", ErrInvalidConfig, d.name)
		}
	}
	if c.Audience == "" {
		c.Audience = DefaultAudience
	}
	if c.Leeway == 0 {
		c.Leeway = DefaultLeeway
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.RefreshInterval == 0 {
		c.RefreshInterval = DefaultRefreshInterval
	}
	if c.RefreshRateLimit == 0 {
		c.RefreshRateLimit = DefaultRefreshRateLimit
	}
	if c.FetchTimeout == 0 {
		c.FetchTimeout = DefaultFetchTimeout
	}
	return c, nil
}
