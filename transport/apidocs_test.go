package transport

import (
	"io"
	"net/http"
	"regexp"
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
		// No CDN: nothing absolute, no protocol-relative URL, and nothing
		// the CSP would refuse (inline scripts, styles, handlers).
		if m := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]`).FindString(page); m != "" {
			t.Errorf("%s: external URL %q", tc.path, m)
		}
		if strings.Contains(page, "http://") || strings.Contains(page, "https://") {
			t.Errorf("%s: an http(s) URL in the page", tc.path)
		}
		for _, m := range regexp.MustCompile(`(?is)<script([^>]*)>(.*?)</script>`).FindAllStringSubmatch(page, -1) {
			if !strings.Contains(m[1], "src=") || strings.TrimSpace(m[2]) != "" {
				t.Errorf("%s: inline script %q", tc.path, m[0])
			}
		}
		if m := regexp.MustCompile(`(?i)<style|\sstyle=|\son[a-z]+=`).FindString(page); m != "" {
			t.Errorf("%s: inline code the CSP refuses: %q", tc.path, m)
		}
	}

	assets := map[string]string{"docs.js": "text/javascript", "docs.css": "text/css"}
	for name, ctype := range assets {
		resp := ts.do(t, "GET", apidocs.AssetPrefix+name, "", "")
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), ctype) || len(b) < 1000 {
			t.Fatalf("%s: %d %q, %d bytes", name, resp.StatusCode, resp.Header.Get("Content-Type"), len(b))
		}
		if resp.Header.Get("Content-Security-Policy") != csp || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: headers %v", name, resp.Header)
		}
		// The assets load nothing from elsewhere either.
		if m := regexp.MustCompile(`@import|url\(\s*['"]?(https?:)?//|https?://[a-z]`).FindString(string(b)); m != "" {
			t.Errorf("%s: external reference %q", name, m)
		}
		// Revalidation is a 304.
		req, _ := http.NewRequest("GET", ts.URL+apidocs.AssetPrefix+name, nil)
		req.Header.Set("If-None-Match", resp.Header.Get("ETag"))
		again, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		again.Body.Close()
		if resp.Header.Get("ETag") == "" || again.StatusCode != http.StatusNotModified {
			t.Errorf("%s: ETag %q, revalidation %d", name, resp.Header.Get("ETag"), again.StatusCode)
		}
	}
	js, _ := io.ReadAll(ts.do(t, "GET", apidocs.AssetPrefix+"docs.js", "", "").Body)
	// Untrusted strings become text, never markup.
	for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"} {
		if strings.Contains(string(js), bad) {
			t.Errorf("docs.js uses %s", bad)
		}
	}

	for _, path := range []string{apidocs.AssetPrefix + "nope.js", apidocs.AssetPrefix + "index.html", apidocs.AssetPrefix + "apidocs.go"} {
		resp := ts.do(t, "GET", path, "", "")
		if resp.StatusCode != 404 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			t.Errorf("%s: %d %s", path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	}
}
