// Package auth verifies Supabase access tokens (JWTs) for storyd's HTTP and
// WebSocket endpoints.
//
// A [Verifier] accepts tokens signed with an asymmetric key published in a
// JWKS (RS256/384/512, PS256/384/512, ES256/384/512, EdDSA) and, for legacy
// Supabase projects, tokens signed with the shared HS256 secret. Each token
// is routed by its "alg" header to exactly one key source, and each source
// has its own allow-list of algorithms: an HS256 token is never checked
// against a JWKS key and an asymmetric token is never checked against the
// secret, so "alg": "none" and algorithm-confusion tokens are rejected.
//
// Every rejection wraps [ErrInvalidToken] (an expired token wraps
// [ErrExpired], which itself wraps ErrInvalidToken); [Reason] gives a short
// reason that is safe to show a client. Errors never contain the token or
// the secret. When signing keys cannot be fetched, Verify answers
// [ErrUnavailable] instead: the caller should answer 503, not 401.
//
// # JWKS fetching
//
// New fetches the JWKS once, waiting at most Config.FetchTimeout. If that
// fetch fails, New still succeeds so that storyd starts while Supabase is
// briefly down; tokens that need the JWKS then fail with ErrUnavailable until
// a fetch succeeds. A token whose "kid" is not cached triggers a refetch,
// limited to one per Config.RefreshRateLimit (measured on the wall clock, not
// Config.Now), so recovery after an outage and key rotation both take at most
// that long once tokens arrive. The cached keys are also refetched every
// Config.RefreshInterval in the background. A failed refetch keeps the keys
// already cached.
//
// # Concurrency
//
// A Verifier is safe for concurrent use by any number of goroutines. When a
// JWKS URL is configured, New starts one background refresh goroutine (owned
// by github.com/MicahParks/jwkset). It stops when the ctx given to New is
// cancelled or Close is called, whichever comes first; it exits promptly,
// but Close cannot wait for it because jwkset offers no way to join it.
// Verify may block for at most Config.FetchTimeout (or until its ctx ends)
// while an unknown "kid" triggers a refetch; it never blocks otherwise.
//
// The package never logs. Config.Logger, when set, receives one warning per
// failed JWKS fetch.
package auth
