package transport

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/storyd/storyd/actors"
	"github.com/storyd/storyd/persistence"
	"github.com/storyd/storyd/story"
)

// dossierJSON is a dossier in the seed's shape plus its version.
type dossierJSON struct {
	ProjectID string      `json:"project_id"`
	UserID    string      `json:"user_id"`
	Snapshot  rawSnapshot `json:"snapshot_json"`
	Version   int         `json:"version"`
	CreatedAt time.Time   `json:"created_at"`
	UpdatedAt time.Time   `json:"updated_at"`
}

func toDossierJSON(d persistence.Dossier) dossierJSON {
	return dossierJSON{ProjectID: d.ProjectID, UserID: d.UserID, Snapshot: rawSnapshot(d.Snapshot), Version: d.Version,
		CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt}
}

// dossierSummaryJSON is one row of GET /api/v1/dossier.
type dossierSummaryJSON struct {
	ProjectID      string    `json:"project_id"`
	Title          string    `json:"title"`
	CharacterCount int       `json:"character_count"`
	ThemeCount     int       `json:"theme_count"`
	Version        int       `json:"version"`
	UpdatedAt      time.Time `json:"updated_at"`
}

type createDossierRequest struct {
	ProjectID string      `json:"project_id,omitempty"`
	Snapshot  rawSnapshot `json:"snapshot_json"`
}

type updateDossierRequest struct {
	Snapshot rawSnapshot `json:"snapshot_json"`
	// Version, when set, must be the dossier's current version (409
	// otherwise), so that an edit never overwrites one it has not seen.
	Version *int `json:"version,omitempty"`
}

// maxDossierBody bounds a dossier request body.
const maxDossierBody = story.MaxBytes + 4096

// readJSON reads a bounded JSON body into v, strictly.
func readJSON(w http.ResponseWriter, r *http.Request, limit int64, v any) *apiError {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return &apiError{Status: http.StatusRequestEntityTooLarge, Code: "body_too_large",
				Message: fmt.Sprintf("the request body is larger than %d bytes", limit)}
		}
		return errBadRequest("unreadable_body", "the request body could not be read")
	}
	return decodeStrict(body, v)
}

// parseSnapshot validates a client's snapshot_json.
func parseSnapshot(raw rawSnapshot) (story.Snapshot, *apiError) {
	if len(raw) == 0 || string(raw) == "null" {
		return story.Snapshot{}, errInvalid("snapshot_required", "snapshot_json is required")
	}
	snap, err := story.Parse(raw)
	if err != nil {
		return story.Snapshot{}, errInvalid("invalid_snapshot", err.Error())
	}
	return snap, nil
}

// ownDossier loads the dossier of a project if it is the caller's; anything
// else answers 404 (the second return is then false).
func (s *Server) ownDossier(w http.ResponseWriter, r *http.Request, userID string) (persistence.Dossier, bool) {
	projectID, aerr := parseUUID("project_id", r.PathValue("project_id"))
	if aerr != nil {
		writeError(w, aerr)
		return persistence.Dossier{}, false
	}
	d, err := s.cfg.Store.GetDossier(r.Context(), projectID)
	switch {
	case errors.Is(err, persistence.ErrNotFound) || err == nil && d.UserID != userID:
		writeError(w, errNotFound("dossier_not_found", "no such dossier"))
		return persistence.Dossier{}, false
	case err != nil:
		s.storeError(w, r, "get dossier", err)
		return persistence.Dossier{}, false
	}
	return d, true
}

func (s *Server) handleGetDossier(w http.ResponseWriter, r *http.Request) {
	who, ok := s.caller(w, r)
	if !ok {
		return
	}
	if d, ok := s.ownDossier(w, r, who.UserID); ok {
		w.Header().Set("ETag", etag(d.Version))
		writeJSON(w, http.StatusOK, toDossierJSON(d))
	}
}

func (s *Server) handleListDossiers(w http.ResponseWriter, r *http.Request) {
	who, ok := s.caller(w, r)
	if !ok {
		return
	}
	limit, offset, aerr := pagination(r)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	all, err := s.cfg.Store.ListDossierSummaries(r.Context(), who.UserID)
	if err != nil {
		s.storeError(w, r, "list dossiers", err)
		return
	}
	out := []dossierSummaryJSON{}
	for i := offset; i < len(all) && i < offset+limit; i++ {
		d := all[i]
		out = append(out, dossierSummaryJSON{ProjectID: d.ProjectID, Title: d.Title, CharacterCount: d.CharacterCount,
			ThemeCount: d.ThemeCount, Version: d.Version, UpdatedAt: d.UpdatedAt})
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleCreateDossier(w http.ResponseWriter, r *http.Request) {
	who, ok := s.caller(w, r)
	if !ok {
		return
	}
	var req createDossierRequest
	if aerr := readJSON(w, r, maxDossierBody, &req); aerr != nil {
		writeError(w, aerr)
		return
	}
	projectID := req.ProjectID
	if projectID == "" {
		projectID = uuid.NewString()
	} else if id, aerr := parseUUID("project_id", projectID); aerr != nil {
		writeError(w, aerr)
		return
	} else {
		projectID = id
	}
	snap, aerr := parseSnapshot(req.Snapshot)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	s.editDossier(w, r, http.StatusCreated, actors.DossierEdit{
		UserID: who.UserID, Anonymous: !who.Registered, ProjectID: projectID, Snapshot: snap, Create: true,
	})
}

// editDossier sends a person's edit to the dossier's actor and answers
// with the new version.
func (s *Server) editDossier(w http.ResponseWriter, r *http.Request, status int, e actors.DossierEdit) {
	d, err := s.cfg.Sessions.EditDossier(r.Context(), e)
	if err != nil {
		if r.Context().Err() == nil {
			writeError(w, s.dossierError(err))
		}
		return
	}
	w.Header().Set("ETag", etag(d.Version))
	writeJSON(w, status, toDossierJSON(d))
}

// dossierError maps an error of a dossier edit to the client's answer.
func (s *Server) dossierError(err error) *apiError {
	switch {
	case errors.Is(err, actors.ErrNotFound):
		return errNotFound("project_not_found", "no such project")
	case errors.Is(err, actors.ErrDossierExists):
		return &apiError{Status: http.StatusConflict, Code: "dossier_exists",
			Message: "this project already has a dossier; update it with PUT /api/v1/dossier/{project_id}"}
	case errors.Is(err, actors.ErrVersionConflict):
		return &apiError{Status: http.StatusConflict, Code: "version_conflict",
			Message: "the dossier changed since the version you edited; reload it and apply your edit again"}
	}
	return s.sessionError(err)
}

func (s *Server) handleUpdateDossier(w http.ResponseWriter, r *http.Request) {
	who, ok := s.caller(w, r)
	if !ok {
		return
	}
	d, ok := s.ownDossier(w, r, who.UserID)
	if !ok {
		return
	}
	var req updateDossierRequest
	if aerr := readJSON(w, r, maxDossierBody, &req); aerr != nil {
		writeError(w, aerr)
		return
	}
	snap, aerr := parseSnapshot(req.Snapshot)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	expected, aerr := expectedVersion(r, req.Version, d.Version)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	s.editDossier(w, r, http.StatusOK, actors.DossierEdit{
		UserID: who.UserID, ProjectID: d.ProjectID, Snapshot: snap, ExpectedVersion: expected,
	})
}

// refreshResponse answers POST /api/v1/dossier/{project_id}/refresh.
type refreshResponse struct {
	ProjectID  string `json:"project_id"`
	Extracting bool   `json:"extracting"`
}

// handleRefreshDossier extracts the project's pending turns now; the new
// version (if anything changed) arrives as a dossier event and in GET.
func (s *Server) handleRefreshDossier(w http.ResponseWriter, r *http.Request) {
	who, ok := s.caller(w, r)
	if !ok {
		return
	}
	projectID, aerr := parseUUID("project_id", r.PathValue("project_id"))
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	started, err := s.cfg.Sessions.RefreshDossier(r.Context(), who.UserID, projectID)
	if err != nil {
		if r.Context().Err() == nil {
			writeError(w, s.dossierError(err))
		}
		return
	}
	writeJSON(w, http.StatusAccepted, refreshResponse{ProjectID: projectID, Extracting: started})
}

// etag is a dossier version as an entity tag.
func etag(version int) string { return `"` + strconv.Itoa(version) + `"` }

// expectedVersion is the version an update must find: from If-Match (an
// entity tag from GET, or a bare number) or the body's version; with
// neither, the current one (a blind overwrite).
func expectedVersion(r *http.Request, body *int, current int) (int, *apiError) {
	bad := errInvalid("invalid_version", "version (or If-Match) must be the dossier's version, 1 or more")
	v := 0
	if h := strings.TrimSpace(r.Header.Get("If-Match")); h != "" && h != "*" {
		n, err := strconv.Atoi(strings.Trim(strings.TrimPrefix(h, "W/"), `"`))
		if err != nil || n < 1 {
			return 0, bad
		}
		v = n
	}
	if body != nil {
		if *body < 1 || v != 0 && *body != v {
			return 0, errInvalid("invalid_version", "version must be 1 or more and agree with If-Match")
		}
		v = *body
	}
	if v == 0 {
		return current, nil
	}
	return v, nil
}

func (s *Server) handleDeleteDossier(w http.ResponseWriter, r *http.Request) {
	who, ok := s.caller(w, r)
	if !ok {
		return
	}
	d, ok := s.ownDossier(w, r, who.UserID)
	if !ok {
		return
	}
	// Through the dossier actor, the dossier's single writer: an extraction
	// in flight cannot write over the deletion, and sessions forget it.
	if err := s.cfg.Sessions.DeleteDossier(r.Context(), who.UserID, d.ProjectID); err != nil {
		switch {
		case r.Context().Err() != nil:
		case errors.Is(err, actors.ErrNotFound): // deleted meanwhile
			writeError(w, errNotFound("dossier_not_found", "no such dossier"))
		default:
			writeError(w, s.dossierError(err))
		}
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"message": "Dossier deleted successfully", "project_id": d.ProjectID})
}

// versionJSON is one kept version of a dossier.
type versionJSON struct {
	ProjectID string      `json:"project_id"`
	Version   int         `json:"version"`
	Source    string      `json:"source" enum:"extraction,user"`
	SeqFrom   int64       `json:"seq_from"`
	SeqTo     int64       `json:"seq_to"`
	CreatedAt time.Time   `json:"created_at"`
	Snapshot  rawSnapshot `json:"snapshot_json,omitempty"`
}

func toVersionJSON(v persistence.DossierVersion, withSnapshot bool) versionJSON {
	out := versionJSON{ProjectID: v.ProjectID, Version: v.Version, Source: v.Source, SeqFrom: v.SeqFrom,
		SeqTo: v.SeqTo, CreatedAt: v.CreatedAt}
	if withSnapshot {
		out.Snapshot = rawSnapshot(v.Snapshot)
	}
	return out
}

// handleListVersions lists a dossier's versions, newest first, without
// their snapshots.
func (s *Server) handleListVersions(w http.ResponseWriter, r *http.Request) {
	who, ok := s.caller(w, r)
	if !ok {
		return
	}
	d, ok := s.ownDossier(w, r, who.UserID)
	if !ok {
		return
	}
	vs, err := s.cfg.Store.ListDossierVersions(r.Context(), d.ProjectID)
	if err != nil {
		s.storeError(w, r, "list dossier versions", err)
		return
	}
	out := make([]versionJSON, 0, len(vs))
	for _, v := range vs {
		out = append(out, toVersionJSON(v, false))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version > out[j].Version })
	writeJSON(w, http.StatusOK, out)
}

// handleGetVersion returns one version with its snapshot.
func (s *Server) handleGetVersion(w http.ResponseWriter, r *http.Request) {
	who, ok := s.caller(w, r)
	if !ok {
		return
	}
	d, ok := s.ownDossier(w, r, who.UserID)
	if !ok {
		return
	}
	n, err := strconv.Atoi(r.PathValue("version"))
	if err != nil || n < 1 {
		writeError(w, errInvalid("invalid_version", "version must be an integer of 1 or more"))
		return
	}
	v, err := s.cfg.Store.GetDossierVersion(r.Context(), d.ProjectID, n)
	switch {
	case errors.Is(err, persistence.ErrNotFound):
		writeError(w, errNotFound("version_not_found", fmt.Sprintf("the dossier has no version %d", n)))
	case err != nil:
		s.storeError(w, r, "get dossier version", err)
	default:
		writeJSON(w, http.StatusOK, toVersionJSON(v, true))
	}
}
