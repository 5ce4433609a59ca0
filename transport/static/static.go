// Package static serves files embedded in the storyd binary (the API docs
// and the web client): each with its content type, a strong ETag so that
// revalidation is a 304, no-cache so that a new binary's files are picked
// up at once, and the headers a strict page needs (its
// Content-Security-Policy, nosniff, no referrer).
//
// Files are immutable after they are made; they are safe for concurrent
// use.
package static

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"time"
)

// File is one file ready to serve.
type File struct {
	name, contentType, etag string
	data                    []byte
}

// contentTypes are the types of the files storyd embeds. The mime
// package is not used: it reads the system's tables, which may call
// JavaScript application/javascript on one machine and text/javascript on
// another.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".svg":  "image/svg+xml",
	".png":  "image/png",
}

// NewFile makes a File of data; its content type comes from the
// extension of name (.html, .css, .js, .svg or .png).
func NewFile(name string, data []byte) (File, error) {
	ct, ok := contentTypes[path.Ext(name)]
	if !ok {
		return File{}, fmt.Errorf("static: %s: unknown file type", name)
	}
	sum := sha256.Sum256(data)
	return File{name: name, contentType: ct, etag: `"` + hex.EncodeToString(sum[:8]) + `"`, data: data}, nil
}

// MustRead reads name from fsys into a File. It panics on error: it is
// meant for files of an embed.FS, which the embed directive guarantees.
func MustRead(fsys fs.FS, name string) File {
	b, err := fs.ReadFile(fsys, name)
	if err == nil {
		var f File
		if f, err = NewFile(name, b); err == nil {
			return f
		}
	}
	panic("static: " + err.Error())
}

// Data returns the file's content (not a copy: do not modify it).
func (f File) Data() []byte { return f.data }

// Serve writes the file under the Content-Security-Policy csp, answering
// conditional requests (If-None-Match) with 304.
func (f File) Serve(w http.ResponseWriter, r *http.Request, csp string) {
	h := w.Header()
	h.Set("Content-Type", f.contentType)
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	// Revalidate every time: a new binary may carry new files under the
	// same names; the ETag makes revalidation a 304.
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", f.etag)
	http.ServeContent(w, r, f.name, time.Time{}, bytes.NewReader(f.data))
}

// Set is a set of files served by name.
type Set map[string]File

// MustReadSet reads the named files of fsys (see MustRead).
func MustReadSet(fsys fs.FS, names ...string) Set {
	s := make(Set, len(names))
	for _, n := range names {
		s[n] = MustRead(fsys, n)
	}
	return s
}

// Serve writes the file called name under csp and reports whether there is
// one; when there is not it writes nothing.
func (s Set) Serve(w http.ResponseWriter, r *http.Request, name, csp string) bool {
	f, ok := s[name]
	if ok {
		f.Serve(w, r, csp)
	}
	return ok
}
