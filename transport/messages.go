package transport

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/storyd/storyd/persistence"
)

// messageJSON is a stored message in the seed's shape plus seq, end_seq and
// status. EndSeq is the seq of the message's last event (a reply's done; a
// user message's own seq): a client that renders the history and then
// follows the session resumes after it (see docs/protocol.md).
type messageJSON struct {
	MessageID       string          `json:"message_id"`
	SessionID       string          `json:"session_id"`
	TurnID          string          `json:"turn_id,omitempty"`
	Role            string          `json:"role"`
	Content         string          `json:"content"`
	Metadata        json.RawMessage `json:"metadata"`
	Seq             int64           `json:"seq"`
	EndSeq          int64           `json:"end_seq"`
	Status          string          `json:"status"`
	ClientMessageID string          `json:"client_message_id,omitempty"`
	CreatedAt       time.Time       `json:"created_at"`
	UpdatedAt       time.Time       `json:"updated_at"`
}

func toMessageJSON(m persistence.Message) messageJSON {
	meta := m.Metadata
	if len(meta) == 0 {
		meta = json.RawMessage("{}")
	}
	return messageJSON{
		MessageID: m.ID, SessionID: m.SessionID, TurnID: m.TurnID, Role: m.Role, Content: m.Content,
		Metadata: meta, Seq: m.Seq, EndSeq: max(m.EndSeq, m.Seq), Status: m.Status, ClientMessageID: m.ClientMessageID,
		CreatedAt: m.CreatedAt, UpdatedAt: m.UpdatedAt,
	}
}

// Pagination bounds of list endpoints.
const (
	defaultLimit = 50
	maxLimit     = 200
)

// handleMessages lists a session's messages in order.
func (s *Server) handleMessages(w http.ResponseWriter, r *http.Request) {
	who, sessionID, ok := s.callerAndSession(w, r, false)
	if !ok {
		return
	}
	limit, offset, aerr := pagination(r)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	sess, err := s.cfg.Store.GetSession(r.Context(), sessionID)
	if err != nil || sess.UserID != who.UserID || !sess.IsActive {
		if err == nil || errors.Is(err, persistence.ErrNotFound) {
			writeError(w, errNotFound("session_not_found", "no such session"))
			return
		}
		s.storeError(w, r, "get session", err)
		return
	}
	msgs, err := s.cfg.Store.ListMessages(r.Context(), sessionID, limit, offset)
	if err != nil {
		s.storeError(w, r, "list messages", err)
		return
	}
	out := make([]messageJSON, 0, len(msgs))
	for _, m := range msgs {
		out = append(out, toMessageJSON(m))
	}
	writeJSON(w, http.StatusOK, out)
}

// pagination reads limit (1–200, default 50) and offset (≥ 0, default 0).
func pagination(r *http.Request) (limit, offset int, aerr *apiError) {
	q := r.URL.Query()
	limit, offset = defaultLimit, 0
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxLimit {
			return 0, 0, errInvalid("invalid_limit", fmt.Sprintf("limit must be an integer from 1 to %d", maxLimit))
		}
		limit = n
	}
	if v := q.Get("offset"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return 0, 0, errInvalid("invalid_offset", "offset must be an integer of 0 or more")
		}
		offset = n
	}
	return limit, offset, nil
}

// storeError answers a failed store call: 503 when the store is down, and
// nothing when the client already left.
func (s *Server) storeError(w http.ResponseWriter, r *http.Request, op string, err error) {
	if r.Context().Err() != nil {
		return
	}
	if errors.Is(err, persistence.ErrInvalid) {
		writeError(w, errInvalid("invalid_input", "the input cannot be stored (it holds characters storyd does not accept, such as NUL)"))
		return
	}
	s.cfg.Logger.Error(op, "err", err)
	writeError(w, errUnavailable("store_unavailable", "storage is unavailable; retry shortly"))
}
