package transport

import (
	"net/http"
	"strconv"

	"github.com/storyd/storyd/actors"
)

// handleStream follows a session over SSE, resuming after Last-Event-ID or
// ?after_seq= when given.
func (s *Server) handleStream(w http.ResponseWriter, r *http.Request) {
	who, sessionID, ok := s.callerAndSession(w, r, true)
	if !ok {
		return
	}
	after, aerr := resumePoint(r)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	q := newQueue(s.cfg.QueueSize)
	err := s.cfg.Sessions.Subscribe(r.Context(), actors.SubscribeRequest{
		UserID: who.UserID, SessionID: sessionID, AfterSeq: after, Subscriber: q,
	})
	if err != nil {
		if r.Context().Err() == nil {
			writeError(w, s.sessionError(err))
		}
		s.cfg.Sessions.Unsubscribe(sessionID, q)
		return
	}
	s.streamSSE(w, r, sessionID, q)
}

// resumePoint reads the seq to resume after: the Last-Event-ID header
// (sent by EventSource when it reconnects) or ?after_seq=.
func resumePoint(r *http.Request) (*int64, *apiError) {
	v := r.Header.Get("Last-Event-ID")
	if v == "" {
		v = r.URL.Query().Get("after_seq")
	}
	if v == "" {
		return nil, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return nil, errInvalid("invalid_after_seq", "after_seq (or Last-Event-ID) must be a non-negative integer")
	}
	return &n, nil
}

// cancelResponse answers POST /api/v1/sessions/{id}/cancel.
type cancelResponse struct {
	SessionID string `json:"session_id"`
	Cancelled bool   `json:"cancelled"`
}

// handleCancel stops the reply the session is generating.
func (s *Server) handleCancel(w http.ResponseWriter, r *http.Request) {
	who, sessionID, ok := s.callerAndSession(w, r, false)
	if !ok {
		return
	}
	cancelled, err := s.cfg.Sessions.Cancel(r.Context(), who.UserID, sessionID)
	if err != nil {
		if r.Context().Err() == nil {
			writeError(w, s.sessionError(err))
		}
		return
	}
	writeJSON(w, http.StatusOK, cancelResponse{SessionID: sessionID, Cancelled: cancelled})
}
