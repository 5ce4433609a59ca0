package transport

import (
	"net/http"

	"github.com/google/uuid"
)

// identity is who is asking.
type identity struct {
	UserID    string
	Anonymous bool
	// Minted is true when the server made the id up for this request.
	Minted bool
}

// anonymousID reads the anonymous X-User-ID header (with bodyID, the
// seed's body field, as fallback). It reports whether an id was given.
func anonymousID(r *http.Request, bodyID string) (identity, bool, *apiError) {
	header := r.Header.Get("X-User-ID")
	if header != "" && bodyID != "" && !sameUUID(header, bodyID) {
		return identity{}, false, errInvalid("user_id_mismatch", "X-User-ID and user_id name different users")
	}
	id := header
	if id == "" {
		id = bodyID
	}
	if id == "" {
		return identity{}, false, nil
	}
	u, err := uuid.Parse(id)
	if err != nil {
		return identity{}, false, errInvalid("invalid_user_id", "the user id must be a UUID")
	}
	return identity{UserID: u.String(), Anonymous: true}, true, nil
}

// requireIdentity is anonymousID for endpoints that need a caller. With
// query set, a ?user_id= parameter also counts (for EventSource and
// WebSocket clients, which cannot set headers).
func requireIdentity(r *http.Request, query bool) (identity, *apiError) {
	var fromQuery string
	if query {
		fromQuery = r.URL.Query().Get("user_id")
	}
	id, ok, aerr := anonymousID(r, fromQuery)
	if aerr != nil {
		return identity{}, aerr
	}
	if !ok {
		return identity{}, &apiError{Status: http.StatusUnauthorized, Code: "identity_required",
			Message: "send your user id in the X-User-ID header"}
	}
	return id, nil
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
