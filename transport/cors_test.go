package transport

import (
	"context"
	"net/http"
	"testing"

	"github.com/coder/websocket"
	"github.com/google/uuid"
)

func TestCORS(t *testing.T) {
	env := newUpstreamServer(t, func(c *Config) { c.CORSOrigins = []string{"https://app.example.com"} })
	user := uuid.NewString()
	cases := []struct {
		name, method, origin, requestMethod string
		status                              int
		allowOrigin                         string
	}{
		{"allowed simple request", "GET", "https://app.example.com", "", 200, "https://app.example.com"},
		{"allowed preflight", "OPTIONS", "https://app.example.com", "POST", 204, "https://app.example.com"},
		{"other origin", "GET", "https://evil.example.com", "", 200, ""},
		{"other origin preflight", "OPTIONS", "https://evil.example.com", "POST", 403, ""},
		{"no origin", "GET", "", "", 200, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, env.ts.URL+"/healthz", nil)
			req.Header.Set("X-User-ID", user)
			if tc.origin != "" {
				req.Header.Set("Origin", tc.origin)
			}
			if tc.requestMethod != "" {
				req.Header.Set("Access-Control-Request-Method", tc.requestMethod)
				req.Header.Set("Access-Control-Request-Headers", "authorization, content-type")
			}
			resp, err := env.ts.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if got := resp.Header.Get("Access-Control-Allow-Origin"); got != tc.allowOrigin {
				t.Fatalf("Access-Control-Allow-Origin %q, want %q", got, tc.allowOrigin)
			}
			if tc.allowOrigin != "" && resp.Header.Get("Access-Control-Allow-Credentials") != "true" {
				t.Fatal("credentials not allowed")
			}
			if tc.status == 204 && resp.Header.Get("Access-Control-Allow-Headers") == "" {
				t.Fatal("preflight lists no allowed headers")
			}
		})
	}
	for _, tc := range []struct {
		origin string
		ok     bool
	}{{"https://app.example.com", true}, {"https://evil.example.com", false}} {
		t.Run("websocket from "+tc.origin, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), wsWait)
			defer cancel()
			conn, resp, err := websocket.Dial(ctx, env.wsURL("user_id="+user), &websocket.DialOptions{
				HTTPHeader: http.Header{"Origin": {tc.origin}},
			})
			if tc.ok != (err == nil) {
				t.Fatalf("dial from %s: err %v", tc.origin, err)
			}
			if err == nil {
				conn.CloseNow()
			} else if resp == nil || resp.StatusCode != http.StatusForbidden {
				t.Fatalf("refused dial answered %v", resp)
			}
		})
	}
}
