package transport

import (
	"io"
	"regexp"
	"strings"
	"testing"

	"github.com/storyd/storyd/transport/webclient"
)

// The web client at / is embedded HTML, CSS and JavaScript under a strict
// CSP: same-origin assets only, nothing inline, no markup from strings.
// (cmd/storyd's browser test drives it in Chromium.)
func TestWebClientServesEmbeddedAssets(t *testing.T) {
	ts := newTestServer(t)
	for _, path := range []string{"/", "/?transport=sse"} {
		resp := ts.do(t, "GET", path, "", "")
		b, _ := io.ReadAll(resp.Body)
		page := string(b)
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		if got := resp.Header.Get("Content-Security-Policy"); got != webclient.CSP {
			t.Errorf("%s: CSP %q", path, got)
		}
		for _, want := range []string{
			`<script type="module" src="/app/assets/app.js"></script>`,
			`<link rel="stylesheet" href="/app/assets/app.css">`,
			`aria-live="polite"`,
			`<label for="composer-input"`,
		} {
			if !strings.Contains(page, want) {
				t.Errorf("%s: no %s", path, want)
			}
		}
		checkStrictPage(t, path, page)
	}
	if !strings.Contains(webclient.CSP, "script-src 'self'") || strings.Contains(webclient.CSP, "unsafe") {
		t.Errorf("CSP %q", webclient.CSP)
	}

	assets := map[string]string{
		"app.js": "text/javascript", "api.js": "text/javascript", "conn.js": "text/javascript",
		"dom.js": "text/javascript", "dossier.js": "text/javascript", "app.css": "text/css", "icon.svg": "image/svg+xml",
	}
	imports := regexp.MustCompile(`from "\./([a-z]+\.js)"`)
	for name, ctype := range assets {
		body := checkStrictAsset(t, ts, webclient.AssetPrefix+name, ctype, webclient.CSP)
		if strings.HasSuffix(name, ".js") {
			checkTextOnly(t, name, body)
			// Every module a script imports is served.
			for _, m := range imports.FindAllStringSubmatch(body, -1) {
				if _, ok := assets[m[1]]; !ok {
					t.Errorf("%s imports %s, which is not served", name, m[1])
				}
			}
		}
	}

	for _, path := range []string{webclient.AssetPrefix + "nope.js", webclient.AssetPrefix + "index.html", webclient.AssetPrefix + "webclient.go"} {
		resp := ts.do(t, "GET", path, "", "")
		if resp.StatusCode != 404 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			t.Errorf("%s: %d %s", path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	}
	// The docs stay where they were.
	if resp := ts.do(t, "GET", "/docs", "", ""); resp.StatusCode != 200 {
		t.Errorf("/docs: %d", resp.StatusCode)
	}
}
