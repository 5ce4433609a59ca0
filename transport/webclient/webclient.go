// Package webclient is storyd's built-in web client, served at GET /: one
// HTML page, a stylesheet and a few JavaScript modules, written for storyd
// and embedded in the binary, so that `make run` is all a person needs to
// tell a story in a browser. It is also the reference client of the
// streaming protocol (docs/protocol.md): WebSocket first, SSE when the
// WebSocket cannot connect (or with ?transport=sse), resume after the last
// seq seen, reset handling, live dossier events.
//
// Nothing is loaded from another origin, and the page runs under a strict
// Content-Security-Policy: no inline scripts or styles; the scripts put
// untrusted text into the page with textContent, never as markup.
//
// A Client is immutable once made and safe for concurrent use.
package webclient

import (
	"embed"
	"net/http"

	"github.com/storyd/storyd/transport/static"
)

//go:embed index.html app.css app.js api.js conn.js dom.js dossier.js icon.svg
var files embed.FS

// AssetPrefix is the path the page loads its scripts, stylesheet and icon
// from; the server must route GET AssetPrefix+"{name}" to ServeAsset.
const AssetPrefix = "/app/assets/"

// CSP is the Content-Security-Policy of the page and its assets:
// same-origin scripts, styles, images and connections (which include the
// WebSocket), nothing inline, no plugins, no framing.
const CSP = "default-src 'self'; style-src 'self'; script-src 'self'; connect-src 'self'; img-src 'self'; " +
	"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// Client serves the page and its assets.
type Client struct {
	page   static.File
	assets static.Set
}

// New returns the web client.
func New() *Client {
	return &Client{
		page:   static.MustRead(files, "index.html"),
		assets: static.MustReadSet(files, "app.css", "app.js", "api.js", "conn.js", "dom.js", "dossier.js", "icon.svg"),
	}
}

// ServePage writes the page.
func (c *Client) ServePage(w http.ResponseWriter, r *http.Request) {
	c.page.Serve(w, r, CSP)
}

// ServeAsset writes the asset called name and reports whether there is
// one; when there is not it writes nothing.
func (c *Client) ServeAsset(w http.ResponseWriter, r *http.Request, name string) bool {
	return c.assets.Serve(w, r, name, CSP)
}
