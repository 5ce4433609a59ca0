package transport

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/storyd/storyd/actors"
)

// errorBody is the JSON error every endpoint answers with:
// {"error":{"code":"snake_case","message":"…"}}.
type errorBody struct {
	Error actors.ErrorInfo `json:"error"`
}

// apiError is an error with the status and code a client sees.
type apiError struct {
	Status     int
	Code       string
	Message    string
	RetryAfter int // seconds; set for 503 and 429
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

func errBadRequest(code, msg string) *apiError {
	return &apiError{Status: http.StatusBadRequest, Code: code, Message: msg}
}

func errInvalid(code, msg string) *apiError {
	return &apiError{Status: http.StatusUnprocessableEntity, Code: code, Message: msg}
}

func errNotFound(code, msg string) *apiError {
	return &apiError{Status: http.StatusNotFound, Code: code, Message: msg}
}

func errUnavailable(code, msg string) *apiError {
	return &apiError{Status: http.StatusServiceUnavailable, Code: code, Message: msg, RetryAfter: 1}
}

// writeError writes e as the JSON error body.
func writeError(w http.ResponseWriter, e *apiError) {
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	writeJSON(w, e.Status, errorBody{Error: actors.ErrorInfo{Code: e.Code, Message: e.Message}})
}

// writeJSON writes v as a JSON response with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v) // the client may be gone; nothing more to do
}
