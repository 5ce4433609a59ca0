package transport

// Authentication and authorization of the HTTP and WebSocket surface, end
// to end: a real auth.Verifier checks tokens minted by an authtest.Issuer
// (a fake Supabase Auth serving a JWKS), in front of real session actors,
// a real SQLite store and a fake upstream model.

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"

	"github.com/storyd/storyd/auth"
	"github.com/storyd/storyd/auth/authtest"
)

// authEnv is an itEnv whose server verifies access tokens of iss.
type authEnv struct {
	*itEnv
	iss *authtest.Issuer
}

func newAuthEnv(t *testing.T) *authEnv {
	t.Helper()
	iss := authtest.NewIssuer(t)
	ctx, cancel := context.WithCancel(context.Background())
	v, err := auth.New(ctx, auth.Config{JWKSURL: iss.JWKSURL(), Issuer: iss.IssuerURL(), HTTPClient: iss.Client()})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	// Registered before newEnv's cleanup, so it runs after the server is
	// gone (and before the issuer's server closes).
	t.Cleanup(func() {
		v.Close()
		cancel()
	})
	env := newEnv(t, envOpts{transport: func(c *Config) { c.Tokens = v }})
	return &authEnv{itEnv: env, iss: iss}
}

// caller is what a request presents: an access token, an anonymous id, or
// neither.
type caller struct {
	token  string // sent as Authorization: Bearer
	userID string // sent as X-User-ID
}

// registered returns a new registered user and a valid token of theirs.
func (e *authEnv) registered(t *testing.T) (string, caller) {
	t.Helper()
	id := uuid.NewString()
	return id, caller{token: e.iss.Token(t, authtest.Sub(id), authtest.Email("u-"+id[:8]+"@example.com"))}
}

// tamper changes one character in the middle of a token's signature.
func tamper(tok string) string {
	i := strings.LastIndexByte(tok, '.') + 10
	c := byte('A')
	if tok[i] == 'A' {
		c = 'B'
	}
	return tok[:i] + string(c) + tok[i+1:]
}

func (e *authEnv) send(t *testing.T, ctx context.Context, method, path string, c caller, body string) *http.Response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, e.ts.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if c.userID != "" {
		req.Header.Set("X-User-ID", c.userID)
	}
	resp, err := e.ts.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp
}

// call sends one request and reads the whole answer (an SSE chat answer
// ends after its done event).
func (e *authEnv) call(t *testing.T, method, path string, c caller, body string) (int, http.Header, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wsWait)
	defer cancel()
	resp := e.send(t, ctx, method, path, c, body)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp.StatusCode, resp.Header, b
}

// mustJSON calls and decodes a 2xx JSON answer into v.
func (e *authEnv) mustJSON(t *testing.T, method, path string, c caller, body string, status int, v any) {
	t.Helper()
	got, _, b := e.call(t, method, path, c, body)
	if got != status {
		t.Fatalf("%s %s: %d %s, want %d", method, path, got, b, status)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s %s: %v in %s", method, path, err, b)
	}
}

// checkError checks an answer is wantStatus with the JSON error shape
// {"error":{"code","message"}} and, when wantCode is set, that code.
func checkError(t *testing.T, what string, status int, body []byte, wantStatus int, wantCode string) {
	t.Helper()
	if status != wantStatus {
		t.Fatalf("%s: %d %s, want %d %s", what, status, body, wantStatus, wantCode)
	}
	var top map[string]json.RawMessage
	var info map[string]any
	if err := json.Unmarshal(body, &top); err != nil || len(top) != 1 || top["error"] == nil ||
		json.Unmarshal(top["error"], &info) != nil || len(info) != 2 {
		t.Fatalf("%s: body %s is not {\"error\":{\"code\",\"message\"}}", what, body)
	}
	code, _ := info["code"].(string)
	msg, _ := info["message"].(string)
	if code == "" || msg == "" {
		t.Fatalf("%s: error without code or message: %s", what, body)
	}
	if wantCode != "" && code != wantCode {
		t.Fatalf("%s: code %q, want %q (%s)", what, code, wantCode, body)
	}
}

// chatted is what the metadata event of a chat says.
type chatted struct {
	SessionID, ProjectID, UserID, Status string
	Header                               http.Header
}

// chatAs posts a chat and reads its reply to done.
func (e *authEnv) chatAs(t *testing.T, c caller, body string) chatted {
	t.Helper()
	status, hdr, b := e.call(t, "POST", "/api/v1/chat", c, body)
	if status != http.StatusOK {
		t.Fatalf("chat %s: %d %s", body, status, b)
	}
	return metadataOf(t, hdr, b)
}

func metadataOf(t *testing.T, hdr http.Header, sse []byte) chatted {
	t.Helper()
	evs := readSSE(t, strings.NewReader(string(sse)))
	if len(evs) == 0 || evs[len(evs)-1].Data["type"] != "done" {
		t.Fatalf("chat stream does not end with done: %s", sse)
	}
	for _, ev := range evs {
		if ev.Data["type"] == "metadata" {
			m, _ := ev.Data["metadata"].(map[string]any)
			s := func(k string) string { v, _ := m[k].(string); return v }
			return chatted{SessionID: s("session_id"), ProjectID: s("project_id"), UserID: s("user_id"),
				Status: s("status"), Header: hdr}
		}
	}
	t.Fatalf("no metadata in %s", sse)
	return chatted{}
}

const testSnapshot = `{"title":"Gull Rock","characters":[{"name":"Ada","description":"keeps the light","relationships":[],"character_arc":""}],"themes":["Duty"],"locations":["Maine"],"plot_points":[]}`

// fixture is one owner's resources: a session with one exchange in
// project, which has a dossier (version 1).
type fixture struct {
	ownerID string
	owner   caller
	session string
	project string
	// Set by some routes' prep.
	spare     string // another project of the owner, without a dossier
	temp      string // an anonymous user with a session
	tempSessn string
}

func (e *authEnv) newFixture(t *testing.T) *fixture {
	t.Helper()
	fx := &fixture{}
	fx.ownerID, fx.owner = e.registered(t)
	m := e.chatAs(t, fx.owner, `{"text":"A film about my grandmother"}`)
	if m.UserID != fx.ownerID || m.Status != "complete" {
		t.Fatalf("owner's chat: %+v", m)
	}
	fx.session, fx.project = m.SessionID, m.ProjectID
	var d map[string]any
	e.mustJSON(t, "POST", "/api/v1/dossier", fx.owner,
		`{"project_id":"`+fx.project+`","snapshot_json":`+testSnapshot+`}`, http.StatusCreated, &d)
	if d["user_id"] != fx.ownerID {
		t.Fatalf("dossier %v", d)
	}
	return fx
}

// intact checks that the owner's resources are as the fixture made them.
func (e *authEnv) intact(t *testing.T, fx *fixture) {
	t.Helper()
	var msgs []map[string]any
	e.mustJSON(t, "GET", "/api/v1/sessions/"+fx.session+"/messages", fx.owner, "", http.StatusOK, &msgs)
	if len(msgs) != 2 {
		t.Fatalf("the owner's session has %d messages, want 2", len(msgs))
	}
	var d map[string]any
	e.mustJSON(t, "GET", "/api/v1/dossier/"+fx.project, fx.owner, "", http.StatusOK, &d)
	if d["version"] != float64(1) || d["user_id"] != fx.ownerID {
		t.Fatalf("the owner's dossier changed: %v", d)
	}
}

// expect is one cell's expected answer: a 2xx status, or an error status
// and code. empty expects a 200 with an empty JSON list.
type expect struct {
	status int
	code   string
	empty  bool
}

// identities of the matrix, in order.
var matrixIdentities = []string{"owner", "other_user", "anonymous_stranger", "no_identity", "bad_token", "expired_token"}

type routeCase struct {
	name   string
	method string
	path   func(fx *fixture) string
	body   func(fx *fixture) string
	// prep, when set, adds to the fixture what the route needs.
	prep func(t *testing.T, e *authEnv, fx *fixture)
	// stream: the answer does not end; only its status is checked.
	stream bool
	// notFound is the code of other users' 404.
	notFound string
	// list: other users get 200 and an empty list.
	list bool
	// override replaces the default expectation of some identities.
	override map[string]expect
	// owned checks the owner's 2xx answer.
	owned func(t *testing.T, e *authEnv, fx *fixture, hdr http.Header, body []byte)
	// untouched checks, after a refused call, what the route would change.
	untouched func(t *testing.T, e *authEnv, fx *fixture)
}

func (rc routeCase) expected(identity string) expect {
	if x, ok := rc.override[identity]; ok {
		return x
	}
	switch identity {
	case "owner":
		return expect{status: http.StatusOK}
	case "other_user", "anonymous_stranger":
		if rc.list {
			return expect{status: http.StatusOK, empty: true}
		}
		return expect{status: http.StatusNotFound, code: rc.notFound}
	case "no_identity":
		return expect{status: http.StatusUnauthorized, code: "identity_required"}
	case "bad_token":
		return expect{status: http.StatusUnauthorized, code: "invalid_token"}
	case "expired_token":
		return expect{status: http.StatusUnauthorized, code: "token_expired"}
	}
	panic("unknown identity " + identity)
}

func staticPath(p string) func(*fixture) string { return func(*fixture) string { return p } }

func matrixRoutes() []routeCase {
	sessionPath := func(suffix string) func(*fixture) string {
		return func(fx *fixture) string { return "/api/v1/sessions/" + fx.session + suffix }
	}
	dossierPath := func(fx *fixture) string { return "/api/v1/dossier/" + fx.project }
	decodeList := func(t *testing.T, body []byte) []map[string]any {
		t.Helper()
		var rows []map[string]any
		if err := json.Unmarshal(body, &rows); err != nil {
			t.Fatalf("%v in %s", err, body)
		}
		return rows
	}
	return []routeCase{
		{
			name: "POST chat", method: "POST", path: staticPath("/api/v1/chat"),
			body:     func(fx *fixture) string { return `{"text":"And then?","session_id":"` + fx.session + `"}` },
			notFound: "session_not_found",
			// Without an identity the chat gets a minted anonymous id, which
			// does not own the session (a chat without session_id is 200:
			// TestAuthzNoIdentityChatMintsAnID).
			override: map[string]expect{"no_identity": {status: http.StatusNotFound, code: "session_not_found"}},
			owned: func(t *testing.T, e *authEnv, fx *fixture, hdr http.Header, body []byte) {
				m := metadataOf(t, hdr, body)
				if m.SessionID != fx.session || m.UserID != fx.ownerID || m.Status != "complete" {
					t.Fatalf("owner's chat metadata %+v", m)
				}
			},
		},
		{
			name: "GET sessions", method: "GET", path: staticPath("/api/v1/sessions"), list: true,
			owned: func(t *testing.T, e *authEnv, fx *fixture, _ http.Header, body []byte) {
				rows := decodeList(t, body)
				if len(rows) != 1 || rows[0]["session_id"] != fx.session || rows[0]["user_id"] != fx.ownerID {
					t.Fatalf("owner's sessions %s", body)
				}
			},
		},
		{
			name: "GET messages", method: "GET", path: sessionPath("/messages"), notFound: "session_not_found",
			owned: func(t *testing.T, e *authEnv, fx *fixture, _ http.Header, body []byte) {
				if rows := decodeList(t, body); len(rows) != 2 || rows[0]["session_id"] != fx.session {
					t.Fatalf("owner's messages %s", body)
				}
			},
		},
		{
			name: "DELETE session", method: "DELETE", path: sessionPath(""), notFound: "session_not_found",
			owned: func(t *testing.T, e *authEnv, fx *fixture, _ http.Header, _ []byte) {
				status, _, b := e.call(t, "GET", "/api/v1/sessions/"+fx.session+"/messages", fx.owner, "")
				checkError(t, "messages of a deleted session", status, b, http.StatusNotFound, "session_not_found")
			},
		},
		{name: "GET stream", method: "GET", path: sessionPath("/stream"), notFound: "session_not_found", stream: true},
		{
			name: "POST cancel", method: "POST", path: sessionPath("/cancel"), notFound: "session_not_found",
			owned: func(t *testing.T, e *authEnv, fx *fixture, _ http.Header, body []byte) {
				var r map[string]any
				if json.Unmarshal(body, &r) != nil || r["session_id"] != fx.session || r["cancelled"] != false {
					t.Fatalf("owner's cancel %s", body)
				}
			},
		},
		{
			name: "GET dossiers", method: "GET", path: staticPath("/api/v1/dossier"), list: true,
			owned: func(t *testing.T, e *authEnv, fx *fixture, _ http.Header, body []byte) {
				if rows := decodeList(t, body); len(rows) != 1 || rows[0]["project_id"] != fx.project {
					t.Fatalf("owner's dossiers %s", body)
				}
			},
		},
		{
			name: "GET dossier", method: "GET", path: dossierPath, notFound: "dossier_not_found",
			owned: func(t *testing.T, e *authEnv, fx *fixture, _ http.Header, body []byte) {
				var d map[string]any
				if json.Unmarshal(body, &d) != nil || d["project_id"] != fx.project || d["user_id"] != fx.ownerID {
					t.Fatalf("owner's dossier %s", body)
				}
			},
		},
		{
			name: "POST dossier", method: "POST", path: staticPath("/api/v1/dossier"), notFound: "project_not_found",
			prep: func(t *testing.T, e *authEnv, fx *fixture) {
				fx.spare = e.chatAs(t, fx.owner, `{"text":"Another film"}`).ProjectID
			},
			body: func(fx *fixture) string {
				return `{"project_id":"` + fx.spare + `","snapshot_json":` + testSnapshot + `}`
			},
			override: map[string]expect{"owner": {status: http.StatusCreated}},
			owned: func(t *testing.T, e *authEnv, fx *fixture, _ http.Header, body []byte) {
				var d map[string]any
				if json.Unmarshal(body, &d) != nil || d["project_id"] != fx.spare || d["user_id"] != fx.ownerID {
					t.Fatalf("owner's new dossier %s", body)
				}
			},
			untouched: func(t *testing.T, e *authEnv, fx *fixture) {
				status, _, b := e.call(t, "GET", "/api/v1/dossier/"+fx.spare, fx.owner, "")
				checkError(t, "the spare project's dossier", status, b, http.StatusNotFound, "dossier_not_found")
			},
		},
		{
			name: "PUT dossier", method: "PUT", path: dossierPath, notFound: "dossier_not_found",
			body: func(*fixture) string { return `{"version":1,"snapshot_json":{"themes":["Duty","Loneliness"]}}` },
			owned: func(t *testing.T, e *authEnv, fx *fixture, _ http.Header, body []byte) {
				var d map[string]any
				if json.Unmarshal(body, &d) != nil || d["version"] != float64(2) {
					t.Fatalf("owner's update %s", body)
				}
			},
		},
		{
			name: "DELETE dossier", method: "DELETE", path: dossierPath, notFound: "dossier_not_found",
			owned: func(t *testing.T, e *authEnv, fx *fixture, _ http.Header, _ []byte) {
				status, _, b := e.call(t, "GET", "/api/v1/dossier/"+fx.project, fx.owner, "")
				checkError(t, "a deleted dossier", status, b, http.StatusNotFound, "dossier_not_found")
			},
		},
		{
			name: "POST users", method: "POST", path: staticPath("/api/v1/users"), notFound: "user_not_found",
			body: func(fx *fixture) string {
				return `{"user_id":"` + fx.ownerID + `","display_name":"Owner","avatar_url":"https://example.com/a.png"}`
			},
			override: map[string]expect{"anonymous_stranger": {status: http.StatusUnauthorized, code: "sign_in_required"}},
			owned: func(t *testing.T, e *authEnv, fx *fixture, _ http.Header, body []byte) {
				var u map[string]any
				if json.Unmarshal(body, &u) != nil || u["user_id"] != fx.ownerID || u["display_name"] != "Owner" ||
					u["is_anonymous"] != false {
					t.Fatalf("owner's profile %s", body)
				}
			},
			untouched: func(t *testing.T, e *authEnv, fx *fixture) {
				u, err := e.store.GetUser(context.Background(), fx.ownerID)
				if err != nil || u.DisplayName != "" || u.AvatarURL != "" {
					t.Fatalf("owner's profile changed: %+v %v", u, err)
				}
			},
		},
		{
			name: "POST migrate", method: "POST", path: staticPath("/api/v1/sessions/migrate"),
			prep: func(t *testing.T, e *authEnv, fx *fixture) {
				fx.temp = uuid.NewString()
				fx.tempSessn = e.chatAs(t, caller{userID: fx.temp}, `{"text":"An anonymous film"}`).SessionID
			},
			body: func(fx *fixture) string {
				return `{"temp_user_id":"` + fx.temp + `","permanent_user_id":"` + fx.ownerID + `"}`
			},
			override: map[string]expect{
				"other_user":         {status: http.StatusForbidden, code: "not_your_account"},
				"anonymous_stranger": {status: http.StatusUnauthorized, code: "sign_in_required"},
			},
			owned: func(t *testing.T, e *authEnv, fx *fixture, _ http.Header, body []byte) {
				var r map[string]any
				if json.Unmarshal(body, &r) != nil || r["sessions"] != float64(1) || r["projects"] != float64(1) {
					t.Fatalf("owner's migration %s", body)
				}
			},
			untouched: func(t *testing.T, e *authEnv, fx *fixture) {
				s, err := e.store.GetSession(context.Background(), fx.tempSessn)
				if err != nil || s.UserID != fx.temp {
					t.Fatalf("the anonymous user's session moved: %+v %v", s, err)
				}
			},
		},
	}
}

// TestAuthzMatrix: every REST route × every kind of caller. The owner (a
// JWT user who made the resources) succeeds; other users, registered or
// anonymous, get 404 (or an empty list) and change nothing; a caller with
// no identity, a tampered token or an expired one gets 401 with its code.
func TestAuthzMatrix(t *testing.T) {
	e := newAuthEnv(t)
	for _, rc := range matrixRoutes() {
		t.Run(rc.name, func(t *testing.T) {
			t.Parallel()
			for _, identity := range matrixIdentities {
				t.Run(identity, func(t *testing.T) {
					fx := e.newFixture(t)
					if rc.prep != nil {
						rc.prep(t, e, fx)
					}
					var c caller
					switch identity {
					case "owner":
						c = fx.owner
					case "other_user":
						_, c = e.registered(t)
					case "anonymous_stranger":
						c = caller{userID: uuid.NewString()}
					case "bad_token":
						c = caller{token: tamper(fx.owner.token)}
					case "expired_token":
						c = caller{token: e.iss.Token(t, authtest.Sub(fx.ownerID), authtest.ExpiresIn(-time.Hour))}
					}
					body := ""
					if rc.body != nil {
						body = rc.body(fx)
					}
					path := rc.path(fx)
					want := rc.expected(identity)
					what := rc.method + " " + path + " as " + identity

					var (
						status int
						hdr    http.Header
						b      []byte
					)
					if rc.stream {
						ctx, cancel := context.WithCancel(context.Background())
						resp := e.send(t, ctx, rc.method, path, c, body)
						status, hdr = resp.StatusCode, resp.Header
						if status != http.StatusOK {
							b, _ = io.ReadAll(resp.Body)
						}
						cancel()
						resp.Body.Close()
					} else {
						status, hdr, b = e.call(t, rc.method, path, c, body)
					}

					switch {
					case want.status >= 300:
						checkError(t, what, status, b, want.status, want.code)
					case status != want.status:
						t.Fatalf("%s: %d %s, want %d", what, status, b, want.status)
					case rc.stream:
						if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
							t.Fatalf("%s: Content-Type %q", what, ct)
						}
					case want.empty:
						if strings.TrimSpace(string(b)) != "[]" {
							t.Fatalf("%s: %s, want an empty list", what, b)
						}
					case identity == "owner" && rc.owned != nil:
						rc.owned(t, e, fx, hdr, b)
					}
					if identity != "owner" {
						e.intact(t, fx)
						if rc.untouched != nil {
							rc.untouched(t, e, fx)
						}
					}
				})
			}
		})
	}
}

// TestAuthzNoIdentityChatMintsAnID: a chat without any identity (and
// without a session) gets a fresh anonymous id, which then works.
func TestAuthzNoIdentityChatMintsAnID(t *testing.T) {
	e := newAuthEnv(t)
	m := e.chatAs(t, caller{}, `{"text":"Hello"}`)
	if _, err := uuid.Parse(m.UserID); err != nil || m.Header.Get("X-User-ID") != m.UserID {
		t.Fatalf("minted id: metadata %q, header %q", m.UserID, m.Header.Get("X-User-ID"))
	}
	var rows []map[string]any
	e.mustJSON(t, "GET", "/api/v1/sessions", caller{userID: m.UserID}, "", http.StatusOK, &rows)
	if len(rows) != 1 || rows[0]["session_id"] != m.SessionID {
		t.Fatalf("sessions of the minted id %v", rows)
	}
}

// TestAuthzMigrateGuardsAnonymousID: an anonymous user's data moves to the
// account that migrates it; the anonymous id is dead afterwards, the live
// session actor serves the new owner, and migration is only for the
// account's own token.
func TestAuthzMigrateGuardsAnonymousID(t *testing.T) {
	e := newAuthEnv(t)
	anonA := uuid.NewString()
	a := caller{userID: anonA}
	m := e.chatAs(t, a, `{"text":"A film about my grandmother"}`)
	if m.UserID != anonA {
		t.Fatalf("anonymous chat metadata %+v", m)
	}
	// A second project with a dossier, so every count is checked.
	var d map[string]any
	e.mustJSON(t, "POST", "/api/v1/dossier", a, `{"snapshot_json":`+testSnapshot+`}`, http.StatusCreated, &d)

	idB, b := e.registered(t)
	migrate := func(c caller, temp, perm string) (int, []byte) {
		status, _, body := e.call(t, "POST", "/api/v1/sessions/migrate", c, `{"temp_user_id":"`+temp+`","permanent_user_id":"`+perm+`"}`)
		return status, body
	}
	status, body := migrate(b, anonA, idB)
	var res map[string]any
	if status != http.StatusOK || json.Unmarshal(body, &res) != nil || res["sessions"] != float64(1) ||
		res["projects"] != float64(2) || res["dossiers"] != float64(1) ||
		res["temp_user_id"] != anonA || res["permanent_user_id"] != idB {
		t.Fatalf("migrate: %d %s", status, body)
	}

	// Straight away, while the session actor is live: B chats into it.
	after := e.chatAs(t, b, `{"text":"And then?","session_id":"`+m.SessionID+`"}`)
	if after.SessionID != m.SessionID || after.UserID != idB || after.Status != "complete" {
		t.Fatalf("B's chat into the migrated session: %+v", after)
	}
	var rows []map[string]any
	e.mustJSON(t, "GET", "/api/v1/sessions", b, "", http.StatusOK, &rows)
	if len(rows) != 1 || rows[0]["session_id"] != m.SessionID || rows[0]["user_id"] != idB {
		t.Fatalf("B's sessions %v", rows)
	}
	var msgs []map[string]any
	e.mustJSON(t, "GET", "/api/v1/sessions/"+m.SessionID+"/messages", b, "", http.StatusOK, &msgs)
	if len(msgs) != 4 {
		t.Fatalf("B reads %d messages of the migrated session, want 4", len(msgs))
	}
	e.mustJSON(t, "GET", "/api/v1/dossier/"+d["project_id"].(string), b, "", http.StatusOK, &d)
	if d["user_id"] != idB {
		t.Fatalf("migrated dossier %v", d)
	}

	// A is dead everywhere.
	for _, r := range []struct{ method, path, body string }{
		{"POST", "/api/v1/chat", `{"text":"still me?"}`},
		{"POST", "/api/v1/chat", `{"text":"still me?","session_id":"` + m.SessionID + `"}`},
		{"GET", "/api/v1/sessions", ""},
		{"GET", "/api/v1/sessions/" + m.SessionID + "/messages", ""},
		{"GET", "/api/v1/sessions/" + m.SessionID + "/stream", ""},
		{"POST", "/api/v1/sessions/" + m.SessionID + "/cancel", ""},
		{"DELETE", "/api/v1/sessions/" + m.SessionID, ""},
		{"GET", "/api/v1/dossier", ""},
		{"GET", "/api/v1/dossier/" + m.ProjectID, ""},
		{"POST", "/api/v1/dossier", `{"snapshot_json":{}}`},
		{"PUT", "/api/v1/dossier/" + m.ProjectID, `{"snapshot_json":{}}`},
		{"DELETE", "/api/v1/dossier/" + m.ProjectID, ""},
	} {
		status, _, body := e.call(t, r.method, r.path, a, r.body)
		checkError(t, r.method+" "+r.path+" as the migrated anonymous id", status, body, http.StatusUnauthorized, "identity_refused")
	}
	// Also in the body of a chat, in the stream's query and on a WebSocket.
	status, _, body = e.call(t, "POST", "/api/v1/chat", caller{}, `{"text":"hi","user_id":"`+anonA+`"}`)
	checkError(t, "chat with body user_id of the migrated id", status, body, http.StatusUnauthorized, "identity_refused")
	status, _, body = e.call(t, "GET", "/api/v1/sessions/"+m.SessionID+"/stream?user_id="+anonA, caller{}, "")
	checkError(t, "stream ?user_id= of the migrated id", status, body, http.StatusUnauthorized, "identity_refused")
	wsStatus, wsBody := dialRefused(t, e, "user_id="+anonA)
	checkError(t, "WebSocket ?user_id= of the migrated id", wsStatus, wsBody, http.StatusUnauthorized, "identity_refused")

	// Migrating again: the id is gone.
	status, body = migrate(b, anonA, idB)
	checkError(t, "second migration", status, body, http.StatusConflict, "not_migratable")

	// Only the account's own token migrates into it.
	anonC := uuid.NewString()
	e.chatAs(t, caller{userID: anonC}, `{"text":"Someone else's film"}`)
	_, other := e.registered(t)
	status, body = migrate(other, anonC, idB)
	checkError(t, "migrate into someone else's account", status, body, http.StatusForbidden, "not_your_account")
	status, body = migrate(caller{userID: anonC}, anonC, idB)
	checkError(t, "migrate with X-User-ID only", status, body, http.StatusUnauthorized, "sign_in_required")
	status, body = migrate(caller{}, anonC, idB)
	checkError(t, "migrate without identity", status, body, http.StatusUnauthorized, "identity_required")
	// A registered user's id is not migratable either.
	idD, dTok := e.registered(t)
	e.call(t, "GET", "/api/v1/sessions", dTok, "") // D is recorded
	status, body = migrate(b, idD, idB)
	checkError(t, "migrate a registered user", status, body, http.StatusConflict, "not_migratable")
	// C was not touched by the refused attempts.
	e.mustJSON(t, "GET", "/api/v1/sessions", caller{userID: anonC}, "", http.StatusOK, &rows)
	if len(rows) != 1 {
		t.Fatalf("C's sessions after refused migrations: %v", rows)
	}

	// A registered user's id is no anonymous id.
	for _, id := range []string{idB, idD} {
		status, _, body = e.call(t, "GET", "/api/v1/sessions", caller{userID: id}, "")
		checkError(t, "X-User-ID of a registered user", status, body, http.StatusUnauthorized, "identity_refused")
		status, _, body = e.call(t, "POST", "/api/v1/chat", caller{userID: id}, `{"text":"I am B"}`)
		checkError(t, "chat as X-User-ID of a registered user", status, body, http.StatusUnauthorized, "identity_refused")
	}
}

// TestAuthzSupabaseAnonymousSignIn: a Supabase anonymous sign-in (a token
// with is_anonymous) is a token user: its id is proven by tokens, so it is
// never accepted as an X-User-ID, and no other account can migrate it.
func TestAuthzSupabaseAnonymousSignIn(t *testing.T) {
	e := newAuthEnv(t)
	anonID := uuid.NewString()
	anon := caller{token: e.iss.Token(t, authtest.Sub(anonID), authtest.Anonymous())}
	m := e.chatAs(t, anon, `{"text":"An anonymous sign-in's film"}`)
	if m.UserID != anonID {
		t.Fatalf("chat metadata %+v", m)
	}
	status, _, body := e.call(t, "GET", "/api/v1/sessions", caller{userID: anonID}, "")
	checkError(t, "X-User-ID of an anonymous sign-in", status, body, http.StatusUnauthorized, "identity_refused")
	idB, b := e.registered(t)
	status, _, body = e.call(t, "POST", "/api/v1/sessions/migrate", b,
		`{"temp_user_id":"`+anonID+`","permanent_user_id":"`+idB+`"}`)
	checkError(t, "migrate an anonymous sign-in", status, body, http.StatusConflict, "not_migratable")
	var rows []map[string]any
	e.mustJSON(t, "GET", "/api/v1/sessions", anon, "", http.StatusOK, &rows)
	if len(rows) != 1 || rows[0]["session_id"] != m.SessionID {
		t.Fatalf("the anonymous sign-in's sessions %v", rows)
	}
}

// TestAuthzTokens: forged and misdirected tokens are refused with 401
// invalid_token; a token user manages their own profile only.
func TestAuthzTokens(t *testing.T) {
	e := newAuthEnv(t)
	id := uuid.NewString()
	rsaPub, err := x509.MarshalPKIXPublicKey(e.iss.PublicKey("rsa-1"))
	if err != nil {
		t.Fatal(err)
	}
	pemPub := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: rsaPub}))
	for _, tc := range []struct {
		name string
		tok  string
	}{
		{"alg none", e.iss.Token(t, authtest.Sub(id), authtest.Alg("none"))},
		{"alg None", e.iss.Token(t, authtest.Sub(id), authtest.Alg("None"))},
		{"HS256 with the RSA public key (PEM)", e.iss.HS256(t, pemPub, authtest.Sub(id), authtest.Kid("rsa-1"))},
		{"HS256 with the RSA public key (DER)", e.iss.HS256(t, string(rsaPub), authtest.Sub(id), authtest.Kid("rsa-1"))},
		{"wrong audience", e.iss.Token(t, authtest.Sub(id), authtest.Aud("anon"))},
		{"no audience", e.iss.Token(t, authtest.Sub(id), authtest.Aud())},
		{"wrong issuer", e.iss.Token(t, authtest.Sub(id), authtest.Iss("https://evil.example.com/auth/v1"))},
		{"no exp", e.iss.Token(t, authtest.Sub(id), authtest.Without("exp"))},
		{"sub not a UUID", e.iss.Token(t, authtest.Sub("service_role"))},
		{"tampered claims", func() string {
			parts := strings.Split(e.iss.Token(t, authtest.Sub(id)), ".")
			other := strings.Split(e.iss.Token(t, authtest.Sub(uuid.NewString())), ".")
			return parts[0] + "." + other[1] + "." + parts[2]
		}()},
		{"not a JWT", "not-a-jwt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, r := range []struct{ method, path, body string }{
				{"GET", "/api/v1/sessions", ""},
				{"POST", "/api/v1/chat", `{"text":"hi"}`},
				{"POST", "/api/v1/users", `{"display_name":"Mallory"}`},
			} {
				status, _, body := e.call(t, r.method, r.path, caller{token: tc.tok}, r.body)
				checkError(t, r.method+" "+r.path, status, body, http.StatusUnauthorized, "invalid_token")
			}
			// Nothing was recorded for the token's subject.
			if _, err := e.store.GetUser(context.Background(), id); err == nil {
				t.Fatalf("a refused token's user %s was recorded", id)
			}
		})
	}
	t.Run("malformed Authorization", func(t *testing.T) {
		for _, h := range []string{"Basic dXNlcjpwYXNz", "Bearer", "Bearer "} {
			req, _ := http.NewRequest("GET", e.ts.URL+"/api/v1/sessions", nil)
			req.Header.Set("Authorization", h)
			resp, err := e.ts.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			checkError(t, "Authorization: "+h, resp.StatusCode, b, http.StatusUnauthorized, "invalid_authorization")
		}
	})

	t.Run("profile", func(t *testing.T) {
		id := uuid.NewString()
		c := caller{token: e.iss.Token(t, authtest.Sub(id), authtest.Email("ada@example.com"))}
		var u map[string]any
		e.mustJSON(t, "POST", "/api/v1/users", c, `{"display_name":"Ada","avatar_url":"https://example.com/ada.png"}`, http.StatusOK, &u)
		if u["user_id"] != id || u["email"] != "ada@example.com" || u["display_name"] != "Ada" ||
			u["avatar_url"] != "https://example.com/ada.png" || u["is_anonymous"] != false {
			t.Fatalf("created profile %v", u)
		}
		e.mustJSON(t, "POST", "/api/v1/users", c, `{"user_id":"`+id+`","display_name":"Ada L."}`, http.StatusOK, &u)
		if u["display_name"] != "Ada L." || u["avatar_url"] != "https://example.com/ada.png" || u["email"] != "ada@example.com" {
			t.Fatalf("updated profile %v", u)
		}
		// Another request with the token does not undo the profile.
		e.call(t, "GET", "/api/v1/sessions", c, "")
		stored, err := e.store.GetUser(context.Background(), id)
		if err != nil || stored.DisplayName != "Ada L." || stored.AvatarURL != "https://example.com/ada.png" || stored.IsAnonymous {
			t.Fatalf("stored profile %+v %v", stored, err)
		}

		otherID, _ := e.registered(t)
		for _, tc := range []struct {
			body   string
			status int
			code   string
		}{
			{`{"user_id":"` + otherID + `","display_name":"Not me"}`, http.StatusNotFound, "user_not_found"},
			{`{"email":"not an email"}`, http.StatusUnprocessableEntity, "invalid_email"},
			{`{"email":"Ada <ada@example.com>"}`, http.StatusUnprocessableEntity, "invalid_email"},
			{`{"avatar_url":"javascript:alert(1)"}`, http.StatusUnprocessableEntity, "invalid_avatar_url"},
			{`{"display_name":"` + strings.Repeat("x", 201) + `"}`, http.StatusUnprocessableEntity, "invalid_display_name"},
		} {
			status, _, body := e.call(t, "POST", "/api/v1/users", c, tc.body)
			checkError(t, "POST /users "+tc.body[:min(len(tc.body), 60)], status, body, tc.status, tc.code)
		}
		if _, err := e.store.GetUser(context.Background(), otherID); err == nil {
			t.Fatal("a profile was recorded for the other user's id")
		}
		stored, _ = e.store.GetUser(context.Background(), id)
		if stored.DisplayName != "Ada L." || stored.Email != "ada@example.com" {
			t.Fatalf("refused updates changed the profile: %+v", stored)
		}
	})
}

// dialRefused dials the WebSocket endpoint expecting the upgrade to be
// refused; it returns the HTTP status and body.
func dialRefused(t *testing.T, e *authEnv, query string) (int, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wsWait)
	defer cancel()
	conn, resp, err := websocket.Dial(ctx, e.wsURL(query), nil)
	if err == nil {
		conn.CloseNow()
		t.Fatalf("dial ?%s was accepted", query)
	}
	if resp == nil {
		t.Fatalf("dial ?%s: %v (no HTTP answer)", query, err)
	}
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

type wsAuthFrame struct {
	Type        string `json:"type"`
	AccessToken string `json:"access_token,omitempty"`
	UserID      string `json:"user_id,omitempty"`
}

// expectWSError reads the next frame, which must be an error with code.
func expectWSError(t *testing.T, c *wsClient, code string) {
	t.Helper()
	ev := c.next()
	if ev.Type != "error" || ev.Error == nil || ev.Error.Code != code || ev.Error.Message == "" {
		t.Fatalf("got %v, want error %s", ev, code)
	}
}

// wsChatAs chats on c and checks the reply is the user's.
func wsChatAs(t *testing.T, c *wsClient, userID string) string {
	t.Helper()
	ack := c.chat(chatFrame{Text: "A film about a lighthouse"})
	meta := checkReplyShape(t, ack.SessionID, c.turn(ack.SessionID)[1:])
	if meta.UserID != userID || meta.Status != "complete" {
		t.Fatalf("WebSocket chat metadata %+v, want user %s", meta, userID)
	}
	return ack.SessionID
}

// TestAuthzWebSocket: access tokens on the WebSocket, in the query and in
// an auth frame; bad tokens; a token expiring while connected; renewal;
// and a socket never changing user.
func TestAuthzWebSocket(t *testing.T) {
	e := newAuthEnv(t)
	fx := e.newFixture(t)

	t.Run("query token", func(t *testing.T) {
		t.Parallel()
		id, c := e.registered(t)
		ws := dialWSWith(t, e.itEnv, dialOpts{query: "access_token=" + url.QueryEscape(c.token)})
		wsChatAs(t, ws, id)
	})
	t.Run("auth frame token", func(t *testing.T) {
		t.Parallel()
		id, c := e.registered(t)
		ws := dialWSWith(t, e.itEnv, dialOpts{})
		ws.send(wsAuthFrame{Type: "auth", AccessToken: c.token})
		sid := wsChatAs(t, ws, id)
		// The chat made over the socket is the token user's.
		var rows []map[string]any
		e.mustJSON(t, "GET", "/api/v1/sessions", c, "", http.StatusOK, &rows)
		if len(rows) != 1 || rows[0]["session_id"] != sid {
			t.Fatalf("sessions %v", rows)
		}
	})
	t.Run("bad query token", func(t *testing.T) {
		t.Parallel()
		for _, tc := range []struct{ tok, code string }{
			{tamper(fx.owner.token), "invalid_token"},
			{e.iss.Token(t, authtest.Sub(fx.ownerID), authtest.ExpiresIn(-time.Hour)), "token_expired"},
			{e.iss.Token(t, authtest.Sub(fx.ownerID), authtest.Alg("none")), "invalid_token"},
		} {
			status, body := dialRefused(t, e, "access_token="+url.QueryEscape(tc.tok))
			checkError(t, "upgrade with a bad token", status, body, http.StatusUnauthorized, tc.code)
		}
	})
	t.Run("bad auth frame", func(t *testing.T) {
		t.Parallel()
		ws := dialWSWith(t, e.itEnv, dialOpts{})
		ws.send(wsAuthFrame{Type: "auth", AccessToken: tamper(fx.owner.token)})
		expectWSError(t, ws, "invalid_token")
		ws.pingPong()
		ws.send(wsAuthFrame{Type: "auth", AccessToken: e.iss.Token(t, authtest.Sub(fx.ownerID), authtest.ExpiresIn(-time.Hour))})
		expectWSError(t, ws, "token_expired")
		ws.pingPong()
		// Still no identity: commands are refused.
		ws.subscribe(fx.session, ptr(int64(0)))
		expectWSError(t, ws, "identity_required")
		// And the socket can still authenticate.
		ws.send(wsAuthFrame{Type: "auth", AccessToken: fx.owner.token})
		ws.subscribe(fx.session, ptr(int64(0)))
		ws.until("done", fx.session)
	})
	t.Run("other user's session", func(t *testing.T) {
		t.Parallel()
		_, c := e.registered(t)
		ws := dialWSWith(t, e.itEnv, dialOpts{query: "access_token=" + url.QueryEscape(c.token)})
		ws.subscribe(fx.session, ptr(int64(0)))
		expectWSError(t, ws, "session_not_found")
		ws.send(chatFrame{Type: "chat", Text: "let me in", SessionID: fx.session})
		expectWSError(t, ws, "session_not_found")
		ws.pingPong()
	})
	t.Run("identity change refused", func(t *testing.T) {
		t.Parallel()
		ws := dialWSWith(t, e.itEnv, dialOpts{query: "access_token=" + url.QueryEscape(fx.owner.token)})
		_, other := e.registered(t)
		ws.send(wsAuthFrame{Type: "auth", AccessToken: other.token})
		expectWSError(t, ws, "identity_change_refused")
		ws.send(wsAuthFrame{Type: "auth", UserID: uuid.NewString()})
		expectWSError(t, ws, "identity_change_refused")
		// Still the owner's socket.
		ws.subscribe(fx.session, ptr(int64(0)))
		ws.until("done", fx.session)
		ws.pingPong()
	})
	t.Run("token expires while connected", func(t *testing.T) {
		t.Parallel()
		exp := time.Unix(time.Now().Unix()+2, 0) // 1–2 s from now
		tok := e.iss.Token(t, authtest.Sub(fx.ownerID), authtest.Exp(exp))
		ws := dialWSWith(t, e.itEnv, dialOpts{query: "access_token=" + url.QueryEscape(tok)})
		ws.subscribe(fx.session, ptr(int64(0)))
		ws.until("done", fx.session)
		ws.pingPong()
		<-time.After(time.Until(exp) + 50*time.Millisecond) // expiry is the thing under test
		ws.subscribe(fx.session, ptr(int64(0)))
		evs, err := ws.readToClose()
		if code, _ := closeStatus(err); code != websocket.StatusPolicyViolation {
			t.Fatalf("socket ended with %v, want close 1008", err)
		}
		if !slices.ContainsFunc(evs, func(ev wsEvent) bool {
			return ev.Type == "error" && ev.Error != nil && ev.Error.Code == "token_expired"
		}) {
			t.Fatalf("no token_expired error before the close; got %v", evs)
		}
	})
	t.Run("renewed before expiry", func(t *testing.T) {
		t.Parallel()
		exp := time.Unix(time.Now().Unix()+2, 0)
		tok := e.iss.Token(t, authtest.Sub(fx.ownerID), authtest.Exp(exp))
		ws := dialWSWith(t, e.itEnv, dialOpts{query: "access_token=" + url.QueryEscape(tok)})
		ws.pingPong()
		ws.send(wsAuthFrame{Type: "auth", AccessToken: fx.owner.token}) // same user, one hour
		ws.pingPong()
		<-time.After(time.Until(exp) + 50*time.Millisecond)
		ws.subscribe(fx.session, ptr(int64(0)))
		for _, ev := range ws.until("done", fx.session) {
			if ev.Type == "error" {
				t.Fatalf("renewed socket got %v", ev)
			}
		}
		ws.pingPong()
	})
}

// Compile-time check that the verifier fits the server's interface.
var _ TokenVerifier = (*auth.Verifier)(nil)
