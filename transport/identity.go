package transport

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/storyd/storyd/auth"
	"github.com/storyd/storyd/persistence"
)

// TokenVerifier checks an access token (a Supabase JWT); *auth.Verifier
// implements it.
type TokenVerifier interface {
	Verify(ctx context.Context, token string) (auth.Claims, error)
}

// identity is who is asking.
type identity struct {
	UserID string
	// Anonymous is true for an anonymous id (X-User-ID) and for a token of
	// a Supabase anonymous sign-in.
	Anonymous bool
	// Registered is true when the id comes from a verified token.
	Registered bool
	Email      string
	// ExpiresAt is the token's expiry (zero for an anonymous id).
	ExpiresAt time.Time
}

// credentials are what a request presents: an access token or an
// anonymous id, from headers, or from the query string where browsers
// cannot set headers (EventSource, WebSocket).
type credentials struct {
	token       string
	anonymousID string
	// badAuthorization: an Authorization header that is not "Bearer <token>".
	badAuthorization bool
}

func requestCredentials(r *http.Request, query bool, bodyUserID string) (credentials, *apiError) {
	var c credentials
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, _ := strings.Cut(h, " ")
		if !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
			return c, &apiError{Status: http.StatusUnauthorized, Code: "invalid_authorization",
				Message: "send the access token as Authorization: Bearer <token>"}
		}
		c.token = strings.TrimSpace(tok)
	}
	if c.token == "" && query {
		c.token = r.URL.Query().Get("access_token")
	}
	header := r.Header.Get("X-User-ID")
	if header == "" && query {
		header = r.URL.Query().Get("user_id")
	}
	if header != "" && bodyUserID != "" && !sameUUID(header, bodyUserID) {
		return c, errInvalid("user_id_mismatch", "X-User-ID and user_id name different users")
	}
	c.anonymousID = header
	if c.anonymousID == "" {
		c.anonymousID = bodyUserID
	}
	return c, nil
}

// identify finds out who is asking: a verified access token wins; otherwise
// an anonymous id, which is refused when it belongs to a registered or
// migrated user. ok is false when the request presents neither.
func (s *Server) identify(r *http.Request, query bool, bodyUserID string) (who identity, ok bool, aerr *apiError) {
	c, aerr := requestCredentials(r, query, bodyUserID)
	if aerr != nil {
		return identity{}, false, aerr
	}
	if c.token != "" {
		who, aerr := s.verifyToken(r.Context(), c.token)
		if aerr == nil && bodyUserID != "" && !sameUUID(bodyUserID, who.UserID) {
			aerr = errInvalid("user_id_mismatch", "user_id is not the user of the access token")
		}
		return who, aerr == nil, aerr
	}
	if c.anonymousID == "" {
		return identity{}, false, nil
	}
	who, aerr = s.anonymous(r.Context(), c.anonymousID)
	return who, aerr == nil, aerr
}

// requireIdentity is identify for endpoints that need a caller.
func (s *Server) requireIdentity(r *http.Request, query bool) (identity, *apiError) {
	who, ok, aerr := s.identify(r, query, "")
	if aerr != nil {
		return identity{}, aerr
	}
	if !ok {
		return identity{}, &apiError{Status: http.StatusUnauthorized, Code: "identity_required",
			Message: "send Authorization: Bearer <access token>, or an anonymous id in X-User-ID"}
	}
	return who, nil
}

// caller is requireIdentity for handlers: it answers the error itself and
// reports false when there is no acceptable identity.
func (s *Server) caller(w http.ResponseWriter, r *http.Request) (identity, bool) {
	who, aerr := s.requireIdentity(r, false)
	if aerr != nil {
		writeError(w, aerr)
		return identity{}, false
	}
	return who, true
}

// signedIn is caller for endpoints that need an access token; why tells
// an anonymous caller what it needs one for.
func (s *Server) signedIn(w http.ResponseWriter, r *http.Request, why string) (identity, bool) {
	who, ok := s.caller(w, r)
	if ok && !who.Registered {
		writeError(w, &apiError{Status: http.StatusUnauthorized, Code: "sign_in_required", Message: why})
		return identity{}, false
	}
	return who, ok
}

// callerAndSession reads the caller and the {session_id} of the path for
// the session endpoints; it answers the error itself and reports false when
// either is missing or bad.
func (s *Server) callerAndSession(w http.ResponseWriter, r *http.Request, query bool) (identity, string, bool) {
	who, aerr := s.requireIdentity(r, query)
	if aerr == nil {
		var sessionID string
		if sessionID, aerr = parseUUID("session_id", r.PathValue("session_id")); aerr == nil {
			return who, sessionID, true
		}
	}
	writeError(w, aerr)
	return identity{}, "", false
}

// verifyToken checks an access token and records its user on first sight.
func (s *Server) verifyToken(ctx context.Context, token string) (identity, *apiError) {
	if s.cfg.Tokens == nil {
		return identity{}, &apiError{Status: http.StatusUnauthorized, Code: "auth_not_configured",
			Message: "this server accepts no access tokens (set SUPABASE_URL, AUTH_JWKS_URL or SUPABASE_JWT_SECRET)"}
	}
	claims, err := s.cfg.Tokens.Verify(ctx, token)
	switch {
	case errors.Is(err, auth.ErrUnavailable):
		return identity{}, errUnavailable("auth_unavailable", "access tokens cannot be checked right now; retry shortly")
	case errors.Is(err, auth.ErrExpired):
		return identity{}, &apiError{Status: http.StatusUnauthorized, Code: "token_expired", Message: "the access token has expired"}
	case err != nil:
		return identity{}, &apiError{Status: http.StatusUnauthorized, Code: "invalid_token",
			Message: "the access token is not valid: " + auth.Reason(err)}
	}
	if err := s.users.remember(ctx, s.cfg.Store, claims); err != nil {
		s.cfg.Logger.Error("record user", "err", err)
		return identity{}, errUnavailable("store_unavailable", "storage is unavailable; retry shortly")
	}
	return identity{UserID: claims.Subject, Anonymous: claims.IsAnonymous, Registered: true,
		Email: claims.Email, ExpiresAt: claims.ExpiresAt}, nil
}

// anonymous accepts an anonymous id unless it belongs to a registered user
// or was migrated to one: those must sign in.
func (s *Server) anonymous(ctx context.Context, id string) (identity, *apiError) {
	uid, aerr := parseUUID("user_id", id)
	if aerr != nil {
		return identity{}, aerr
	}
	u, err := s.cfg.Store.GetUser(ctx, uid)
	switch {
	case errors.Is(err, persistence.ErrNotFound):
	case err != nil:
		s.cfg.Logger.Error("get user", "err", err)
		return identity{}, errUnavailable("store_unavailable", "storage is unavailable; retry shortly")
	case u.MigratedTo != "":
		return identity{}, &apiError{Status: http.StatusUnauthorized, Code: "identity_refused",
			Message: "this anonymous id was moved to an account; sign in"}
	case !u.IsAnonymous:
		return identity{}, &apiError{Status: http.StatusUnauthorized, Code: "identity_refused",
			Message: "this id belongs to a registered account; sign in and send its access token"}
	}
	return identity{UserID: uid, Anonymous: true}, nil
}

// knownUsers remembers which token users are already recorded, so that a
// request with a token costs a store write only the first time. It holds
// at most maxKnownUsers entries, then starts over.
type knownUsers struct {
	mu   sync.Mutex
	seen map[string]string // user id → email recorded
}

const maxKnownUsers = 100_000

func (k *knownUsers) remember(ctx context.Context, store Store, c auth.Claims) error {
	k.mu.Lock()
	email, ok := k.seen[c.Subject]
	k.mu.Unlock()
	if ok && email == c.Email {
		return nil
	}
	// A token user is recorded as registered even after a Supabase
	// anonymous sign-in: its id is proven by tokens, so it must never be
	// accepted as an X-User-ID; and a token always wins over an anonymous
	// client that squatted (or migrated away) the same id.
	if _, err := store.ClaimUser(ctx, c.Subject, c.Email); err != nil {
		return err
	}
	k.mu.Lock()
	if k.seen == nil || len(k.seen) >= maxKnownUsers {
		k.seen = map[string]string{}
	}
	k.seen[c.Subject] = c.Email
	k.mu.Unlock()
	return nil
}

// forget drops a user from the cache (its row changed).
func (k *knownUsers) forget(userID string) {
	k.mu.Lock()
	delete(k.seen, userID)
	k.mu.Unlock()
}

func sameUUID(a, b string) bool {
	ua, err1 := uuid.Parse(a)
	ub, err2 := uuid.Parse(b)
	return err1 == nil && err2 == nil && ua == ub
}

// parseUUID validates an id from a path or body; field names it in errors.
func parseUUID(field, v string) (string, *apiError) {
	u, err := uuid.Parse(v)
	if err != nil || len(v) != 36 {
		return "", errInvalid("invalid_"+field, field+" must be a UUID like 123e4567-e89b-12d3-a456-426614174000")
	}
	return u.String(), nil
}
