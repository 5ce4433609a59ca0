// Package apidocs is storyd's interactive API documentation: one HTML
// page, a stylesheet and a script, written for storyd and embedded in the
// binary, that render the OpenAPI document served at /api/v1/openapi.json.
// Nothing is loaded from another origin (storyd's machines have no
// internet), and the page runs under a strict Content-Security-Policy: no
// inline scripts or styles.
//
// The page has two modes: interactive (/docs), with "Try it" forms, and
// reference (/redoc or /docs?mode=reference), read-only with every
// operation expanded. The mode is a data-mode attribute on <body> that the
// script reads.
package apidocs

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"time"
)

//go:embed index.html docs.css docs.js
var files embed.FS

// FS holds the embedded files: index.html, docs.css and docs.js.
var FS fs.FS = files

// AssetPrefix is the path the page loads its script and stylesheet from;
// the server must route GET AssetPrefix+"{name}" to ServeAsset.
const AssetPrefix = "/docs/assets/"

// CSP is the Content-Security-Policy of the page and its assets.
const CSP = "default-src 'self'; style-src 'self'; script-src 'self'; connect-src 'self'"

// file is an embedded file ready to serve.
type file struct {
	name, contentType, etag string
	data                    []byte
}

var (
	interactivePage, referencePage file
	assets                         = map[string]file{}
)

func init() {
	page := mustRead("index.html")
	interactivePage = newFile("index.html", "text/html; charset=utf-8", page)
	referencePage = newFile("index.html", "text/html; charset=utf-8",
		bytes.Replace(page, []byte(`data-mode="interactive"`), []byte(`data-mode="reference"`), 1))
	assets["docs.css"] = newFile("docs.css", "text/css; charset=utf-8", mustRead("docs.css"))
	assets["docs.js"] = newFile("docs.js", "text/javascript; charset=utf-8", mustRead("docs.js"))
}

func mustRead(name string) []byte {
	b, err := files.ReadFile(name)
	if err != nil {
		panic("apidocs: " + err.Error()) // the embed directive lists it
	}
	return b
}

func newFile(name, contentType string, data []byte) file {
	sum := sha256.Sum256(data)
	return file{name: name, contentType: contentType, etag: `"` + hex.EncodeToString(sum[:8]) + `"`, data: data}
}

// ServePage writes the documentation page; reference selects the
// read-only reference mode.
func ServePage(w http.ResponseWriter, r *http.Request, reference bool) {
	f := interactivePage
	if reference {
		f = referencePage
	}
	serve(w, r, f)
}

// ServeAsset writes the asset called name (docs.js or docs.css) and
// reports whether there is one; when there is not it writes nothing.
func ServeAsset(w http.ResponseWriter, r *http.Request, name string) bool {
	f, ok := assets[name]
	if ok {
		serve(w, r, f)
	}
	return ok
}

func serve(w http.ResponseWriter, r *http.Request, f file) {
	h := w.Header()
	h.Set("Content-Type", f.contentType)
	h.Set("Content-Security-Policy", CSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	// Revalidate every time: a new binary may carry new assets under the
	// same names; the ETag makes revalidation a 304.
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", f.etag)
	http.ServeContent(w, r, f.name, time.Time{}, bytes.NewReader(f.data))
}
