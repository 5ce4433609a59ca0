package transport

import (
	"io"
	"strings"
	"testing"

	"github.com/storyd/storyd/transport/apidocs"
)

// The documentation pages are our own embedded HTML, CSS and JavaScript:
// same-origin assets only, under a strict CSP (no CDN, no inline code).
func TestDocsPagesServeEmbeddedAssets(t *testing.T) {
	ts := newTestServer(t)
	const csp = "default-src 'self'; style-src 'self'; script-src 'self'; connect-src 'self'"
	for _, tc := range []struct{ path, mode string }{
		{"/docs", "interactive"},
		{"/redoc", "reference"},
		{"/docs?mode=reference", "reference"},
	} {
		resp := ts.do(t, "GET", tc.path, "", "")
		b, _ := io.ReadAll(resp.Body)
		page := string(b)
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
			t.Fatalf("%s: %d %s", tc.path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		if got := resp.Header.Get("Content-Security-Policy"); got != csp {
			t.Errorf("%s: CSP %q", tc.path, got)
		}
		for _, want := range []string{
			`<script src="/docs/assets/docs.js" defer></script>`,
			`<link rel="stylesheet" href="/docs/assets/docs.css">`,
			`data-mode="` + tc.mode + `"`,
			`data-spec="/api/v1/openapi.json"`,
		} {
			if !strings.Contains(page, want) {
				t.Errorf("%s: no %s in\n%s", tc.path, want, page)
			}
		}
		checkStrictPage(t, tc.path, page)
	}

	assets := map[string]string{"docs.js": "text/javascript", "docs.css": "text/css"}
	for name, ctype := range assets {
		checkStrictAsset(t, ts, apidocs.AssetPrefix+name, ctype, csp)
	}
	js, _ := io.ReadAll(ts.do(t, "GET", apidocs.AssetPrefix+"docs.js", "", "").Body)
	// Untrusted strings become text, never markup.
	checkTextOnly(t, "docs.js", string(js))

	for _, path := range []string{apidocs.AssetPrefix + "nope.js", apidocs.AssetPrefix + "index.html", apidocs.AssetPrefix + "apidocs.go"} {
		resp := ts.do(t, "GET", path, "", "")
		if resp.StatusCode != 404 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			t.Errorf("%s: %d %s", path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	}
}
