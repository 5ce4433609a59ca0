package llmtest_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	openai "github.com/sashabaranov/go-openai"
	"go.uber.org/goleak"

	"github.com/storyd/storyd/llm/llmtest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func post(t *testing.T, s *llmtest.Server, body string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, s.URL()+"/chat/completions", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer sk-x")
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

const streamBody = `{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}]}`

func TestStreamWireFormat(t *testing.T) {
	s := llmtest.NewServer(t)
	s.Enqueue(llmtest.Response{Tokens: []string{"Hi", " there"}})
	resp := post(t, s, streamBody)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("status %d content type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	events := strings.Split(strings.TrimSuffix(string(raw), "\n\n"), "\n\n")
	if len(events) != 5 {
		t.Fatalf("got %d events, want role + 2 tokens + finish + DONE:\n%s", len(events), raw)
	}
	if events[4] != "data: [DONE]" {
		t.Errorf("last event %q", events[4])
	}
	type choice struct {
		Index        int             `json:"index"`
		Delta        map[string]any  `json:"delta"`
		Logprobs     json.RawMessage `json:"logprobs"`
		FinishReason *string         `json:"finish_reason"`
	}
	var contents []string
	for i, ev := range events[:4] {
		payload, ok := strings.CutPrefix(ev, "data: ")
		if !ok {
			t.Fatalf("event %d %q lacks data:", i, ev)
		}
		var raw map[string]json.RawMessage
		if err := json.Unmarshal([]byte(payload), &raw); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		var c struct {
			ID                string   `json:"id"`
			Object            string   `json:"object"`
			Created           int64    `json:"created"`
			Model             string   `json:"model"`
			SystemFingerprint string   `json:"system_fingerprint"`
			Choices           []choice `json:"choices"`
		}
		if err := json.Unmarshal([]byte(payload), &c); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(c.ID, "chatcmpl-") || c.Object != "chat.completion.chunk" || c.Created == 0 ||
			c.Model != "gpt-4o-mini" || c.SystemFingerprint != "fp_fake" || len(c.Choices) != 1 {
			t.Errorf("event %d header fields: %s", i, payload)
		}
		ch := c.Choices[0]
		if string(ch.Logprobs) != "null" {
			t.Errorf("event %d logprobs %s", i, ch.Logprobs)
		}
		switch i {
		case 0:
			if ch.Delta["role"] != "assistant" || ch.Delta["content"] != "" || ch.FinishReason != nil {
				t.Errorf("role chunk %s", payload)
			}
		case 3:
			if len(ch.Delta) != 0 || ch.FinishReason == nil || *ch.FinishReason != "stop" {
				t.Errorf("finish chunk %s", payload)
			}
		default:
			if ch.FinishReason != nil {
				t.Errorf("content chunk has finish_reason: %s", payload)
			}
			contents = append(contents, ch.Delta["content"].(string))
		}
		if _, ok := raw["choices"]; !ok {
			t.Errorf("event %d has no choices", i)
		}
	}
	if !slices.Equal(contents, []string{"Hi", " there"}) {
		t.Errorf("contents %q", contents)
	}
	reqs := s.Requests()
	if len(reqs) != 1 || !reqs[0].Stream || reqs[0].Model != "gpt-4o-mini" ||
		reqs[0].Header.Get("Authorization") != "Bearer sk-x" ||
		!slices.Equal(reqs[0].Messages, []llmtest.Message{{Role: "user", Content: "hi"}}) {
		t.Errorf("recorded %+v", reqs)
	}
}

func TestGoOpenAIClient(t *testing.T) {
	s := llmtest.NewServer(t)
	cfg := openai.DefaultConfig("sk-x")
	cfg.BaseURL = s.URL()
	client := openai.NewClientWithConfig(cfg)
	req := openai.ChatCompletionRequest{
		Model:    "gpt-4o",
		Messages: []openai.ChatCompletionMessage{{Role: "user", Content: "hi"}},
	}

	t.Run("non-streaming", func(t *testing.T) {
		s.Enqueue(llmtest.Response{Tokens: []string{`{"title":`, `"x"}`}})
		resp, err := client.CreateChatCompletion(t.Context(), req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Object != "chat.completion" || resp.Model != "gpt-4o" || len(resp.Choices) != 1 ||
			resp.Choices[0].Message.Content != `{"title":"x"}` || resp.Choices[0].FinishReason != openai.FinishReasonStop ||
			resp.Usage.TotalTokens == 0 {
			t.Errorf("response %+v", resp)
		}
	})

	t.Run("non-streaming finish reason, refusal and usage", func(t *testing.T) {
		s.Enqueue(
			llmtest.Response{Tokens: []string{`{"ti`}, FinishReason: "length", PromptTokens: 7, CompletionTokens: 3},
			llmtest.Response{Refusal: "I can't help with that."},
		)
		resp, err := client.CreateChatCompletion(t.Context(), req)
		if err != nil {
			t.Fatal(err)
		}
		if c := resp.Choices[0]; c.FinishReason != openai.FinishReasonLength || c.Message.Content != `{"ti` ||
			resp.Usage.PromptTokens != 7 || resp.Usage.CompletionTokens != 3 || resp.Usage.TotalTokens != 10 {
			t.Errorf("truncated response %+v", resp)
		}
		resp, err = client.CreateChatCompletion(t.Context(), req)
		if err != nil {
			t.Fatal(err)
		}
		if m := resp.Choices[0].Message; m.Refusal != "I can't help with that." || m.Content != "" {
			t.Errorf("refusal %+v", m)
		}
	})

	t.Run("streaming default reply", func(t *testing.T) {
		stream, err := client.CreateChatCompletionStream(t.Context(), req)
		if err != nil {
			t.Fatal(err)
		}
		defer stream.Close()
		var got []string
		for {
			c, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := c.Choices[0].Delta.Content; d != "" {
				got = append(got, d)
			}
		}
		if !slices.Equal(got, llmtest.DefaultTokens()) {
			t.Errorf("got %q", got)
		}
	})

	t.Run("error shape", func(t *testing.T) {
		s.Enqueue(llmtest.Response{Status: 429, RetryAfter: "2"})
		_, err := client.CreateChatCompletion(t.Context(), req)
		apiErr, ok := errors.AsType[*openai.APIError](err)
		if !ok || apiErr.HTTPStatusCode != 429 || apiErr.Code != "rate_limit_exceeded" || apiErr.Type != "requests" || apiErr.Message == "" {
			t.Errorf("err %#v", err)
		}
	})
}

func TestErrorBodyAndHeaders(t *testing.T) {
	s := llmtest.NewServer(t)
	s.Enqueue(llmtest.Response{Status: 500, RetryAfter: "3"})
	resp := post(t, s, streamBody)
	if resp.StatusCode != 500 || resp.Header.Get("Retry-After") != "3" {
		t.Fatalf("status %d retry-after %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	var body map[string]map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	e := body["error"]
	for _, k := range []string{"message", "type", "param", "code"} {
		if _, ok := e[k]; !ok {
			t.Errorf("error body lacks %q: %v", k, body)
		}
	}
}

func TestRejectsBadRequests(t *testing.T) {
	tests := []struct {
		name, path, body string
		want             int
	}{
		{"unknown path", "/v1/completions", streamBody, 404},
		{"invalid JSON", "/v1/chat/completions", "{", 400},
		{"no model", "/v1/chat/completions", `{"messages":[{"role":"user","content":"x"}]}`, 400},
		{"no messages", "/v1/chat/completions", `{"model":"m","messages":[]}`, 400},
	}
	s := llmtest.NewServer(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := s.Client().Post(strings.TrimSuffix(s.URL(), "/v1")+tt.path, "application/json", strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.want)
			}
		})
	}
}

func TestCutAfterClosesConnection(t *testing.T) {
	s := llmtest.NewServer(t)
	s.Enqueue(llmtest.Response{Tokens: []string{"a", "b", "c"}, CutAfter: 1})
	resp := post(t, s, streamBody)
	raw, err := io.ReadAll(resp.Body)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("read err %v, want unexpected EOF", err)
	}
	if strings.Contains(string(raw), "[DONE]") || strings.Contains(string(raw), `"b"`) || !strings.Contains(string(raw), `"a"`) {
		t.Errorf("body before cut: %s", raw)
	}
}

func TestHoldAndClientGone(t *testing.T) {
	s := llmtest.NewServer(t)
	hold := make(chan struct{})
	s.Enqueue(
		llmtest.Response{Tokens: []string{"a", "b"}, Hold: hold, HoldAt: 1},
		llmtest.Response{Tokens: []string{"a", "b"}, Hold: make(chan struct{}), HoldAt: 1},
	)

	// Released hold: the reply completes and nobody counts as gone.
	resp := post(t, s, streamBody)
	r := bufio.NewReader(resp.Body)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(line, `"content":"a"`) {
			break
		}
	}
	close(hold)
	rest, err := io.ReadAll(r)
	if err != nil || !strings.Contains(string(rest), "[DONE]") {
		t.Fatalf("after release: %v %s", err, rest)
	}
	if n := s.ClientsGone(); n != 0 {
		t.Errorf("ClientsGone = %d, want 0", n)
	}

	// Held forever: the client leaves and the server notices.
	ctx, cancel := context.WithCancel(t.Context())
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.URL()+"/chat/completions", strings.NewReader(streamBody))
	resp2, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	resp2.Body.Close()
	wctx, wcancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer wcancel()
	if err := s.WaitClientGone(wctx); err != nil {
		t.Fatal(err)
	}
}

// A responder answers from the request when nothing is scripted; scripted
// responses still come first.
func TestResponder(t *testing.T) {
	s := llmtest.NewServer(t)
	s.SetResponder(func(r llmtest.Request) llmtest.Response {
		return llmtest.Response{Tokens: []string{"echo: ", r.Messages[len(r.Messages)-1].Content}}
	})
	s.Enqueue(llmtest.Response{Tokens: []string{"scripted"}})
	cfg := openai.DefaultConfig("sk-x")
	cfg.BaseURL = s.URL()
	client := openai.NewClientWithConfig(cfg)
	for _, want := range []string{"scripted", "echo: hi"} {
		resp, err := client.CreateChatCompletion(t.Context(), openai.ChatCompletionRequest{
			Model: "gpt-4o", Messages: []openai.ChatCompletionMessage{{Role: "user", Content: "hi"}},
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := resp.Choices[0].Message.Content; got != want {
			t.Errorf("answer %q, want %q", got, want)
		}
	}
}
