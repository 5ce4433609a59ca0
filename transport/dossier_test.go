package transport

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"
)

func decodeMap(t *testing.T, ts *testServer, method, path, user, body string, wantStatus int) map[string]any {
	t.Helper()
	resp := ts.do(t, method, path, user, body)
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	if resp.StatusCode != wantStatus {
		t.Fatalf("%s %s: %d %v, want %d", method, path, resp.StatusCode, out, wantStatus)
	}
	return out
}

func TestDossierCRUD(t *testing.T) {
	ts := newTestServer(t)
	owner, stranger := uuid.NewString(), uuid.NewString()
	project := uuid.NewString()
	snap := `{"title":"Gull Rock","characters":[{"name":"Ada","description":"keeps the light","relationships":[],"character_arc":""}],"themes":["Duty"],"locations":["Maine"],"plot_points":[]}`

	created := decodeMap(t, ts, "POST", "/api/v1/dossier", owner, `{"project_id":"`+project+`","snapshot_json":`+snap+`}`, 201)
	if created["project_id"] != project || created["user_id"] != owner || created["version"] != float64(1) {
		t.Fatalf("created %v", created)
	}
	decodeMap(t, ts, "POST", "/api/v1/dossier", owner, `{"project_id":"`+project+`","snapshot_json":{}}`, 409)
	decodeMap(t, ts, "POST", "/api/v1/dossier", stranger, `{"project_id":"`+project+`","snapshot_json":{}}`, 404)

	got := decodeMap(t, ts, "GET", "/api/v1/dossier/"+project, owner, "", 200)
	chars := got["snapshot_json"].(map[string]any)["characters"].([]any)
	if len(chars) != 1 || chars[0].(map[string]any)["name"] != "Ada" {
		t.Fatalf("got %v", got)
	}
	decodeMap(t, ts, "GET", "/api/v1/dossier/"+project, stranger, "", 404)

	list := ts.do(t, "GET", "/api/v1/dossier", owner, "")
	var rows []map[string]any
	_ = json.NewDecoder(list.Body).Decode(&rows)
	if len(rows) != 1 || rows[0]["title"] != "Gull Rock" || rows[0]["character_count"] != float64(1) || rows[0]["theme_count"] != float64(1) {
		t.Fatalf("list %v", rows)
	}

	updated := decodeMap(t, ts, "PUT", "/api/v1/dossier/"+project, owner, `{"version":1,"snapshot_json":{"themes":["Duty","Loneliness"]}}`, 200)
	if updated["version"] != float64(2) {
		t.Fatalf("updated %v", updated)
	}
	conflict := decodeMap(t, ts, "PUT", "/api/v1/dossier/"+project, owner, `{"version":1,"snapshot_json":{}}`, 409)
	if conflict["error"].(map[string]any)["code"] != "version_conflict" {
		t.Fatalf("stale update %v", conflict)
	}
	// If-Match carries the version too.
	req, _ := http.NewRequest("PUT", ts.URL+"/api/v1/dossier/"+project, strings.NewReader(`{"snapshot_json":{}}`))
	req.Header.Set("X-User-ID", owner)
	req.Header.Set("If-Match", `"1"`)
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 409 {
		t.Fatalf("stale If-Match: %d", resp.StatusCode)
	}
	req, _ = http.NewRequest("PUT", ts.URL+"/api/v1/dossier/"+project, strings.NewReader(`{"snapshot_json":{"themes":["Duty"]}}`))
	req.Header.Set("X-User-ID", owner)
	req.Header.Set("If-Match", `"2"`)
	resp, err = ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("ETag") != `"3"` {
		t.Fatalf("current If-Match: %d %s", resp.StatusCode, resp.Header.Get("ETag"))
	}
	versions, err := ts.store.ListDossierVersions(t.Context(), project)
	if err != nil || len(versions) != 3 {
		t.Fatalf("%d versions, %v", len(versions), err)
	}
	for _, v := range versions {
		if v.Source != "user" {
			t.Fatalf("version %d source %q", v.Version, v.Source)
		}
	}
	vresp := ts.do(t, "GET", "/api/v1/dossier/"+project+"/versions", owner, "")
	var vlist []map[string]any
	_ = json.NewDecoder(vresp.Body).Decode(&vlist)
	if vresp.StatusCode != 200 || len(vlist) != 3 || vlist[0]["version"] != float64(3) || vlist[0]["source"] != "user" {
		t.Fatalf("versions: %d %v", vresp.StatusCode, vlist)
	}
	v1 := decodeMap(t, ts, "GET", "/api/v1/dossier/"+project+"/versions/1", owner, "", 200)
	if v1["snapshot_json"].(map[string]any)["title"] != "Gull Rock" {
		t.Fatalf("version 1 %v", v1)
	}
	decodeMap(t, ts, "GET", "/api/v1/dossier/"+project+"/versions/9", owner, "", 404)
	decodeMap(t, ts, "GET", "/api/v1/dossier/"+project+"/versions/1", stranger, "", 404)
	decodeMap(t, ts, "GET", "/api/v1/dossier/"+project+"/versions/x", owner, "", 422)
	decodeMap(t, ts, "PUT", "/api/v1/dossier/"+project, owner, `{"snapshot_json":{"villains":[]}}`, 422)
	decodeMap(t, ts, "PUT", "/api/v1/dossier/"+project, owner, `{"version":0,"snapshot_json":{}}`, 422)
	decodeMap(t, ts, "PUT", "/api/v1/dossier/"+project, stranger, `{"snapshot_json":{}}`, 404)
	decodeMap(t, ts, "DELETE", "/api/v1/dossier/"+project, stranger, "", 404)
	del := decodeMap(t, ts, "DELETE", "/api/v1/dossier/"+project, owner, "", 200)
	if del["message"] != "Dossier deleted successfully" {
		t.Fatalf("delete %v", del)
	}
	decodeMap(t, ts, "GET", "/api/v1/dossier/"+project, owner, "", 404)
}
