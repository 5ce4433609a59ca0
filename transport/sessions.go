package transport

import (
	"net/http"
	"time"

	"github.com/storyd/storyd/persistence"
)

// sessionJSON is a session in the seed's shape.
type sessionJSON struct {
	SessionID     string     `json:"session_id"`
	UserID        string     `json:"user_id"`
	ProjectID     string     `json:"project_id"`
	Title         string     `json:"title"`
	CreatedAt     time.Time  `json:"created_at"`
	UpdatedAt     time.Time  `json:"updated_at"`
	LastMessageAt *time.Time `json:"last_message_at"`
	IsActive      bool       `json:"is_active"`
	MessageCount  int        `json:"message_count"`
}

func toSessionJSON(s persistence.Session) sessionJSON {
	return sessionJSON{
		SessionID: s.ID, UserID: s.UserID, ProjectID: s.ProjectID, Title: s.Title,
		CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt, LastMessageAt: s.LastMessageAt,
		IsActive: s.IsActive, MessageCount: s.MessageCount,
	}
}

// handleListSessions lists the caller's active sessions, newest first.
func (s *Server) handleListSessions(w http.ResponseWriter, r *http.Request) {
	who, ok := s.caller(w, r)
	if !ok {
		return
	}
	limit, offset, aerr := pagination(r)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	page, err := s.cfg.Store.ListSessionsPage(r.Context(), who.UserID, limit, offset)
	if err != nil {
		s.storeError(w, r, "list sessions", err)
		return
	}
	out := make([]sessionJSON, 0, len(page))
	for _, sess := range page {
		out = append(out, toSessionJSON(sess))
	}
	writeJSON(w, http.StatusOK, out)
}

// handleDeleteSession deactivates one of the caller's sessions; its history
// stays in the store.
func (s *Server) handleDeleteSession(w http.ResponseWriter, r *http.Request) {
	who, sessionID, ok := s.callerAndSession(w, r, false)
	if !ok {
		return
	}
	if err := s.cfg.Sessions.Delete(r.Context(), who.UserID, sessionID); err != nil {
		if r.Context().Err() == nil {
			writeError(w, s.sessionError(err))
		}
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"message": "Session deleted successfully", "session_id": sessionID})
}
