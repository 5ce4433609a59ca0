package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/storyd/storyd/auth/authtest"
	"github.com/storyd/storyd/llm/llmtest"
	"github.com/storyd/storyd/persistence/pgtest"
)

// syncBuffer is an io.Writer safe for run's output and the test's reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var listening = regexp.MustCompile(`listening on (http://\S+)`)

// server is one storyd started through run, as main would.
type server struct {
	url    string
	stop   context.CancelFunc
	done   chan error
	stdout *syncBuffer
}

func start(t *testing.T, environ ...string) *server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &server{stop: cancel, done: make(chan error, 1), stdout: &syncBuffer{}}
	env := append([]string{"STORYD_ADDR=127.0.0.1:0", "STORYD_OFFLINE_TOKEN_DELAY=0s", "STORYD_LOG_LEVEL=warn"}, environ...)
	var stderr syncBuffer
	go func() { s.done <- run(ctx, []string{"serve"}, env, s.stdout, &stderr) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if m := listening.FindStringSubmatch(s.stdout.String()); m != nil {
			s.url = m[1]
			break
		}
		select {
		case err := <-s.done:
			t.Fatalf("storyd exited: %v\nstderr: %s", err, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("storyd did not start")
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Cleanup(func() { s.shutdown(t) })
	return s
}

func (s *server) shutdown(t *testing.T) {
	t.Helper()
	if s.stop == nil {
		return
	}
	s.stop()
	s.stop = nil
	select {
	case err := <-s.done:
		if err != nil {
			t.Errorf("storyd exited with %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Error("storyd did not stop")
	}
}

// chat posts a message the way the README's curl does and returns the
// streamed text and the metadata.
func (s *server) chat(t *testing.T, body string) (string, map[string]any) {
	t.Helper()
	resp, err := http.Post(s.url+"/api/v1/chat", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("chat: %d %s", resp.StatusCode, b)
	}
	var text strings.Builder
	var meta map[string]any
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		var ev map[string]any
		if err := json.Unmarshal([]byte(data), &ev); err != nil {
			t.Fatal(err)
		}
		switch ev["type"] {
		case "text":
			text.WriteString(ev["content"].(string))
		case "metadata":
			meta = ev["metadata"].(map[string]any)
		case "error":
			t.Fatalf("error event %v", ev)
		case "done":
			return text.String(), meta
		}
	}
	t.Fatalf("stream ended without done: %v", sc.Err())
	return "", nil
}

func (s *server) messages(t *testing.T, userID, sessionID string) []map[string]any {
	t.Helper()
	req, _ := http.NewRequest("GET", s.url+"/api/v1/sessions/"+sessionID+"/messages", nil)
	req.Header.Set("X-User-ID", userID)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var msgs []map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&msgs); err != nil {
		t.Fatalf("messages: %d %v", resp.StatusCode, err)
	}
	return msgs
}

// TestMessagesSurviveRestart is the README's first run: chat, stop, start
// again on the same store, and the history is there.
func TestMessagesSurviveRestart(t *testing.T) {
	stores := map[string]func(t *testing.T) string{
		"sqlite":   func(t *testing.T) string { return "STORYD_DATA_DIR=" + t.TempDir() },
		"postgres": func(t *testing.T) string { return "DATABASE_URL=" + pgtest.NewDatabase(t) },
	}
	for name, storeEnv := range stores {
		t.Run(name, func(t *testing.T) {
			env := storeEnv(t)
			s := start(t, env)
			reply, meta := s.chat(t, `{"text":"A film about my grandmother"}`)
			if reply == "" {
				t.Fatal("empty reply")
			}
			userID, sessionID := meta["user_id"].(string), meta["session_id"].(string)
			s.shutdown(t)

			s = start(t, env)
			msgs := s.messages(t, userID, sessionID)
			if len(msgs) != 2 || msgs[0]["content"] != "A film about my grandmother" || msgs[1]["content"] != reply {
				t.Fatalf("after restart: %v", msgs)
			}
			// The conversation goes on where it was.
			body, _ := json.Marshal(map[string]string{"text": "Her name is Ada.", "session_id": sessionID, "user_id": userID})
			s.chat(t, string(body))
			if msgs := s.messages(t, userID, sessionID); len(msgs) != 4 {
				t.Fatalf("%d messages after a second turn", len(msgs))
			}
		})
	}
}

// TestOpenAICompatibleProvider points storyd at a server that speaks the
// OpenAI wire format and checks the tokens and the prompt that crossed it.
func TestOpenAICompatibleProvider(t *testing.T) {
	fake := llmtest.NewServer(t)
	fake.Enqueue(llmtest.Response{Tokens: []string{"Tell ", "me ", "about ", "her."}})
	s := start(t, "STORYD_DATA_DIR="+t.TempDir(), "OPENAI_BASE_URL="+fake.URL(), "OPENAI_API_KEY=sk-test", "CHAT_MODEL=test-model")
	reply, _ := s.chat(t, `{"text":"A film about my grandmother"}`)
	if reply != "Tell me about her." {
		t.Fatalf("reply %q", reply)
	}
	reqs := fake.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d upstream requests", len(reqs))
	}
	if got := reqs[0].Model; got != "test-model" {
		t.Fatalf("model %v", got)
	}
	if !strings.Contains(s.stdout.String(), "test-model") {
		t.Fatalf("startup line does not name the model: %s", s.stdout.String())
	}
}

func TestInvalidConfigurationIsOneClearLine(t *testing.T) {
	cases := []struct {
		name string
		env  []string
		want string
	}{
		{"bad address", []string{"STORYD_ADDR=nope"}, "STORYD_ADDR"},
		{"bad port", []string{"STORYD_ADDR=127.0.0.1:abc"}, "STORYD_ADDR"},
		{"bad database url", []string{"DATABASE_URL=mysql://x"}, "DATABASE_URL"},
		{"unknown setting", []string{"STORYD_ADR=127.0.0.1:1"}, "STORYD_ADR"},
		{"bad duration", []string{"STORYD_IDLE_TIMEOUT=soon"}, "STORYD_IDLE_TIMEOUT"},
		{"pprof beyond loopback", []string{"STORYD_PPROF_ADDR=0.0.0.0:6060"}, "STORYD_PPROF_ADDR"},
		{"bad bool", []string{"STORYD_AUTO_MIGRATE=maybe"}, "STORYD_AUTO_MIGRATE"},
		{"short JWT secret", []string{"SUPABASE_JWT_SECRET=short"}, "SUPABASE_JWT_SECRET"},
		{"bad Supabase URL", []string{"SUPABASE_URL=ftp://x"}, "SUPABASE_URL"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := run(context.Background(), []string{"serve"}, tc.env, &out, &errOut)
			if err == nil || !isConfigError(err) {
				t.Fatalf("err = %v, want a configuration error", err)
			}
			if msg := err.Error(); !strings.Contains(msg, tc.want) || strings.Contains(msg, "\n") {
				t.Fatalf("error %q should name %s on one line", msg, tc.want)
			}
		})
	}
}

func TestMigrateCommand(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	if err := run(context.Background(), []string{"migrate"}, []string{"STORYD_DATA_DIR=" + dir}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "migrated") {
		t.Fatalf("output %q", out.String())
	}
	// Serving without auto-migration works on a migrated store.
	s := start(t, "STORYD_DATA_DIR="+dir, "STORYD_AUTO_MIGRATE=false")
	if reply, _ := s.chat(t, `{"text":"hello"}`); reply == "" {
		t.Fatal("empty reply")
	}
}

func TestServeRefusesPendingMigrationsWhenAutoMigrateIsOff(t *testing.T) {
	err := run(context.Background(), []string{"serve", "-no-migrate"},
		[]string{"STORYD_ADDR=127.0.0.1:0", "STORYD_DATA_DIR=" + t.TempDir()}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "storyd migrate") {
		t.Fatalf("err = %v", err)
	}
}

// redisURL is the test Redis that make test starts.
func redisURL(t *testing.T) string {
	t.Helper()
	if u := os.Getenv("STORYD_TEST_REDIS_URL"); u != "" {
		return u
	}
	if os.Getenv("STORYD_REQUIRE_SERVICES") == "1" {
		t.Fatal("STORYD_TEST_REDIS_URL is not set and STORYD_REQUIRE_SERVICES=1")
	}
	t.Skip("Redis tests skipped: set STORYD_TEST_REDIS_URL")
	return ""
}

func TestReadyzChecksRedis(t *testing.T) {
	s := start(t, "STORYD_DATA_DIR="+t.TempDir(), "REDIS_URL="+redisURL(t))
	resp, err := http.Get(s.url + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]string
	_ = json.NewDecoder(resp.Body).Decode(&body)
	if resp.StatusCode != 200 || body["redis"] != "ok" || body["store"] != "sqlite" {
		t.Fatalf("readyz: %d %v", resp.StatusCode, body)
	}
}

func TestUnreachableRedisStopsStartup(t *testing.T) {
	err := run(context.Background(), []string{"serve"},
		[]string{"STORYD_ADDR=127.0.0.1:0", "STORYD_DATA_DIR=" + t.TempDir(), "REDIS_URL=redis://127.0.0.1:1/0"}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "Redis") {
		t.Fatalf("err = %v", err)
	}
}

// TestSupabaseTokens points storyd at a Supabase-like issuer: a token
// signed by its JWKS is accepted, and the user owns what they create.
func TestSupabaseTokens(t *testing.T) {
	iss := authtest.NewIssuer(t)
	s := start(t, "STORYD_DATA_DIR="+t.TempDir(), "SUPABASE_URL="+iss.URL())
	user := uuid.NewString()
	token := iss.Token(t, authtest.Sub(user), authtest.Email("ada@example.com"))
	req, _ := http.NewRequest("POST", s.url+"/api/v1/chat", strings.NewReader(`{"text":"A film about my grandmother"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"user_id":"`+user+`"`) {
		t.Fatalf("chat with a token: %d %s", resp.StatusCode, body)
	}
	req, _ = http.NewRequest("GET", s.url+"/api/v1/sessions", nil)
	req.Header.Set("Authorization", "Bearer "+token+"x")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("tampered token: %d", resp.StatusCode)
	}
}

// call makes one JSON request with the given identity headers and returns
// the status and decoded body.
func (s *server) call(t *testing.T, method, path string, hdr map[string]string, body string) (int, any) {
	t.Helper()
	req, _ := http.NewRequest(method, s.url+path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out any
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, raw)
		}
	}
	return resp.StatusCode, out
}

// TestAPITour walks every seed endpoint, as a client would, against both
// stores: an anonymous user chats and keeps a dossier, signs up, migrates,
// and cleans up.
func TestAPITour(t *testing.T) {
	stores := map[string]func(t *testing.T) string{
		"sqlite":   func(t *testing.T) string { return "STORYD_DATA_DIR=" + t.TempDir() },
		"postgres": func(t *testing.T) string { return "DATABASE_URL=" + pgtest.NewDatabase(t) },
	}
	for name, storeEnv := range stores {
		t.Run(name, func(t *testing.T) {
			iss := authtest.NewIssuer(t)
			s := start(t, storeEnv(t), "SUPABASE_URL="+iss.URL())
			want := func(what string, got, wantStatus int, body any) {
				t.Helper()
				if got != wantStatus {
					t.Fatalf("%s: %d, want %d: %v", what, got, wantStatus, body)
				}
			}
			_, meta := s.chat(t, `{"text":"A film about my grandmother"}`)
			anon := map[string]string{"X-User-ID": meta["user_id"].(string)}
			sessionID, projectID := meta["session_id"].(string), meta["project_id"].(string)

			st, body := s.call(t, "GET", "/api/v1/sessions", anon, "")
			want("list sessions", st, 200, body)
			if list := body.([]any); len(list) != 1 || list[0].(map[string]any)["title"] != "A film about my grandmother" {
				t.Fatalf("sessions %v", body)
			}
			st, body = s.call(t, "GET", "/api/v1/sessions/"+sessionID+"/messages?limit=10", anon, "")
			want("messages", st, 200, body)
			st, body = s.call(t, "POST", "/api/v1/dossier", anon, `{"project_id":"`+projectID+`","snapshot_json":{"title":"Gull Rock","characters":[{"name":"Ada"}],"themes":[],"locations":[],"plot_points":[]}}`)
			want("create dossier", st, 201, body)
			st, body = s.call(t, "PUT", "/api/v1/dossier/"+projectID, anon, `{"version":1,"snapshot_json":{"title":"Gull Rock","themes":["Duty"]}}`)
			want("update dossier", st, 200, body)
			st, body = s.call(t, "PUT", "/api/v1/dossier/"+projectID, anon, `{"version":1,"snapshot_json":{}}`)
			want("stale update", st, 409, body)
			st, body = s.call(t, "GET", "/api/v1/dossier", anon, "")
			want("list dossiers", st, 200, body)
			if row := body.([]any)[0].(map[string]any); row["title"] != "Gull Rock" || row["theme_count"] != float64(1) {
				t.Fatalf("dossier row %v", row)
			}

			// Sign up, keep the story.
			account := uuid.NewString()
			signed := map[string]string{"Authorization": "Bearer " + iss.Token(t, authtest.Sub(account), authtest.Email("ada@example.com"))}
			st, body = s.call(t, "POST", "/api/v1/users", signed, `{"display_name":"Ada's granddaughter"}`)
			want("profile", st, 200, body)
			st, body = s.call(t, "POST", "/api/v1/sessions/migrate", signed,
				`{"temp_user_id":"`+anon["X-User-ID"]+`","permanent_user_id":"`+account+`"}`)
			want("migrate", st, 200, body)
			if m := body.(map[string]any); m["sessions"] != float64(1) || m["dossiers"] != float64(1) {
				t.Fatalf("migrated %v", m)
			}
			st, body = s.call(t, "GET", "/api/v1/sessions", anon, "")
			want("the dead anonymous id", st, 401, body)
			st, body = s.call(t, "GET", "/api/v1/dossier/"+projectID, signed, "")
			want("the account reads the dossier", st, 200, body)
			st, body = s.call(t, "DELETE", "/api/v1/sessions/"+sessionID, signed, "")
			want("delete session", st, 200, body)
			st, body = s.call(t, "GET", "/api/v1/sessions", signed, "")
			want("list after delete", st, 200, body)
			if len(body.([]any)) != 0 {
				t.Fatalf("sessions after delete %v", body)
			}
			st, body = s.call(t, "DELETE", "/api/v1/dossier/"+projectID, signed, "")
			want("delete dossier", st, 200, body)
		})
	}
}

// TestDevToken: a token from `storyd token` signs a user in to a server
// sharing its SUPABASE_JWT_SECRET.
func TestDevToken(t *testing.T) {
	secret := "SUPABASE_JWT_SECRET=local-development-secret-0123456789abcdef"
	var out bytes.Buffer
	user := uuid.NewString()
	if err := run(context.Background(), []string{"token", "-sub", user, "-email", "me@example.com"}, []string{secret}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSpace(out.String())
	s := start(t, "STORYD_DATA_DIR="+t.TempDir(), secret)
	st, body := s.call(t, "POST", "/api/v1/users", map[string]string{"Authorization": "Bearer " + token}, `{"display_name":"Me"}`)
	if st != 200 || body.(map[string]any)["user_id"] != user || body.(map[string]any)["email"] != "me@example.com" {
		t.Fatalf("profile with a dev token: %d %v", st, body)
	}
	if err := run(context.Background(), []string{"token"}, nil, io.Discard, io.Discard); err == nil || !isConfigError(err) {
		t.Fatalf("token without a secret: %v", err)
	}
}

// TestMain lets a test run the real main in a child process (see
// TestExitCodes).
func TestMain(m *testing.M) {
	if os.Getenv("STORYD_TEST_RUN_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// TestExitCodes runs the binary's main: invalid configuration is one line on
// stderr and exit code 2.
func TestExitCodes(t *testing.T) {
	cases := []struct {
		name string
		env  []string
		args []string
		code int
	}{
		{"invalid setting", []string{"STORYD_ADDR=nope"}, []string{"serve"}, 2},
		{"unknown command", nil, []string{"frobnicate"}, 2},
		{"help", nil, []string{"help"}, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], tc.args...)
			cmd.Dir = t.TempDir() // no .env here
			cmd.Env = append([]string{"STORYD_TEST_RUN_MAIN=1", "PATH=" + os.Getenv("PATH")}, tc.env...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			code := 0
			var exitErr *exec.ExitError
			if errors.As(err, &exitErr) {
				code = exitErr.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tc.code {
				t.Fatalf("exit code %d, want %d; stderr %q", code, tc.code, stderr.String())
			}
			if tc.code != 0 && strings.Count(strings.TrimSpace(stderr.String()), "\n") != 0 {
				t.Fatalf("stderr is not one line: %q", stderr.String())
			}
		})
	}
}

// TestConversationFillsTheDossier: with the offline extractor, talking
// about a story fills its dossier, and a refresh is accepted.
func TestConversationFillsTheDossier(t *testing.T) {
	s := start(t, "STORYD_DATA_DIR="+t.TempDir(), "STORYD_EXTRACT_TURNS=2")
	_, meta := s.chat(t, `{"text":"I want to make a film about my grandmother, Ada Whitlock. She kept the lighthouse on Gull Rock off the coast of Maine."}`)
	user, sessionID, projectID := meta["user_id"].(string), meta["session_id"].(string), meta["project_id"].(string)
	s.chat(t, `{"text":"Her only friend is Tom Pruitt, the mailboat captain.","session_id":"`+sessionID+`","user_id":"`+user+`"}`)
	hdr := map[string]string{"X-User-ID": user}
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, body := s.call(t, "GET", "/api/v1/dossier/"+projectID, hdr, "")
		if st == 200 {
			snap := body.(map[string]any)["snapshot_json"].(map[string]any)
			names := []string{}
			for _, c := range snap["characters"].([]any) {
				names = append(names, c.(map[string]any)["name"].(string))
			}
			if strings.Contains(strings.Join(names, ","), "Ada Whitlock") {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the dossier did not fill: %d %v", st, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	st, body := s.call(t, "POST", "/api/v1/dossier/"+projectID+"/refresh", hdr, "")
	if st != 202 {
		t.Fatalf("refresh: %d %v", st, body)
	}
	st, body = s.call(t, "GET", "/api/v1/dossier/"+projectID+"/versions", hdr, "")
	if st != 200 || body.([]any)[0].(map[string]any)["source"] != "extraction" {
		t.Fatalf("versions: %d %v", st, body)
	}
}

// A turn that waited in a dossier batch when storyd stopped is extracted
// after the restart, without another turn: storyd wakes its dossier actor.
func TestPendingBatchIsExtractedAfterRestart(t *testing.T) {
	dir := "STORYD_DATA_DIR=" + t.TempDir()
	s := start(t, dir, "STORYD_EXTRACT_TURNS=10", "STORYD_EXTRACT_IDLE=1h")
	_, meta := s.chat(t, `{"text":"I want to make a film about my grandmother, Ada Whitlock, who kept the lighthouse on Gull Rock."}`)
	user, projectID := meta["user_id"].(string), meta["project_id"].(string)
	hdr := map[string]string{"X-User-ID": user}
	if st, body := s.call(t, "GET", "/api/v1/dossier/"+projectID, hdr, ""); st != 404 {
		t.Fatalf("a dossier before the batch is full: %d %v", st, body)
	}
	s.shutdown(t)

	s = start(t, dir, "STORYD_EXTRACT_TURNS=1")
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, body := s.call(t, "GET", "/api/v1/dossier/"+projectID, hdr, "")
		if st == 200 && strings.Contains(fmt.Sprint(body), "Ada Whitlock") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the batch left from the last run was not extracted: %d %v", st, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
