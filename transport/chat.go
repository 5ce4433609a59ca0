package transport

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/google/uuid"

	"github.com/storyd/storyd/actors"
)

// chatRequest is the body of POST /api/v1/chat.
type chatRequest struct {
	Text            *string `json:"text" minLength:"1" doc:"the message, at most STORYD_MAX_TEXT_BYTES (32 KiB)"`
	SessionID       string  `json:"session_id,omitempty" format:"uuid" doc:"the session; absent or unknown: created"`
	ProjectID       string  `json:"project_id,omitempty" format:"uuid" doc:"the project; absent: the session's, or a new one"`
	UserID          string  `json:"user_id,omitempty" format:"uuid" doc:"the seed's anonymous id field; X-User-ID or a token is preferred"`
	ClientMessageID string  `json:"client_message_id,omitempty" maxLength:"128" doc:"makes retries idempotent within the session"`
}

// maxClientMessageID bounds client_message_id, which is stored.
const maxClientMessageID = 128

// handleChat stores the user's message and streams the reply as SSE.
func (s *Server) handleChat(w http.ResponseWriter, r *http.Request) {
	req, aerr := s.decodeChat(w, r)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	who, ok, aerr := s.identify(r, false, req.UserID)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	if !ok {
		who = identity{UserID: uuid.NewString(), Anonymous: true}
	}
	q := newQueue(s.cfg.QueueSize)
	accepted, err := s.cfg.Sessions.Chat(r.Context(), actors.ChatRequest{
		UserID:          who.UserID,
		Anonymous:       who.Anonymous && !who.Registered,
		SessionID:       req.SessionID,
		ProjectID:       req.ProjectID,
		Text:            *req.Text,
		ClientMessageID: req.ClientMessageID,
		Subscriber:      q,
	})
	if err != nil {
		if r.Context().Err() == nil {
			writeError(w, s.sessionError(err))
		}
		return
	}
	w.Header().Set("X-User-ID", who.UserID)
	s.streamSSE(w, r, accepted.SessionID, q)
}

// decodeChat reads and validates the chat body.
func (s *Server) decodeChat(w http.ResponseWriter, r *http.Request) (chatRequest, *apiError) {
	var req chatRequest
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return req, &apiError{Status: http.StatusUnsupportedMediaType, Code: "unsupported_media_type",
				Message: "send the body as application/json"}
		}
	}
	// The whole body may hold the text JSON-escaped (up to 6 bytes a byte)
	// plus the other fields.
	limit := int64(s.cfg.MaxTextBytes)*6 + 4096
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return req, &apiError{Status: http.StatusRequestEntityTooLarge, Code: "body_too_large",
				Message: fmt.Sprintf("the request body is larger than %d bytes", limit)}
		}
		return req, errBadRequest("unreadable_body", "the request body could not be read")
	}
	if aerr := decodeStrict(body, &req); aerr != nil {
		return req, aerr
	}
	return req, s.validateChat(&req)
}

// validateChat checks a chat's fields and canonicalises its ids; the
// WebSocket chat frame goes through it too.
func (s *Server) validateChat(req *chatRequest) *apiError {
	switch {
	case req.Text == nil:
		return errInvalid("text_required", "text is required")
	case strings.TrimSpace(*req.Text) == "":
		return errInvalid("text_empty", "text must not be empty")
	case len(*req.Text) > s.cfg.MaxTextBytes:
		return &apiError{Status: http.StatusRequestEntityTooLarge, Code: "text_too_large",
			Message: fmt.Sprintf("text is longer than %d bytes", s.cfg.MaxTextBytes)}
	case strings.ContainsRune(*req.Text, 0):
		return errInvalid("text_invalid", "text must not contain NUL characters")
	case strings.ContainsRune(req.ClientMessageID, 0):
		return errInvalid("invalid_client_message_id", "client_message_id must not contain NUL characters")
	case len(req.ClientMessageID) > maxClientMessageID:
		return errInvalid("invalid_client_message_id",
			fmt.Sprintf("client_message_id must be at most %d bytes", maxClientMessageID))
	}
	for _, f := range []struct {
		name string
		v    *string
	}{{"session_id", &req.SessionID}, {"project_id", &req.ProjectID}} {
		if *f.v == "" {
			continue
		}
		id, aerr := parseUUID(f.name, *f.v)
		if aerr != nil {
			return aerr
		}
		*f.v = id
	}
	return nil
}

// decodeStrict decodes one JSON object, refusing unknown fields and
// trailing data.
func decodeStrict(body []byte, v any) *apiError {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var ute *json.UnmarshalTypeError
		switch {
		case errors.As(err, &ute) && ute.Field == "":
			return errBadRequest("malformed_json", "the request body must be a JSON object")
		case errors.As(err, &ute):
			return errInvalid("invalid_field", fmt.Sprintf("%s must be a %s", ute.Field, jsonKind(ute.Type.Kind().String())))
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			return errBadRequest("unknown_field", strings.TrimPrefix(err.Error(), "json: ")+" in the request body")
		case errors.Is(err, io.EOF):
			return errBadRequest("malformed_json", "the request body is empty; send a JSON object")
		default:
			return errBadRequest("malformed_json", "the request body is not valid JSON: "+err.Error())
		}
	}
	if dec.More() {
		return errBadRequest("malformed_json", "the request body holds more than one JSON value")
	}
	if _, err := dec.Token(); err != io.EOF {
		return errBadRequest("malformed_json", "unexpected data after the JSON object")
	}
	return nil
}

func jsonKind(k string) string {
	switch k {
	case "ptr", "string":
		return "string"
	case "int", "int64", "float64":
		return "number"
	}
	return k
}

// sessionError maps an actors error to the client's answer.
func (s *Server) sessionError(err error) *apiError {
	switch {
	case errors.Is(err, actors.ErrNotFound):
		return errNotFound("session_not_found", "no such session")
	case errors.Is(err, actors.ErrTooManyPending):
		return &apiError{Status: http.StatusTooManyRequests, Code: "too_many_pending", RetryAfter: 5,
			Message: "this session already has many messages waiting for their reply; wait for them"}
	case errors.Is(err, actors.ErrInvalid):
		return errInvalid("invalid_input", "the input cannot be stored (it holds characters storyd does not accept)")
	case errors.Is(err, actors.ErrInvalidAfterSeq):
		return errInvalid("invalid_after_seq", "after_seq is beyond the session's latest event")
	case errors.Is(err, actors.ErrProjectMismatch):
		return &apiError{Status: http.StatusConflict, Code: "project_mismatch",
			Message: "the session belongs to another project"}
	case errors.Is(err, actors.ErrShuttingDown):
		return errUnavailable("shutting_down", "the server is restarting; retry shortly")
	case errors.Is(err, actors.ErrUnavailable), errors.Is(err, actors.ErrSessionClosed),
		errors.Is(err, context.DeadlineExceeded):
		return errUnavailable("store_unavailable", "storage is unavailable; retry shortly")
	default:
		s.cfg.Logger.Error("chat", "err", err)
		return &apiError{Status: http.StatusInternalServerError, Code: "internal_error", Message: "internal error"}
	}
}
