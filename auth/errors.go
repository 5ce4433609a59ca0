package auth

import (
	"errors"
	"fmt"
)

var (
	// ErrNotConfigured is returned by New when neither a JWKS URL nor an
	// HS256 secret is configured, so no token could ever verify.
	ErrNotConfigured = errors.New("auth: neither a JWKS URL nor an HS256 secret is configured")

	// ErrInvalidConfig is returned by New for a configuration that cannot
	// work: a malformed JWKS URL, a short secret, a negative duration.
	ErrInvalidConfig = errors.New("auth: invalid config")

	// ErrInvalidToken is wrapped by every rejection of a token: the caller
	// answers 401. Reason gives the client-safe detail.
	ErrInvalidToken = errors.New("auth: invalid token")

	// ErrExpired is wrapped by the rejection of an expired token. It wraps
	// ErrInvalidToken, so callers that do not care about expiry need not
	// test for it; a WebSocket uses it to ask the client for a fresh token.
	ErrExpired = fmt.Errorf("%w: token expired", ErrInvalidToken)

	// ErrUnavailable is returned by Verify when the signing keys a token
	// needs could not be fetched (the JWKS endpoint is down or unreachable).
	// It does not wrap ErrInvalidToken: the token may be fine, and the
	// caller should answer 503 rather than 401.
	ErrUnavailable = errors.New("auth: signing keys unavailable")
)

// Client-safe reasons carried by a tokenError.
const (
	reasonMissing       = "missing token"
	reasonMalformed     = "malformed token"
	reasonAlgorithm     = "unsupported signing algorithm"
	reasonSignature     = "signature invalid"
	reasonMissingKID    = "missing key id"
	reasonUnknownKID    = "unknown signing key"
	reasonKeyMismatch   = "signing key mismatch"
	reasonExpired       = "token expired"
	reasonNotYetValid   = "token not valid yet"
	reasonIssuedFuture  = "token issued in the future"
	reasonMissingClaim  = "missing required claim"
	reasonAudience      = "audience mismatch"
	reasonIssuer        = "issuer mismatch"
	reasonSubject       = "invalid subject"
	reasonInvalid       = "invalid token"
	reasonUnavailable   = "authentication temporarily unavailable"
	reasonNotConfigured = "authentication not configured"
	reasonFailed        = "authentication failed"
)

// tokenError is a rejected token: a client-safe reason, the sentinel it
// wraps (ErrInvalidToken or ErrExpired) and, for operators, the underlying
// cause. The cause is part of Error but not of the Unwrap chain, so callers
// never come to depend on the JWT library's errors.
type tokenError struct {
	reason string
	kind   error
	cause  error
}

// Error names the reason and, for operators, the cause.
func (e *tokenError) Error() string {
	msg := "auth: invalid token: " + e.reason
	if e.cause != nil {
		msg += ": " + e.cause.Error()
	}
	return msg
}

// Unwrap exposes ErrInvalidToken or ErrExpired, never the cause.
func (e *tokenError) Unwrap() error { return e.kind }

// invalid returns a rejection wrapping ErrInvalidToken.
func invalid(reason string, cause error) error {
	return &tokenError{reason: reason, kind: ErrInvalidToken, cause: cause}
}

// expired returns a rejection wrapping ErrExpired.
func expired(cause error) error {
	return &tokenError{reason: reasonExpired, kind: ErrExpired, cause: cause}
}

// Reason returns a short reason for err that is safe to send to a client,
// such as "token expired", "signature invalid" or "audience mismatch". It
// returns "" for a nil error and "authentication failed" for an error this
// package did not produce.
func Reason(err error) string {
	var te *tokenError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &te):
		return te.reason
	case errors.Is(err, ErrExpired):
		return reasonExpired
	case errors.Is(err, ErrInvalidToken):
		return reasonInvalid
	case errors.Is(err, ErrUnavailable):
		return reasonUnavailable
	case errors.Is(err, ErrNotConfigured):
		return reasonNotConfigured
	default:
		return reasonFailed
	}
}
