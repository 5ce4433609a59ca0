package transport

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/google/uuid"
	"go.uber.org/goleak"

	"github.com/storyd/storyd/actors"
	"github.com/storyd/storyd/llm"
	"github.com/storyd/storyd/persistence"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("github.com/asynkron/protoactor-go/actor.NewDeadLetter.func1"),
		goleak.IgnoreAnyFunction("github.com/asynkron/protoactor-go/actor.NewDeadLetter.NewThrottle.func4.1"),
		goleak.IgnoreAnyFunction("database/sql.(*DB).connectionOpener"),
		goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreAnyFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreAnyFunction("internal/poll.runtime_pollWait"),
	)
}

type testServer struct {
	*httptest.Server
	store *persistence.SQLite
}

// newTestServer serves the real handler over real sessions, a real SQLite
// store and the offline model.
func newTestServer(t *testing.T) *testServer {
	t.Helper()
	store, err := persistence.OpenSQLite(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.DiscardHandler)
	}))
	sessions, err := actors.NewSessions(system, actors.Config{Store: store, Model: llm.NewOffline(llm.OfflineConfig{})})
	if err != nil {
		t.Fatal(err)
	}
	api := NewServer(Config{Sessions: sessions, Store: store, Provider: "offline"})
	srv := httptest.NewServer(api)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = sessions.Shutdown(ctx)
		api.Close()
		srv.Close()
		system.Shutdown()
		store.Close()
	})
	return &testServer{Server: srv, store: store}
}

// sseEvent as read back by a client.
type readEvent struct {
	ID   int64
	Data map[string]any
}

func (ts *testServer) do(t *testing.T, method, path, userID, body string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, ts.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if userID != "" {
		req.Header.Set("X-User-ID", userID)
	}
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// readSSE reads events until done (or EOF).
func readSSE(t *testing.T, r io.Reader) []readEvent {
	t.Helper()
	var evs []readEvent
	sc := bufio.NewScanner(r)
	var cur readEvent
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "id: "):
			id, err := strconv.ParseInt(strings.TrimPrefix(line, "id: "), 10, 64)
			if err != nil {
				t.Fatalf("bad id line %q", line)
			}
			cur.ID = id
		case strings.HasPrefix(line, "data: "):
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &cur.Data); err != nil {
				t.Fatalf("bad data line %q: %v", line, err)
			}
		case line == "":
			if cur.Data != nil {
				evs = append(evs, cur)
				if cur.Data["type"] == "done" {
					return evs
				}
			}
			cur = readEvent{}
		}
	}
	return evs
}

func chat(t *testing.T, ts *testServer, userID, body string) (*http.Response, []readEvent) {
	t.Helper()
	resp := ts.do(t, "POST", "/api/v1/chat", userID, body)
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("chat: %d %s", resp.StatusCode, b)
	}
	return resp, readSSE(t, resp.Body)
}

func TestChatStreamsSSE(t *testing.T) {
	ts := newTestServer(t)
	resp, evs := chat(t, ts, "", `{"text":"A film about my grandmother"}`)
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	if len(evs) < 4 {
		t.Fatalf("only %d events", len(evs))
	}
	var reply strings.Builder
	for i, ev := range evs {
		if i > 0 && ev.ID <= evs[i-1].ID {
			t.Fatalf("ids not increasing: %d then %d", evs[i-1].ID, ev.ID)
		}
		if i < len(evs)-2 {
			if ev.Data["type"] != "text" {
				t.Fatalf("event %d is %v, want text", i, ev.Data)
			}
			reply.WriteString(ev.Data["content"].(string))
		}
	}
	if !strings.Contains(strings.ToLower(reply.String()), "grandmother") {
		t.Errorf("offline reply does not reflect the user's words: %q", reply.String())
	}
	meta := evs[len(evs)-2].Data
	if meta["type"] != "metadata" || evs[len(evs)-1].Data["type"] != "done" {
		t.Fatalf("tail events %v", evs[len(evs)-2:])
	}
	m := meta["metadata"].(map[string]any)
	userID := resp.Header.Get("X-User-ID")
	if m["user_id"] != userID || userID == "" || m["dossier_updated"] != false {
		t.Fatalf("metadata %v, X-User-ID %q", m, userID)
	}
	sessionID := m["session_id"].(string)

	// The history is there, in order, in the seed's shape.
	resp = ts.do(t, "GET", "/api/v1/sessions/"+sessionID+"/messages", userID, "")
	if resp.StatusCode != 200 {
		t.Fatalf("messages: %d", resp.StatusCode)
	}
	var msgs []map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&msgs); err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 2 || msgs[0]["role"] != "user" || msgs[1]["role"] != "assistant" {
		t.Fatalf("messages %v", msgs)
	}
	if msgs[1]["content"] != reply.String() || msgs[1]["status"] != "complete" || msgs[1]["message_id"] != m["message_id"] {
		t.Fatalf("assistant message %v", msgs[1])
	}
	for _, f := range []string{"message_id", "session_id", "role", "content", "created_at", "seq", "end_seq", "status", "metadata"} {
		if _, ok := msgs[0][f]; !ok {
			t.Errorf("message lacks %q: %v", f, msgs[0])
		}
	}
	// seq and end_seq are the first and last events of each message: a
	// client that shows the history resumes after the last end_seq.
	if msgs[0]["end_seq"] != msgs[0]["seq"] || msgs[1]["seq"] != float64(evs[0].ID) ||
		msgs[1]["end_seq"] != float64(evs[len(evs)-1].ID) {
		t.Errorf("seqs: user %v–%v, reply %v–%v; events %d–%d", msgs[0]["seq"], msgs[0]["end_seq"],
			msgs[1]["seq"], msgs[1]["end_seq"], evs[0].ID, evs[len(evs)-1].ID)
	}
}

func TestChatRetryIsIdempotent(t *testing.T) {
	ts := newTestServer(t)
	user := uuid.NewString()
	body := `{"text":"My grandmother Ada kept a lighthouse","client_message_id":"m-1"}`
	_, first := chat(t, ts, user, body)
	sessionID := first[len(first)-2].Data["metadata"].(map[string]any)["session_id"].(string)
	_, again := chat(t, ts, user, `{"text":"My grandmother Ada kept a lighthouse","client_message_id":"m-1","session_id":"`+sessionID+`"}`)
	textOf := func(evs []readEvent) string {
		var b strings.Builder
		for _, ev := range evs {
			if ev.Data["type"] == "text" {
				b.WriteString(ev.Data["content"].(string))
			}
		}
		return b.String()
	}
	if textOf(first) != textOf(again) {
		t.Fatalf("retry got %q, first %q", textOf(again), textOf(first))
	}
	resp := ts.do(t, "GET", "/api/v1/sessions/"+sessionID+"/messages", user, "")
	var msgs []map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&msgs)
	if len(msgs) != 2 {
		t.Fatalf("%d messages after a retry, want 2", len(msgs))
	}
}

func TestBadInputGetsClearErrors(t *testing.T) {
	ts := newTestServer(t)
	user := uuid.NewString()
	big := strings.Repeat("a", 32<<10+1)
	cases := []struct {
		name        string
		method      string
		path        string
		user        string
		contentType string
		body        string
		status      int
		code        string
	}{
		{"malformed json", "POST", "/api/v1/chat", user, "application/json", `{"text":`, 400, "malformed_json"},
		{"not an object", "POST", "/api/v1/chat", user, "application/json", `"hello"`, 400, "malformed_json"},
		{"empty body", "POST", "/api/v1/chat", user, "application/json", ``, 400, "malformed_json"},
		{"two objects", "POST", "/api/v1/chat", user, "application/json", `{"text":"a"}{"text":"b"}`, 400, "malformed_json"},
		{"missing text", "POST", "/api/v1/chat", user, "application/json", `{}`, 422, "text_required"},
		{"empty text", "POST", "/api/v1/chat", user, "application/json", `{"text":"   "}`, 422, "text_empty"},
		{"text not a string", "POST", "/api/v1/chat", user, "application/json", `{"text":42}`, 422, "invalid_field"},
		{"oversized text", "POST", "/api/v1/chat", user, "application/json", `{"text":"` + big + `"}`, 413, "text_too_large"},
		{"NUL in text", "POST", "/api/v1/chat", user, "application/json", `{"text":"a\u0000b"}`, 422, "text_invalid"},
		{"unknown field", "POST", "/api/v1/chat", user, "application/json", `{"text":"hi","mood":"sad"}`, 400, "unknown_field"},
		{"invalid session id", "POST", "/api/v1/chat", user, "application/json", `{"text":"hi","session_id":"nope"}`, 422, "invalid_session_id"},
		{"invalid project id", "POST", "/api/v1/chat", user, "application/json", `{"text":"hi","project_id":"123"}`, 422, "invalid_project_id"},
		{"invalid user header", "POST", "/api/v1/chat", "not-a-uuid", "application/json", `{"text":"hi"}`, 422, "invalid_user_id"},
		{"conflicting user ids", "POST", "/api/v1/chat", user, "application/json", `{"text":"hi","user_id":"` + uuid.NewString() + `"}`, 422, "user_id_mismatch"},
		{"form body", "POST", "/api/v1/chat", user, "application/x-www-form-urlencoded", `text=hi`, 415, "unsupported_media_type"},
		{"huge body", "POST", "/api/v1/chat", user, "application/json", `{"text":"hi","x":"` + strings.Repeat("b", 300<<10) + `"}`, 413, "body_too_large"},
		{"unknown session for chat by stranger", "POST", "/api/v1/chat", user, "application/json", `{"text":"hi","session_id":"` + uuid.NewString() + `","project_id":"` + uuid.NewString() + `"}`, 200, ""},
		{"messages without identity", "GET", "/api/v1/sessions/" + uuid.NewString() + "/messages", "", "", "", 401, "identity_required"},
		{"messages of unknown session", "GET", "/api/v1/sessions/" + uuid.NewString() + "/messages", user, "", "", 404, "session_not_found"},
		{"messages bad session id", "GET", "/api/v1/sessions/xyz/messages", user, "", "", 422, "invalid_session_id"},
		{"messages limit zero", "GET", "/api/v1/sessions/" + uuid.NewString() + "/messages?limit=0", user, "", "", 422, "invalid_limit"},
		{"messages limit too big", "GET", "/api/v1/sessions/" + uuid.NewString() + "/messages?limit=201", user, "", "", 422, "invalid_limit"},
		{"messages negative offset", "GET", "/api/v1/sessions/" + uuid.NewString() + "/messages?offset=-1", user, "", "", 422, "invalid_offset"},
		{"unknown route", "GET", "/api/v1/nothing", user, "", "", 404, "not_found"},
		{"wrong method", "GET", "/api/v1/chat", user, "", "", 405, "method_not_allowed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, ts.URL+tc.path, strings.NewReader(tc.body))
			if tc.contentType != "" {
				req.Header.Set("Content-Type", tc.contentType)
			}
			if tc.user != "" {
				req.Header.Set("X-User-ID", tc.user)
			}
			resp, err := ts.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tc.status {
				b, _ := io.ReadAll(resp.Body)
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, b)
			}
			if tc.code == "" {
				return
			}
			var body struct {
				Error struct{ Code, Message string }
			}
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				t.Fatalf("error body is not JSON: %v", err)
			}
			if body.Error.Code != tc.code || body.Error.Message == "" {
				t.Fatalf("error %+v, want code %s", body.Error, tc.code)
			}
		})
	}
}

func TestOtherUsersSessionIsNotFound(t *testing.T) {
	ts := newTestServer(t)
	owner, stranger := uuid.NewString(), uuid.NewString()
	_, evs := chat(t, ts, owner, `{"text":"private story"}`)
	sessionID := evs[len(evs)-2].Data["metadata"].(map[string]any)["session_id"].(string)

	resp := ts.do(t, "GET", "/api/v1/sessions/"+sessionID+"/messages", stranger, "")
	if resp.StatusCode != 404 {
		t.Fatalf("stranger reads messages: %d", resp.StatusCode)
	}
	resp = ts.do(t, "POST", "/api/v1/chat", stranger, `{"text":"hi","session_id":"`+sessionID+`"}`)
	if resp.StatusCode != 404 {
		t.Fatalf("stranger chats in session: %d", resp.StatusCode)
	}
	resp = ts.do(t, "GET", "/api/v1/sessions/"+sessionID+"/messages?limit=1&offset=1", owner, "")
	var msgs []map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&msgs)
	if resp.StatusCode != 200 || len(msgs) != 1 || msgs[0]["role"] != "assistant" {
		t.Fatalf("owner page: %d %v", resp.StatusCode, msgs)
	}
}

func TestHealth(t *testing.T) {
	ts := newTestServer(t)
	for _, path := range []string{"/healthz", "/readyz"} {
		resp := ts.do(t, "GET", path, "", "")
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d", path, resp.StatusCode)
		}
	}
	ts.store.Close()
	resp := ts.do(t, "GET", "/readyz", "", "")
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("readyz with a closed store: %d", resp.StatusCode)
	}
}
