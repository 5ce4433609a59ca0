package transport

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"

	"github.com/danielgtaylor/huma/v2"

	"github.com/storyd/storyd/story"
)

// rawSnapshot is a dossier snapshot as stored (JSON). It is a type of its
// own so that the OpenAPI document can describe it with story.Snapshot's
// schema.
type rawSnapshot json.RawMessage

// MarshalJSON implements json.Marshaler.
func (r rawSnapshot) MarshalJSON() ([]byte, error) {
	if len(r) == 0 {
		return []byte("null"), nil
	}
	return r, nil
}

// UnmarshalJSON implements json.Unmarshaler.
func (r *rawSnapshot) UnmarshalJSON(b []byte) error {
	*r = append((*r)[:0], b...)
	return nil
}

// openAPIDoc builds the OpenAPI 3.1 document from the route table: the
// schemas of request and response bodies are generated from the Go types
// the handlers use (huma's schema registry), so the document follows the
// code.
func (s *Server) openAPIDoc() *huma.OpenAPI {
	reg := huma.NewMapRegistry("#/components/schemas/", huma.DefaultSchemaNamer)
	reg.RegisterTypeAlias(reflect.TypeFor[rawSnapshot](), reflect.TypeFor[story.Snapshot]())
	errSchema := reg.Schema(reflect.TypeFor[errorBody](), true, "ErrorBody")
	eventSchema := reg.Schema(reflect.TypeFor[wireEvent](), true, "SessionEvent")

	doc := &huma.OpenAPI{
		OpenAPI: "3.1.0",
		Info: &huma.Info{
			Title:   "storyd",
			Version: "1",
			Description: "The realtime session server of Stories We Tell. Streaming protocols (SSE events, WebSocket " +
				"frames, resume, close codes) are described in docs/protocol.md of the repository; errors are always " +
				"`{\"error\":{\"code\",\"message\"}}`.",
		},
		Components: &huma.Components{
			Schemas: reg,
			SecuritySchemes: map[string]*huma.SecurityScheme{
				"bearer": {Type: "http", Scheme: "bearer", BearerFormat: "JWT",
					Description: "A Supabase access token."},
				"anonymous": {Type: "apiKey", In: "header", Name: "X-User-ID",
					Description: "An anonymous user id (a UUID); refused for ids of registered or migrated users."},
			},
		},
	}
	for _, rt := range s.table() {
		d := rt.doc
		op := &huma.Operation{
			OperationID: d.ID,
			Method:      rt.method,
			Path:        rt.path,
			Summary:     d.Summary,
			Description: d.Description,
			Responses:   map[string]*huma.Response{},
		}
		if d.Tag != "" {
			op.Tags = []string{d.Tag}
		}
		if d.Identity {
			op.Security = []map[string][]string{{"bearer": {}}, {"anonymous": {}}}
		}
		for _, p := range d.Params {
			typ := p.Type
			if typ == "" {
				typ = "string"
			}
			op.Parameters = append(op.Parameters, &huma.Param{Name: p.Name, In: p.In, Description: p.Description,
				Required: p.Required, Schema: &huma.Schema{Type: typ, Format: p.Format}})
		}
		if d.Body != nil {
			op.RequestBody = &huma.RequestBody{Required: true, Content: map[string]*huma.MediaType{
				"application/json": {Schema: reg.Schema(reflect.TypeOf(d.Body), true, d.ID+"Request")},
			}}
		}
		ok := &huma.Response{Description: http.StatusText(d.Status)}
		switch {
		case d.Stream:
			ok.Content = map[string]*huma.MediaType{"text/event-stream": {Schema: eventSchema}}
		case d.Response != nil:
			ok.Content = map[string]*huma.MediaType{"application/json": {Schema: reg.Schema(reflect.TypeOf(d.Response), true, d.ID+"Response")}}
		}
		op.Responses[strconv.Itoa(d.Status)] = ok
		for _, code := range d.Errors {
			op.Responses[strconv.Itoa(code)] = &huma.Response{Description: http.StatusText(code),
				Content: map[string]*huma.MediaType{"application/json": {Schema: errSchema}}}
		}
		doc.AddOperation(op)
	}
	return doc
}

// openAPI is the document, built once.
type openAPI struct {
	once sync.Once
	json []byte
}

func (s *Server) handleOpenAPI(w http.ResponseWriter, r *http.Request) {
	s.spec.once.Do(func() {
		b, err := json.Marshal(s.openAPIDoc())
		if err != nil {
			panic("transport: encode OpenAPI document: " + err.Error()) // a bug in the table
		}
		s.spec.json = b
	})
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(s.spec.json)
}

// docsPage renders the OpenAPI document with a viewer loaded from a CDN
// (as FastAPI's /docs and /redoc do); the document itself is served
// locally at /api/v1/openapi.json.
func docsPage(title, body string) string {
	return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>` + title + `</title></head>
<body>` + body + `</body></html>`
}

func (s *Server) handleDocs(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write([]byte(docsPage("storyd API", strings.TrimSpace(`
<link rel="stylesheet" href="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui.css">
<div id="swagger-ui"><p>Loading the API reference… The raw document is at <a href="/api/v1/openapi.json">/api/v1/openapi.json</a>.</p></div>
<script src="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui-bundle.js"></script>
<script>window.ui = SwaggerUIBundle({url: "/api/v1/openapi.json", dom_id: "#swagger-ui"});</script>`))))
}

func (s *Server) handleRedoc(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write([]byte(docsPage("storyd API", strings.TrimSpace(`
<redoc spec-url="/api/v1/openapi.json"></redoc>
<noscript>The raw document is at <a href="/api/v1/openapi.json">/api/v1/openapi.json</a>.</noscript>
<script src="https://cdn.jsdelivr.net/npm/redoc@2/bundles/redoc.standalone.js"></script>`))))
}
