package transport

import (
	"net/http"
	"sort"
	"strings"

	"github.com/storyd/storyd/transport/webclient"
)

// route is one endpoint: how it is served and how the OpenAPI document
// describes it. The one table below drives both, so they cannot drift.
type route struct {
	method, path string
	handle       http.HandlerFunc
	doc          opDoc
}

// opDoc describes an operation for the OpenAPI document. Body and Response
// hold a value of the Go type the handler decodes or encodes; the schema
// is generated from it.
type opDoc struct {
	ID, Summary, Description, Tag string
	Params                        []paramDoc
	Body                          any
	Status                        int
	Response                      any
	// Stream marks a text/event-stream response of session events.
	Stream bool
	// Identity: the caller must present an access token or an anonymous id.
	Identity bool
	Errors   []int
}

// paramDoc is a path or query parameter.
type paramDoc struct {
	Name, In, Description string
	Type                  string // "string" (default) or "integer"
	Format                string // e.g. "uuid"
	Required              bool
}

// table lists every endpoint.
func (s *Server) table() []route {
	var (
		pSessionID = paramDoc{Name: "session_id", In: "path", Format: "uuid", Required: true, Description: "the session"}
		pProjectID = paramDoc{Name: "project_id", In: "path", Format: "uuid", Required: true, Description: "the project whose dossier it is"}
		pLimit     = paramDoc{Name: "limit", In: "query", Type: "integer", Description: "page size, 1–200 (default 50)"}
		pOffset    = paramDoc{Name: "offset", In: "query", Type: "integer", Description: "items to skip, ≥ 0 (default 0)"}
		pAfterSeq  = paramDoc{Name: "after_seq", In: "query", Type: "integer", Description: "resume after this event seq (or send Last-Event-ID)"}
		pUserIDQ   = paramDoc{Name: "user_id", In: "query", Format: "uuid", Description: "anonymous id, for clients that cannot set headers"}
		pTokenQ    = paramDoc{Name: "access_token", In: "query", Description: "access token, for clients that cannot set headers"}
	)
	const (
		tChat    = "Chat"
		tSession = "Sessions"
		tDossier = "Dossier"
		tUser    = "Users"
		tOps     = "Operations"
	)
	return []route{
		{"GET", "/healthz", s.handleHealthz, opDoc{ID: "healthz", Tag: tOps, Summary: "Liveness: the process serves HTTP",
			Status: 200, Response: map[string]string{}}},
		{"GET", "/readyz", s.handleReadyz, opDoc{ID: "readyz", Tag: tOps, Summary: "Readiness: the store (and Redis, when configured) answers",
			Status: 200, Response: map[string]string{}, Errors: []int{503}}},
		{"GET", "/api/v1/openapi.json", s.handleOpenAPI, opDoc{ID: "openapi", Tag: tOps, Summary: "This OpenAPI 3.1 document",
			Status: 200, Response: map[string]any{}}},

		{"POST", "/api/v1/chat", s.handleChat, opDoc{ID: "chat", Tag: tChat, Summary: "Send a message; the reply streams back as SSE",
			Description: "Stores the message (creating the session and project when absent), then streams the reply as " +
				"`text/event-stream`: `text` events, then `metadata` and `done` (`error` before them on failure). Each event's " +
				"`id:` is its seq in the session. Without identity a new anonymous id is minted and returned in the `X-User-ID` " +
				"header and `metadata.user_id`. See docs/protocol.md.",
			Body: chatRequest{}, Status: 200, Stream: true, Errors: []int{400, 401, 404, 409, 413, 415, 422, 503}}},
		{"GET", "/api/v1/sessions", s.handleListSessions, opDoc{ID: "listSessions", Tag: tSession, Summary: "Your active sessions, newest first",
			Params: []paramDoc{pLimit, pOffset}, Status: 200, Response: []sessionJSON{}, Identity: true, Errors: []int{401, 422}}},
		{"POST", "/api/v1/sessions/migrate", s.handleMigrate, opDoc{ID: "migrateSessions", Tag: tSession,
			Summary:     "Move an anonymous user's sessions, projects and dossiers to your account",
			Description: "Needs an access token whose subject is `permanent_user_id`. One transaction; the anonymous id is refused afterwards.",
			Body:        migrateRequest{}, Status: 200, Response: migrateResponse{}, Identity: true, Errors: []int{401, 403, 404, 409, 422}}},
		{"DELETE", "/api/v1/sessions/{session_id}", s.handleDeleteSession, opDoc{ID: "deleteSession", Tag: tSession,
			Summary: "Deactivate a session (its history stays in the store)", Params: []paramDoc{pSessionID},
			Status: 200, Response: messageResponse{}, Identity: true, Errors: []int{401, 404, 422}}},
		{"GET", "/api/v1/sessions/{session_id}/messages", s.handleMessages, opDoc{ID: "listMessages", Tag: tSession,
			Summary: "A session's messages, in order", Params: []paramDoc{pSessionID, pLimit, pOffset},
			Status: 200, Response: []messageJSON{}, Identity: true, Errors: []int{401, 404, 422}}},
		{"GET", "/api/v1/sessions/{session_id}/stream", s.handleStream, opDoc{ID: "followSession", Tag: tChat,
			Summary:     "Follow a session's events over SSE (resumable)",
			Description: "Resumes after `Last-Event-ID` or `after_seq`; works with EventSource. See docs/protocol.md.",
			Params:      []paramDoc{pSessionID, pAfterSeq, pUserIDQ, pTokenQ}, Status: 200, Stream: true, Identity: true,
			Errors: []int{401, 404, 422}}},
		{"POST", "/api/v1/sessions/{session_id}/cancel", s.handleCancel, opDoc{ID: "cancelReply", Tag: tChat,
			Summary: "Stop the reply being generated (stored as cancelled)", Params: []paramDoc{pSessionID},
			Status: 200, Response: cancelResponse{}, Identity: true, Errors: []int{401, 404, 422}}},
		{"GET", "/api/v1/ws", s.handleWebSocket, opDoc{ID: "websocket", Tag: tChat, Summary: "WebSocket: chat, follow, resume, cancel",
			Description: "Upgrades to a WebSocket carrying JSON frames; the protocol is in docs/protocol.md.",
			Params:      []paramDoc{pUserIDQ, pTokenQ}, Status: 101, Errors: []int{401, 403}}},

		{"POST", "/api/v1/users", s.handleUpsertUser, opDoc{ID: "upsertUser", Tag: tUser, Summary: "Create or update your profile (signed-in users)",
			Body: userRequest{}, Status: 200, Response: userJSON{}, Identity: true, Errors: []int{401, 404, 422}}},

		{"GET", "/api/v1/dossier", s.handleListDossiers, opDoc{ID: "listDossiers", Tag: tDossier, Summary: "Your dossiers",
			Params: []paramDoc{pLimit, pOffset}, Status: 200, Response: []dossierSummaryJSON{}, Identity: true, Errors: []int{401, 422}}},
		{"POST", "/api/v1/dossier", s.handleCreateDossier, opDoc{ID: "createDossier", Tag: tDossier, Summary: "Create a project's dossier",
			Body: createDossierRequest{}, Status: 201, Response: dossierJSON{}, Identity: true, Errors: []int{401, 404, 409, 413, 422, 503}}},
		{"GET", "/api/v1/dossier/{project_id}", s.handleGetDossier, opDoc{ID: "getDossier", Tag: tDossier, Summary: "A project's dossier",
			Params: []paramDoc{pProjectID}, Status: 200, Response: dossierJSON{}, Identity: true, Errors: []int{401, 404, 422}}},
		{"PUT", "/api/v1/dossier/{project_id}", s.handleUpdateDossier, opDoc{ID: "updateDossier", Tag: tDossier,
			Summary:     "Replace a dossier; with version (or If-Match), a stale edit is a 409",
			Description: "Send the version you edited, in the body or as `If-Match` (the `ETag` of GET); a stale one answers 409 `version_conflict`. Every write that changes something keeps a version with source `user` and is announced as a `dossier` event; one that changes nothing answers the current version.",
			Params:      []paramDoc{pProjectID, {Name: "If-Match", In: "header", Description: "the ETag (version) you edited"}},
			Body:        updateDossierRequest{}, Status: 200, Response: dossierJSON{}, Identity: true, Errors: []int{401, 404, 409, 413, 422, 503}}},
		{"GET", "/api/v1/dossier/{project_id}/versions", s.handleListVersions, opDoc{ID: "listDossierVersions", Tag: tDossier,
			Summary: "A dossier's versions, newest first (without snapshots)", Params: []paramDoc{pProjectID},
			Status: 200, Response: []versionJSON{}, Identity: true, Errors: []int{401, 404, 422}}},
		{"GET", "/api/v1/dossier/{project_id}/versions/{version}", s.handleGetVersion, opDoc{ID: "getDossierVersion", Tag: tDossier,
			Summary: "One version of a dossier, with its snapshot",
			Params:  []paramDoc{pProjectID, {Name: "version", In: "path", Type: "integer", Required: true, Description: "the version"}},
			Status:  200, Response: versionJSON{}, Identity: true, Errors: []int{401, 404, 422}}},
		{"POST", "/api/v1/dossier/{project_id}/refresh", s.handleRefreshDossier, opDoc{ID: "refreshDossier", Tag: tDossier,
			Summary:     "Extract the conversation's pending turns into the dossier now",
			Description: "Extraction normally runs in batches (see docs/dossier.md); this runs it now. The new version, if anything changed, arrives as a `dossier` event and in GET.",
			Params:      []paramDoc{pProjectID}, Status: 202, Response: refreshResponse{}, Identity: true, Errors: []int{401, 404, 422, 503}}},
		{"DELETE", "/api/v1/dossier/{project_id}", s.handleDeleteDossier, opDoc{ID: "deleteDossier", Tag: tDossier,
			Summary: "Delete a dossier and its versions", Params: []paramDoc{pProjectID},
			Status: 200, Response: messageResponse{}, Identity: true, Errors: []int{401, 404, 422, 503}}},
	}
}

// messageResponse is the seed's confirmation body.
type messageResponse struct {
	Message string `json:"message"`
}

// routes builds the handler from the table: each route, a JSON 405 for
// other methods on a known path, a JSON 404 for anything else, the
// documentation pages and the web client.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	allowed := map[string][]string{}
	for _, rt := range s.table() {
		mux.HandleFunc(rt.method+" "+rt.path, rt.handle)
		allowed[rt.path] = append(allowed[rt.path], rt.method)
	}
	// Known paths, any method: a request that reaches the catch-all on one
	// of them used the wrong method. (They live in a mux of their own:
	// beside the method patterns some would conflict.)
	known := http.NewServeMux()
	for path, methods := range allowed {
		sort.Strings(methods)
		known.HandleFunc(path, methodNotAllowed(strings.Join(methods, ", ")))
	}
	mux.HandleFunc("GET /openapi.json", s.handleOpenAPI) // where the seed had it
	// The built-in web client (transport/webclient) at the root.
	web := webclient.New()
	mux.HandleFunc("GET /{$}", web.ServePage)
	mux.HandleFunc("GET "+webclient.AssetPrefix+"{name}", func(w http.ResponseWriter, r *http.Request) {
		if !web.ServeAsset(w, r, r.PathValue("name")) {
			writeError(w, errNotFound("not_found", "no such asset: "+r.URL.Path))
		}
	})
	mux.HandleFunc("GET /docs", s.handleDocs)
	mux.HandleFunc("GET /docs/assets/{name}", s.handleDocsAsset)
	mux.HandleFunc("GET /redoc", s.handleRedoc)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if h, pattern := known.Handler(r); pattern != "" {
			h.ServeHTTP(w, r)
			return
		}
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
