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
	"embed"
	"io/fs"
	"net/http"

	"github.com/storyd/storyd/transport/static"
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

var (
	interactivePage, referencePage static.File
	assets                         static.Set
)

func init() {
	page := static.MustRead(files, "index.html")
	interactivePage = page
	ref, err := static.NewFile("index.html",
		bytes.Replace(page.Data(), []byte(`data-mode="interactive"`), []byte(`data-mode="reference"`), 1))
	if err != nil {
		panic("apidocs: " + err.Error())
	}
	referencePage = ref
	assets = static.MustReadSet(files, "docs.css", "docs.js")
}

// ServePage writes the documentation page; reference selects the
// read-only reference mode.
func ServePage(w http.ResponseWriter, r *http.Request, reference bool) {
	f := interactivePage
	if reference {
		f = referencePage
	}
	f.Serve(w, r, CSP)
}

// ServeAsset writes the asset called name (docs.js or docs.css) and
// reports whether there is one; when there is not it writes nothing.
func ServeAsset(w http.ResponseWriter, r *http.Request, name string) bool {
	return assets.Serve(w, r, name, CSP)
}
