package auth

import (
	"errors"
	"time"

	"github.com/google/uuid"
)

// Claims is what storyd learns about the caller from a verified token.
type Claims struct {
	// Subject is the Supabase user id ("sub"), a UUID in canonical
	// lower-case form. Verify rejects a token whose "sub" is not a UUID,
	// such as Supabase's anon and service_role API keys.
	Subject string
	// Email is the "email" claim; it may be empty (anonymous users,
	// phone sign-ins).
	Email string
	// Role is the Supabase "role" claim, normally "authenticated".
	Role string
	// IsAnonymous is the Supabase "is_anonymous" claim: true for a user
	// created by an anonymous sign-in.
	IsAnonymous bool
	// ExpiresAt is the token's "exp". A long-lived connection, such as a
	// WebSocket, must ask for a fresh token by then.
	ExpiresAt time.Time
}

// canonicalUUID accepts only the 36-character textual form of a UUID and
// returns it in lower case.
func canonicalUUID(s string) (string, error) {
	if s == "" {
		return "", errors.New("no sub claim")
	}
	u, err := uuid.Parse(s)
	if err != nil || len(s) != 36 {
		return "", errors.New("sub is not a UUID")
	}
	return u.String(), nil
}
