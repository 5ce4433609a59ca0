package transport

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	ts := newTestServer(t)
	for _, path := range []string{"/api/v1/openapi.json", "/openapi.json"} {
		resp := ts.do(t, "GET", path, "", "")
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		var doc struct {
			OpenAPI    string                               `json:"openapi"`
			Paths      map[string]map[string]map[string]any `json:"paths"`
			Components struct {
				Schemas map[string]map[string]any `json:"schemas"`
			} `json:"components"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
			t.Fatal(err)
		}
		if doc.OpenAPI != "3.1.0" {
			t.Fatalf("openapi %q", doc.OpenAPI)
		}
		var srv Server
		for _, rt := range srv.table() {
			op, ok := doc.Paths[rt.path][strings.ToLower(rt.method)]
			if !ok {
				t.Errorf("%s %s is served but not documented", rt.method, rt.path)
				continue
			}
			if op["operationId"] != rt.doc.ID || op["responses"] == nil {
				t.Errorf("%s %s: %v", rt.method, rt.path, op)
			}
		}
		// Schemas come from the Go types: the chat request says text is
		// required, the dossier's snapshot is the story schema.
		chat := doc.Components.Schemas["ChatRequest"]
		if req, _ := chat["required"].([]any); len(req) != 1 || req[0] != "text" {
			t.Fatalf("ChatRequest schema %v", chat)
		}
		if _, ok := doc.Components.Schemas["Snapshot"]; !ok {
			t.Fatalf("no Snapshot schema among %v", keys(doc.Components.Schemas))
		}
	}
	for _, path := range []string{"/docs", "/redoc"} {
		resp := ts.do(t, "GET", path, "", "")
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || !strings.Contains(string(b), "/api/v1/openapi.json") {
			t.Fatalf("%s: %d %.200s", path, resp.StatusCode, b)
		}
	}
}

func keys(m map[string]map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestWrongMethodOnEveryPathIsJSON405(t *testing.T) {
	ts := newTestServer(t)
	var srv Server
	for _, rt := range srv.table() {
		method := "PATCH"
		path := strings.NewReplacer("{session_id}", "01a21402-aa2c-7e11-8450-d6830e250917",
			"{project_id}", "01a21402-aa2c-7e11-8450-d6830e250917").Replace(rt.path)
		resp := ts.do(t, method, path, "", "")
		var body struct{ Error struct{ Code string } }
		_ = json.NewDecoder(resp.Body).Decode(&body)
		if resp.StatusCode != 405 || body.Error.Code != "method_not_allowed" || resp.Header.Get("Allow") == "" {
			t.Errorf("PATCH %s: %d %v", path, resp.StatusCode, body)
		}
	}
}

func TestRootServesTheWebClient(t *testing.T) {
	ts := newTestServer(t)
	client := *ts.Client()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := client.Get(ts.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	// Anything else under the root is still a JSON 404.
	resp = ts.do(t, "GET", "/nope", "", "")
	if resp.StatusCode != http.StatusNotFound || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("GET /nope: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}
