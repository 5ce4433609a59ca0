package transport

import (
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

// Checks shared by the pages storyd embeds (the API docs and the web
// client): they load nothing from elsewhere and run under a strict CSP.

var (
	externalURL    = regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]`)
	scriptTag      = regexp.MustCompile(`(?is)<script([^>]*)>(.*?)</script>`)
	inlineCode     = regexp.MustCompile(`(?i)<style|\sstyle=|\son[a-z]+=`)
	externalInFile = regexp.MustCompile(`@import|url\(\s*['"]?(https?:)?//|https?://[a-z]`)
)

// checkStrictPage fails when page holds an external URL or code the CSP
// refuses (inline scripts, styles, handlers).
func checkStrictPage(t *testing.T, name, page string) {
	t.Helper()
	if m := externalURL.FindString(page); m != "" {
		t.Errorf("%s: external URL %q", name, m)
	}
	if strings.Contains(page, "http://") || strings.Contains(page, "https://") {
		t.Errorf("%s: an http(s) URL in the page", name)
	}
	for _, m := range scriptTag.FindAllStringSubmatch(page, -1) {
		if !strings.Contains(m[1], "src=") || strings.TrimSpace(m[2]) != "" {
			t.Errorf("%s: inline script %q", name, m[0])
		}
	}
	if m := inlineCode.FindString(page); m != "" {
		t.Errorf("%s: inline code the CSP refuses: %q", name, m)
	}
}

// checkStrictAsset fetches an embedded asset and checks its type, headers,
// that it references nothing elsewhere (SVG's namespace names no place to
// fetch) and that revalidation is a 304. It returns the body.
func checkStrictAsset(t *testing.T, ts *testServer, path, ctype, csp string) string {
	t.Helper()
	resp := ts.do(t, "GET", path, "", "")
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), ctype) || len(b) < 200 {
		t.Fatalf("%s: %d %q, %d bytes", path, resp.StatusCode, resp.Header.Get("Content-Type"), len(b))
	}
	if resp.Header.Get("Content-Security-Policy") != csp || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("%s: headers %v", path, resp.Header)
	}
	body := strings.ReplaceAll(string(b), `xmlns="http://www.w3.org/2000/svg"`, "")
	if m := externalInFile.FindString(body); m != "" {
		t.Errorf("%s: external reference %q", path, m)
	}
	req, _ := http.NewRequest("GET", ts.URL+path, nil)
	req.Header.Set("If-None-Match", resp.Header.Get("ETag"))
	again, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	again.Body.Close()
	if resp.Header.Get("ETag") == "" || again.StatusCode != http.StatusNotModified {
		t.Errorf("%s: ETag %q, revalidation %d", path, resp.Header.Get("ETag"), again.StatusCode)
	}
	return string(b)
}

// checkTextOnly fails when a script can turn strings into markup or code.
func checkTextOnly(t *testing.T, name, js string) {
	t.Helper()
	for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", "setAttribute(\"style"} {
		if strings.Contains(js, bad) {
			t.Errorf("%s uses %s", name, bad)
		}
	}
}
