package transport

import "net/http"

// routes lists every endpoint in one place.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.handleHealthz)
	mux.HandleFunc("GET /readyz", s.handleReadyz)

	mux.HandleFunc("POST /api/v1/chat", s.handleChat)
	mux.HandleFunc("GET /api/v1/sessions", s.handleListSessions)
	mux.HandleFunc("POST /api/v1/sessions/migrate", s.handleMigrate)
	mux.HandleFunc("POST /api/v1/users", s.handleUpsertUser)
	mux.HandleFunc("DELETE /api/v1/sessions/{session_id}", s.handleDeleteSession)
	mux.HandleFunc("GET /api/v1/sessions/{session_id}/messages", s.handleMessages)
	mux.HandleFunc("GET /api/v1/sessions/{session_id}/stream", s.handleStream)
	mux.HandleFunc("POST /api/v1/sessions/{session_id}/cancel", s.handleCancel)
	mux.HandleFunc("GET /api/v1/ws", s.handleWebSocket)

	mux.HandleFunc("GET /api/v1/dossier", s.handleListDossiers)
	mux.HandleFunc("POST /api/v1/dossier", s.handleCreateDossier)
	mux.HandleFunc("GET /api/v1/dossier/{project_id}", s.handleGetDossier)
	mux.HandleFunc("PUT /api/v1/dossier/{project_id}", s.handleUpdateDossier)
	mux.HandleFunc("DELETE /api/v1/dossier/{project_id}", s.handleDeleteDossier)

	// Paths that exist answer other methods with a JSON 405; anything else
	// is a JSON 404.
	allow := map[string]string{
		"/healthz":                               "GET",
		"/readyz":                                "GET",
		"/api/v1/chat":                           "POST",
		"/api/v1/sessions/{session_id}/messages": "GET",
		"/api/v1/sessions/{session_id}/stream":   "GET",
		"/api/v1/sessions/{session_id}/cancel":   "POST",
		"/api/v1/ws":                             "GET",
		"/api/v1/dossier":                        "GET, POST",
		"/api/v1/dossier/{project_id}":           "GET, PUT, DELETE",
	}
	for path, methods := range allow {
		mux.HandleFunc(path, methodNotAllowed(methods))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, errNotFound("not_found", "no such endpoint: "+r.Method+" "+r.URL.Path))
	})
	return s.recoverPanics(s.logRequests(s.cors(mux)))
}

func methodNotAllowed(allowed string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allowed)
		writeError(w, &apiError{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed",
			Message: r.Method + " is not allowed here; use " + allowed})
	}
}
