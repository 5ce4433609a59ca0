package transport

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/google/uuid"
)

func TestListAndDeleteSessions(t *testing.T) {
	ts := newTestServer(t)
	user := uuid.NewString()
	sessionOf := func(evs []readEvent) string {
		return evs[len(evs)-2].Data["metadata"].(map[string]any)["session_id"].(string)
	}
	_, first := chat(t, ts, user, `{"text":"A lighthouse keeper in Maine"}`)
	_, second := chat(t, ts, user, `{"text":"A heist in Lisbon"}`)
	_, other := chat(t, ts, uuid.NewString(), `{"text":"Someone else's story"}`)
	s1, s2 := sessionOf(first), sessionOf(second)

	list := func(query string) []map[string]any {
		t.Helper()
		resp := ts.do(t, "GET", "/api/v1/sessions"+query, user, "")
		if resp.StatusCode != 200 {
			t.Fatalf("list: %d", resp.StatusCode)
		}
		var out []map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	got := list("")
	if len(got) != 2 || got[0]["session_id"] != s2 || got[1]["session_id"] != s1 {
		t.Fatalf("sessions %v, want %s then %s", got, s2, s1)
	}
	if got[0]["title"] != "A heist in Lisbon" || got[0]["message_count"] != float64(2) ||
		got[0]["is_active"] != true || got[0]["last_message_at"] == nil || got[0]["user_id"] != user {
		t.Fatalf("session %v", got[0])
	}
	if page := list("?limit=1&offset=1"); len(page) != 1 || page[0]["session_id"] != s1 {
		t.Fatalf("page %v", page)
	}

	// Someone else's session cannot be deleted, and is not listed.
	if resp := ts.do(t, "DELETE", "/api/v1/sessions/"+sessionOf(other), user, ""); resp.StatusCode != 404 {
		t.Fatalf("delete another user's session: %d", resp.StatusCode)
	}
	resp := ts.do(t, "DELETE", "/api/v1/sessions/"+s1, user, "")
	var body map[string]string
	_ = json.NewDecoder(resp.Body).Decode(&body)
	if resp.StatusCode != 200 || body["message"] != "Session deleted successfully" {
		t.Fatalf("delete: %d %v", resp.StatusCode, body)
	}
	if got := list(""); len(got) != 1 || got[0]["session_id"] != s2 {
		t.Fatalf("after delete: %v", got)
	}
	for _, tc := range []struct{ method, path, body string }{
		{"DELETE", "/api/v1/sessions/" + s1, ""},
		{"GET", "/api/v1/sessions/" + s1 + "/messages", ""},
		{"POST", "/api/v1/chat", `{"text":"still there?","session_id":"` + s1 + `"}`},
	} {
		if resp := ts.do(t, tc.method, tc.path, user, tc.body); resp.StatusCode != http.StatusNotFound {
			t.Fatalf("%s %s on a deleted session: %d", tc.method, tc.path, resp.StatusCode)
		}
	}
	// The history stays in the store.
	if msgs, err := ts.store.ListMessages(t.Context(), s1, 10, 0); err != nil || len(msgs) != 2 {
		t.Fatalf("stored history of a deleted session: %d, %v", len(msgs), err)
	}
}
