package transport

import (
	"errors"
	"net/http"
	"net/mail"
	"net/url"
	"time"

	"github.com/storyd/storyd/persistence"
)

// userRequest is the body of POST /api/v1/users.
type userRequest struct {
	UserID      string `json:"user_id,omitempty"`
	Email       string `json:"email,omitempty"`
	DisplayName string `json:"display_name,omitempty"`
	AvatarURL   string `json:"avatar_url,omitempty"`
}

// userJSON is a user profile in the seed's shape.
type userJSON struct {
	UserID      string    `json:"user_id"`
	Email       string    `json:"email"`
	DisplayName string    `json:"display_name"`
	AvatarURL   string    `json:"avatar_url"`
	IsAnonymous bool      `json:"is_anonymous"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// handleUpsertUser creates or updates the signed-in caller's profile.
func (s *Server) handleUpsertUser(w http.ResponseWriter, r *http.Request) {
	who, ok := s.signedIn(w, r, "profiles belong to signed-in users: send Authorization: Bearer <access token>")
	if !ok {
		return
	}
	var req userRequest
	if aerr := readJSON(w, r, 16<<10, &req); aerr != nil {
		writeError(w, aerr)
		return
	}
	switch {
	case req.UserID != "" && !sameUUID(req.UserID, who.UserID):
		writeError(w, errNotFound("user_not_found", "you can only change your own profile"))
		return
	case req.Email != "" && !validEmail(req.Email):
		writeError(w, errInvalid("invalid_email", "email is not a valid address"))
		return
	case len(req.DisplayName) > 200:
		writeError(w, errInvalid("invalid_display_name", "display_name is longer than 200 bytes"))
		return
	case req.AvatarURL != "" && !validHTTPURL(req.AvatarURL):
		writeError(w, errInvalid("invalid_avatar_url", "avatar_url must be an http(s) URL"))
		return
	}
	email := req.Email
	if email == "" {
		email = who.Email
	}
	u, err := s.cfg.Store.UpsertUser(r.Context(), persistence.User{ID: who.UserID, Email: email,
		DisplayName: req.DisplayName, AvatarURL: req.AvatarURL})
	if err != nil {
		s.storeError(w, r, "upsert user", err)
		return
	}
	s.users.forget(who.UserID)
	writeJSON(w, http.StatusOK, userJSON{UserID: u.ID, Email: u.Email, DisplayName: u.DisplayName,
		AvatarURL: u.AvatarURL, IsAnonymous: u.IsAnonymous, CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt})
}

func validEmail(v string) bool {
	a, err := mail.ParseAddress(v)
	return err == nil && a.Address == v && len(v) <= 320
}

func validHTTPURL(v string) bool {
	u, err := url.Parse(v)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && len(v) <= 2048
}

// migrateRequest is the body of POST /api/v1/sessions/migrate.
type migrateRequest struct {
	TempUserID      string `json:"temp_user_id"`
	PermanentUserID string `json:"permanent_user_id"`
}

// handleMigrate moves an anonymous user's sessions, projects and dossiers
// to the signed-in caller, in one transaction; the anonymous id is dead
// afterwards. Knowing an anonymous id is what owning it means.
func (s *Server) handleMigrate(w http.ResponseWriter, r *http.Request) {
	who, ok := s.signedIn(w, r, "migrating needs the account's access token: send Authorization: Bearer <token>")
	if !ok {
		return
	}
	var req migrateRequest
	if aerr := readJSON(w, r, 4<<10, &req); aerr != nil {
		writeError(w, aerr)
		return
	}
	temp, aerr := parseUUID("temp_user_id", req.TempUserID)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	perm, aerr := parseUUID("permanent_user_id", req.PermanentUserID)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	switch {
	case perm != who.UserID:
		writeError(w, &apiError{Status: http.StatusForbidden, Code: "not_your_account",
			Message: "permanent_user_id must be the user of the access token"})
		return
	case temp == perm:
		writeError(w, errInvalid("same_user", "temp_user_id and permanent_user_id are the same"))
		return
	}
	ctx := r.Context()
	res, err := s.cfg.Store.MigrateUser(ctx, temp, perm)
	switch {
	case errors.Is(err, persistence.ErrNotFound):
		writeError(w, errNotFound("user_not_found", "no such anonymous user"))
		return
	case errors.Is(err, persistence.ErrConflict):
		writeError(w, &apiError{Status: http.StatusConflict, Code: "not_migratable",
			Message: "that id was already migrated or is not an anonymous user"})
		return
	case errors.Is(err, persistence.ErrInvalid):
		writeError(w, errInvalid("invalid_migration", "these users cannot be migrated"))
		return
	case err != nil:
		s.storeError(w, r, "migrate user", err)
		return
	}
	// Live session actors that belonged to the anonymous user learn their
	// new owner.
	s.cfg.Sessions.OwnerChanged(temp, perm)
	writeJSON(w, http.StatusOK, migrateResponse{Message: "Sessions migrated successfully", TempUserID: temp,
		PermanentUserID: perm, Sessions: res.Sessions, Projects: res.Projects, Dossiers: res.Dossiers})
}

// migrateResponse answers POST /api/v1/sessions/migrate with what moved.
type migrateResponse struct {
	Message         string `json:"message"`
	TempUserID      string `json:"temp_user_id"`
	PermanentUserID string `json:"permanent_user_id"`
	Sessions        int    `json:"sessions"`
	Projects        int    `json:"projects"`
	Dossiers        int    `json:"dossiers"`
}
