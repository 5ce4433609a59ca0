package transport

// Integration tests of the dossier event (docs/protocol.md): a new version
// of a project's dossier, written by a person (POST/PUT /api/v1/dossier) or
// by an extraction, reaches real WebSocket subscribers and SSE followers of
// the project's sessions, and the next reply's metadata.dossier_updated
// says so exactly once.

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/storyd/storyd/actors"
	"github.com/storyd/storyd/llm"
)

// dossierFields are the exact fields of a dossier event (protocol.md: no
// seq, it is not part of the resumable stream).
var dossierFields = []string{"changed", "project_id", "session_id", "type", "version"}

// checkDossierEvent checks a dossier event's exact wire shape and values.
func checkDossierEvent(t *testing.T, via string, ev wsEvent, sessionID, projectID string, version int, changed []string) {
	t.Helper()
	var fields map[string]json.RawMessage
	if err := json.Unmarshal([]byte(ev.raw), &fields); err != nil {
		t.Fatalf("%s: dossier event %s: %v", via, ev.raw, err)
	}
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if !slices.Equal(keys, dossierFields) {
		t.Fatalf("%s: dossier event has fields %v, want %v: %s", via, keys, dossierFields, ev.raw)
	}
	var body struct {
		Type      string   `json:"type"`
		SessionID string   `json:"session_id"`
		ProjectID string   `json:"project_id"`
		Version   int      `json:"version"`
		Changed   []string `json:"changed"`
	}
	if err := json.Unmarshal([]byte(ev.raw), &body); err != nil {
		t.Fatal(err)
	}
	if body.Type != "dossier" || body.SessionID != sessionID || body.ProjectID != projectID || body.Version != version {
		t.Fatalf("%s: dossier event %s, want session %s, project %s, version %d", via, ev.raw, sessionID, projectID, version)
	}
	if changed != nil && !slices.Equal(body.Changed, changed) {
		t.Fatalf("%s: dossier event changed %v, want %v", via, body.Changed, changed)
	}
	if body.Changed == nil {
		t.Fatalf("%s: dossier event without a changed list: %s", via, ev.raw)
	}
}

// nextOfType reads SSE events up to the first of type typ, failing on a
// done or metadata first (nothing else is expected in between here).
func (s *sseClient) nextOfType(typ string) wsEvent {
	s.t.Helper()
	for {
		ev := s.next()
		if ev.Type == typ {
			return ev
		}
		s.t.Fatalf("SSE: %v before the %s event", ev, typ)
	}
}

// dossierRequest sends a dossier request as userID and decodes the answer.
func dossierRequest(t *testing.T, env *itEnv, method, path, userID, body string, want int) map[string]any {
	t.Helper()
	req, err := http.NewRequest(method, env.ts.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-User-ID", userID)
	resp, err := env.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %d %s, want %d", method, path, resp.StatusCode, b, want)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("%s %s: %s: %v", method, path, b, err)
	}
	return out
}

// replyMeta chats in a session over ws and returns the reply's metadata as
// the WebSocket and the SSE follower saw it (both must agree).
func replyMeta(t *testing.T, ws *wsClient, sse *sseClient, sessionID, text string) *wsMetadata {
	t.Helper()
	ws.chat(chatFrame{Text: text, SessionID: sessionID})
	fromWS := ws.turn(sessionID)
	fromSSE := sse.turn()
	if !slices.Equal(keysOf(fromWS), keysOf(fromSSE)) {
		t.Fatalf("WebSocket and SSE differ:\n%v\n%v", fromWS, fromSSE)
	}
	for _, evs := range [][]wsEvent{fromWS, fromSSE} {
		for _, ev := range evs {
			if ev.Type == "dossier" {
				t.Fatalf("a dossier event inside a turn: %v", ev)
			}
		}
	}
	mw, ms := checkReplyShape(t, sessionID, fromWS[1:]), checkReplyShape(t, sessionID, fromSSE[1:])
	if *mw != *ms {
		t.Fatalf("metadata differs: WebSocket %+v, SSE %+v", mw, ms)
	}
	return mw
}

// TestDossierEventsFromEdits: a person's POST and PUT reach a WebSocket
// subscriber and an SSE follower of a session of the project (and not a
// session of another project); the next reply says dossier_updated once.
func TestDossierEventsFromEdits(t *testing.T) {
	env := newEnv(t, envOpts{})
	user := uuid.NewString()
	ws := dialWS(t, env, user)
	ack := ws.chat(chatFrame{Text: "My grandmother kept a lighthouse"})
	sid, project := ack.SessionID, ack.ProjectID
	ws.turn(sid)
	sse := openStream(t, env, sid, user, "", "")
	other := dialWS(t, env, user) // a session of another project of the same user
	otherAck := other.chat(chatFrame{Text: "Another story altogether"})
	other.turn(otherAck.SessionID)

	steps := []struct {
		name, method, path, body string
		status, version          int
		changed                  []string
	}{
		{"create", "POST", "/api/v1/dossier", `{"project_id":"` + project + `","snapshot_json":{"title":"Gull Rock","characters":[{"name":"Ada","description":"keeps the light"}]}}`,
			http.StatusCreated, 1, []string{"title", "characters"}},
		{"update", "PUT", "/api/v1/dossier/" + project, `{"version":1,"snapshot_json":{"title":"Gull Rock","characters":[{"name":"Ada","description":"keeps the light"}],"themes":["Duty"]}}`,
			http.StatusOK, 2, []string{"themes"}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			got := dossierRequest(t, env, st.method, st.path, user, st.body, st.status)
			if got["version"] != float64(st.version) {
				t.Fatalf("%s answered %v", st.name, got)
			}
			checkDossierEvent(t, "WebSocket", ws.next(), sid, project, st.version, st.changed)
			checkDossierEvent(t, "SSE", sse.nextOfType("dossier"), sid, project, st.version, st.changed)
			// The next reply says the dossier changed, the one after does not.
			if m := replyMeta(t, ws, sse, sid, "tell me more about "+st.name); !m.DossierUpdated {
				t.Fatalf("metadata after version %d: %+v, want dossier_updated", st.version, m)
			}
			if m := replyMeta(t, ws, sse, sid, "and then?"); m.DossierUpdated {
				t.Fatalf("metadata of the reply after: %+v, want no dossier_updated", m)
			}
		})
	}
	// An edit that changes nothing writes no version and tells nobody.
	same := dossierRequest(t, env, "PUT", "/api/v1/dossier/"+project, user, steps[1].body[:len(`{"version":`)]+`2`+steps[1].body[len(`{"version":1`):], http.StatusOK)
	if same["version"] != float64(2) {
		t.Fatalf("a PUT that changes nothing answered %v, want version 2 again", same)
	}
	if vs, err := env.store.ListDossierVersions(t.Context(), project); err != nil || len(vs) != 2 {
		t.Fatalf("%d versions, %v; want 2", len(vs), err)
	}
	if m := replyMeta(t, ws, sse, sid, "nothing new"); m.DossierUpdated {
		t.Fatalf("metadata after an edit that changed nothing: %+v", m)
	}
	// The other project's session heard none of it: its events up to the
	// done of a new turn (sent after every dossier event above) hold none.
	other.chat(chatFrame{Text: "still here", SessionID: otherAck.SessionID})
	for _, ev := range other.until("done", otherAck.SessionID) {
		if ev.Type == "dossier" {
			t.Fatalf("a session of another project got %v", ev)
		}
	}
	// A new empty dossier changes no section, but it is a version: it is
	// announced with an empty changed list.
	dossierRequest(t, env, "POST", "/api/v1/dossier", user, `{"project_id":"`+otherAck.ProjectID+`","snapshot_json":{}}`, http.StatusCreated)
	checkDossierEvent(t, "WebSocket", other.next(), otherAck.SessionID, otherAck.ProjectID, 1, []string{})
}

// TestDossierEventsFromExtraction: an extraction (offline extractor, a
// batch per turn) that writes a version reaches the WebSocket and the SSE
// follower; metadata.dossier_updated is true on the first reply after the
// version only, and stays false after an extraction that changed nothing.
func TestDossierEventsFromExtraction(t *testing.T) {
	env := newEnv(t, envOpts{actors: func(c *actors.Config) {
		c.Extractor, c.ExtractTurns = llm.NewOfflineExtractor(), 1
	}})
	calls := func(n int64) {
		t.Helper()
		deadline := time.Now().Add(wsWait)
		for env.sessions.Stats().Calls < n {
			if time.Now().After(deadline) {
				t.Fatalf("extraction %d did not run", n)
			}
			time.Sleep(2 * time.Millisecond) // poll interval
		}
	}
	user := uuid.NewString()
	ws := dialWS(t, env, user)
	ack := ws.chat(chatFrame{Text: "Hi."})
	sid, project := ack.SessionID, ack.ProjectID
	if m := checkReplyShape(t, sid, ws.turn(sid)[1:]); m.DossierUpdated {
		t.Fatalf("first metadata %+v", m)
	}
	calls(1) // "Hi." holds no story: no version
	sse := openStream(t, env, sid, user, "", "")

	m := replyMeta(t, ws, sse, sid, "My grandmother Ada kept a lighthouse in Maine.")
	if m.DossierUpdated {
		t.Fatalf("metadata before the extraction of its own turn: %+v", m)
	}
	checkDossierEvent(t, "WebSocket", ws.next(), sid, project, 1, nil)
	checkDossierEvent(t, "SSE", sse.nextOfType("dossier"), sid, project, 1, nil)
	d, err := env.store.GetDossier(t.Context(), project)
	if err != nil || d.Version != 1 || !strings.Contains(string(d.Snapshot), "Ada") {
		t.Fatalf("dossier after the extraction: %s %v", d.Snapshot, err)
	}

	if m := replyMeta(t, ws, sse, sid, "Yes."); !m.DossierUpdated {
		t.Fatalf("metadata after version 1: %+v, want dossier_updated", m)
	}
	calls(3) // "Yes." adds nothing: no version, no event
	if m := replyMeta(t, ws, sse, sid, "Okay."); m.DossierUpdated {
		t.Fatalf("metadata after an extraction that changed nothing: %+v", m)
	}
	if d, err := env.store.GetDossier(t.Context(), project); err != nil || d.Version != 1 {
		t.Fatalf("dossier version %d, %v; want still 1", d.Version, err)
	}
}
