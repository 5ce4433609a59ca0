package static

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"
)

func TestFileServesWithHeadersAndRevalidates(t *testing.T) {
	fsys := fstest.MapFS{"app.js": {Data: []byte("export const x = 1;\n")}, "notes.txt": {Data: []byte("x")}}
	set := MustReadSet(fsys, "app.js")
	const csp = "default-src 'self'"

	rec := httptest.NewRecorder()
	if !set.Serve(rec, httptest.NewRequest("GET", "/app.js", nil), "app.js", csp) {
		t.Fatal("app.js not served")
	}
	h := rec.Header()
	if rec.Code != 200 || h.Get("Content-Type") != "text/javascript; charset=utf-8" || h.Get("Content-Security-Policy") != csp ||
		h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Cache-Control") != "no-cache" || !strings.HasPrefix(h.Get("ETag"), `"`) {
		t.Fatalf("%d %v", rec.Code, h)
	}

	req := httptest.NewRequest("GET", "/app.js", nil)
	req.Header.Set("If-None-Match", h.Get("ETag"))
	rec = httptest.NewRecorder()
	set.Serve(rec, req, "app.js", csp)
	if rec.Code != http.StatusNotModified {
		t.Fatalf("revalidation: %d", rec.Code)
	}

	rec = httptest.NewRecorder()
	if set.Serve(rec, httptest.NewRequest("GET", "/nope.js", nil), "nope.js", csp) || rec.Body.Len() != 0 || len(rec.Header()) != 0 {
		t.Fatalf("an unknown name wrote %d %v", rec.Code, rec.Header())
	}
	if _, err := NewFile("notes.txt", []byte("x")); err == nil {
		t.Fatal("a .txt file has no known type, yet NewFile took it")
	}
}
