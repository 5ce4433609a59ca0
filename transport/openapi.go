package transport

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strconv"
	"sync"

	"github.com/danielgtaylor/huma/v2"

	"github.com/storyd/storyd/story"
	"github.com/storyd/storyd/transport/apidocs"
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

// handleDocs serves the API documentation page (transport/apidocs): our
// own HTML, CSS and JavaScript, embedded in the binary, that render
// /api/v1/openapi.json with "Try it" forms. Nothing comes from a CDN, and
// the page runs under a strict Content-Security-Policy. ?mode=reference
// gives the read-only view of /redoc.
func (s *Server) handleDocs(w http.ResponseWriter, r *http.Request) {
	apidocs.ServePage(w, r, r.URL.Query().Get("mode") == "reference")
}

// handleRedoc serves the same page in its read-only reference mode.
func (s *Server) handleRedoc(w http.ResponseWriter, r *http.Request) {
	apidocs.ServePage(w, r, true)
}

// handleDocsAsset serves the page's script and stylesheet
// (GET /docs/assets/{name}).
func (s *Server) handleDocsAsset(w http.ResponseWriter, r *http.Request) {
	if !apidocs.ServeAsset(w, r, r.PathValue("name")) {
		writeError(w, errNotFound("not_found", "no such documentation asset: "+r.URL.Path))
	}
}
