package llm

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/storyd/storyd/llm/llmtest"
	"github.com/storyd/storyd/story"
)

func newTestExtractor(t *testing.T, baseURL string, mod func(*OpenAIConfig)) *OpenAIExtractor {
	t.Helper()
	cfg := OpenAIConfig{
		BaseURL:        baseURL,
		APIKey:         testKey,
		MaxRetries:     2,
		RetryBaseDelay: time.Millisecond,
	}
	if mod != nil {
		mod(&cfg)
	}
	e, err := NewOpenAIExtractor(cfg)
	if err != nil {
		t.Fatalf("NewOpenAIExtractor: %v", err)
	}
	return e
}

// validAnswer is a complete dossier as a strict structured answer holds it.
const validAnswer = `{"title":"The Keeper","logline":"A lighthouse keeper fights to keep her light.","genre":"drama","tone":"bittersweet, quiet",` +
	`"characters":[{"name":"Ada Whitlock","description":"Keeps the lighthouse on Gull Rock.","relationships":["grandmother of the storyteller"],"character_arc":""},` +
	`{"name":"Tom Pruitt","description":"The mailboat captain.","relationships":["friend of Ada Whitlock"],"character_arc":""}],` +
	`"themes":["duty"],"locations":["Gull Rock","Maine"],"plot_points":["The Coast Guard announces the light will be automated."],` +
	`"scenes":[{"one_liner":"Ada turns the lamp by hand in the storm.","interior_exterior":"INT","time_of_day":"NIGHT","tone":"tense"}]}`

// tokensOf splits s into a few chunks, as a model would emit it.
func tokensOf(s string) []string {
	var out []string
	for len(s) > 0 {
		n := min(len(s), 17)
		out = append(out, s[:n])
		s = s[n:]
	}
	return out
}

func testExtractRequest() ExtractRequest {
	return ExtractRequest{
		Current: story.Snapshot{
			Title:      "The Keeper",
			Characters: []story.Character{{Name: "Ada Whitlock", Description: "Keeps the lighthouse on Gull Rock."}},
			Locations:  []string{"Gull Rock"},
		},
		Turns: []Turn{
			{User: "Her only friend is Tom Pruitt, the mailboat captain.", Assistant: "Tell me about Tom."},
			{User: "It's about duty.", Assistant: ""},
		},
	}
}

func TestOpenAIExtractorParsesStructuredAnswer(t *testing.T) {
	s := llmtest.NewServer(t)
	s.Enqueue(llmtest.Response{Tokens: tokensOf(validAnswer), PromptTokens: 812, CompletionTokens: 164})
	e := newTestExtractor(t, s.URL(), nil)
	res, err := e.Extract(t.Context(), testExtractRequest())
	if err != nil {
		t.Fatalf("Extract: %v", err)
	}
	want, err := story.Parse([]byte(validAnswer))
	if err != nil {
		t.Fatalf("parse want: %v", err)
	}
	if !reflect.DeepEqual(res.Snapshot, want) {
		t.Errorf("snapshot\n got %+v\nwant %+v", res.Snapshot, want)
	}
	if res.PromptTokens != 812 || res.CompletionTokens != 164 {
		t.Errorf("tokens %d/%d, want the usage 812/164", res.PromptTokens, res.CompletionTokens)
	}
	if e.Name() != "openai:gpt-4o" {
		t.Errorf("Name() = %q", e.Name())
	}
}

func TestOpenAIExtractorRequestShape(t *testing.T) {
	s := llmtest.NewServer(t)
	s.Enqueue(llmtest.Response{Tokens: tokensOf(validAnswer)})
	e := newTestExtractor(t, s.URL(), nil) // no model: the default
	req := testExtractRequest()
	if _, err := e.Extract(t.Context(), req); err != nil {
		t.Fatalf("Extract: %v", err)
	}
	reqs := s.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if r.Method != http.MethodPost || r.Path != "/v1/chat/completions" || r.Header.Get("Authorization") != "Bearer "+testKey {
		t.Errorf("request %s %s auth %q", r.Method, r.Path, r.Header.Get("Authorization"))
	}
	if r.Model != DefaultExtractionModel || r.Stream {
		t.Errorf("model %q stream %v, want %s non-streaming", r.Model, r.Stream, DefaultExtractionModel)
	}
	if r.Temperature == nil || *r.Temperature != 0 {
		t.Errorf("temperature %v, want an explicit 0", r.Temperature)
	}
	var body map[string]json.RawMessage
	if err := json.Unmarshal(r.Body, &body); err != nil {
		t.Fatalf("body: %v", err)
	}
	if string(body["temperature"]) != "0" {
		t.Errorf("body temperature %s", body["temperature"])
	}

	var format struct {
		Type       string `json:"type"`
		JSONSchema struct {
			Name   string         `json:"name"`
			Strict *bool          `json:"strict"`
			Schema map[string]any `json:"schema"`
		} `json:"json_schema"`
	}
	if err := json.Unmarshal(r.ResponseFormat, &format); err != nil {
		t.Fatalf("response_format %s: %v", r.ResponseFormat, err)
	}
	if format.Type != "json_schema" || format.JSONSchema.Name != "story_dossier" ||
		format.JSONSchema.Strict == nil || !*format.JSONSchema.Strict {
		t.Errorf("response_format %s", r.ResponseFormat)
	}
	schema := format.JSONSchema.Schema
	checkStrictSchema(t, "schema", schema)
	props := func(s map[string]any) []string {
		var names []string
		for k := range s["properties"].(map[string]any) {
			names = append(names, k)
		}
		slices.Sort(names)
		return names
	}
	items := func(s map[string]any, name string) map[string]any {
		return s["properties"].(map[string]any)[name].(map[string]any)["items"].(map[string]any)
	}
	for _, c := range []struct {
		name   string
		schema map[string]any
		typ    reflect.Type
	}{
		{"snapshot", schema, reflect.TypeFor[story.Snapshot]()},
		{"character", items(schema, "characters"), reflect.TypeFor[story.Character]()},
		{"scene", items(schema, "scenes"), reflect.TypeFor[story.Scene]()},
	} {
		if got, want := props(c.schema), jsonFieldNames(c.typ); !slices.Equal(got, want) {
			t.Errorf("%s schema properties %v, want the JSON fields of %v: %v", c.name, got, c.typ, want)
		}
	}

	if len(r.Messages) != 2 || r.Messages[0].Role != RoleSystem || r.Messages[0].Content != ExtractionPrompt ||
		r.Messages[1].Role != RoleUser {
		t.Fatalf("messages %+v", r.Messages)
	}
	prompt := r.Messages[1].Content
	cur := req.Current
	cur.Normalize()
	if brief := cur.BriefFor(req.Turns[0].User + "\n" + req.Turns[0].Assistant + "\n" + req.Turns[1].User); !strings.Contains(prompt, "The dossier so far:\n"+brief+"\n") {
		t.Errorf("prompt lacks the current dossier's brief %s:\n%s", brief, prompt)
	}
	for _, want := range []string{
		"[Turn 1]\nPerson: Her only friend is Tom Pruitt, the mailboat captain.\nInterviewer: Tell me about Tom.\n",
		"[Turn 2]\nPerson: It's about duty.\n",
	} {
		if !strings.Contains(prompt, want) {
			t.Errorf("prompt lacks %q:\n%s", want, prompt)
		}
	}
	if strings.Contains(prompt, "[Turn 3]") {
		t.Errorf("prompt holds more turns than the new ones:\n%s", prompt)
	}
}

// checkStrictSchema checks what strict structured outputs demand of every
// object: all properties required, no additional properties.
func checkStrictSchema(t *testing.T, path string, s map[string]any) {
	t.Helper()
	switch s["type"] {
	case "object":
		if ap, ok := s["additionalProperties"].(bool); !ok || ap {
			t.Errorf("%s: additionalProperties %v, want false", path, s["additionalProperties"])
		}
		props, _ := s["properties"].(map[string]any)
		var names, required []string
		for k := range props {
			names = append(names, k)
		}
		for _, r := range s["required"].([]any) {
			required = append(required, r.(string))
		}
		slices.Sort(names)
		slices.Sort(required)
		if len(names) == 0 || !slices.Equal(names, required) {
			t.Errorf("%s: required %v, properties %v", path, required, names)
		}
		for k, v := range props {
			checkStrictSchema(t, path+"."+k, v.(map[string]any))
		}
	case "array":
		checkStrictSchema(t, path+"[]", s["items"].(map[string]any))
	case "string":
	default:
		t.Errorf("%s: type %v", path, s["type"])
	}
}

func jsonFieldNames(typ reflect.Type) []string {
	var names []string
	for f := range typ.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

func TestOpenAIExtractorRejectsBadAnswers(t *testing.T) {
	without := func(field string) string {
		var m map[string]json.RawMessage
		if err := json.Unmarshal([]byte(validAnswer), &m); err != nil {
			panic(err)
		}
		delete(m, field)
		b, _ := json.Marshal(m)
		return string(b)
	}
	with := func(field, value string) string {
		var m map[string]json.RawMessage
		if err := json.Unmarshal([]byte(validAnswer), &m); err != nil {
			panic(err)
		}
		m[field] = json.RawMessage(value)
		b, _ := json.Marshal(m)
		return string(b)
	}
	tests := []struct {
		name string
		resp llmtest.Response
		code string
	}{
		{"truncated", llmtest.Response{Tokens: tokensOf(validAnswer[:len(validAnswer)/2]), FinishReason: "length"}, CodeExtractionInvalid},
		{"truncated even if it parses", llmtest.Response{Tokens: tokensOf(validAnswer), FinishReason: "length"}, CodeExtractionInvalid},
		{"malformed JSON", llmtest.Response{Tokens: []string{`{"title": "The Keeper", "characters": [`}}, CodeExtractionInvalid},
		{"prose", llmtest.Response{Tokens: []string{"Here is the dossier: Ada keeps a lighthouse."}}, CodeExtractionInvalid},
		{"empty", llmtest.Response{Tokens: []string{}}, CodeExtractionInvalid},
		{"not an object", llmtest.Response{Tokens: []string{`["Ada Whitlock"]`}}, CodeExtractionInvalid},
		{"JSON null", llmtest.Response{Tokens: []string{`null`}}, CodeExtractionInvalid},
		{"missing field", llmtest.Response{Tokens: []string{without("scenes")}}, CodeExtractionInvalid},
		{"null field", llmtest.Response{Tokens: []string{with("themes", "null")}}, CodeExtractionInvalid},
		{"wrong type", llmtest.Response{Tokens: []string{with("themes", `"duty"`)}}, CodeExtractionInvalid},
		{"unknown field", llmtest.Response{Tokens: []string{with("budget", `"low"`)}}, CodeExtractionInvalid},
		{"character lacks a field", llmtest.Response{Tokens: []string{with("characters", `[{"name":"Ada","description":"","relationships":[]}]`)}}, CodeExtractionInvalid},
		{"scene lacks a field", llmtest.Response{Tokens: []string{with("scenes", `[{"one_liner":"x"}]`)}}, CodeExtractionInvalid},
		{"trailing data", llmtest.Response{Tokens: []string{validAnswer + ` {}`}}, CodeExtractionInvalid},
		{"too long a title", llmtest.Response{Tokens: []string{with("title", `"`+strings.Repeat("a", story.MaxTextLength+1)+`"`)}}, CodeExtractionInvalid},
		{"unexpected finish reason", llmtest.Response{Tokens: tokensOf(validAnswer), FinishReason: "tool_calls"}, CodeExtractionInvalid},
		{"refusal", llmtest.Response{Refusal: "I'm sorry, I can't help with that."}, CodeExtractionRefused},
		{"content filter", llmtest.Response{Tokens: []string{}, FinishReason: "content_filter"}, CodeExtractionRefused},
		{"no choices", llmtest.Response{Body: `{"id":"x","object":"chat.completion","created":1,"model":"gpt-4o","choices":[]}`}, CodeExtractionInvalid},
		{"body not JSON", llmtest.Response{Body: `<html>bad gateway</html>`}, CodeBadResponse},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := llmtest.NewServer(t)
			s.Enqueue(tt.resp, llmtest.Response{Tokens: tokensOf(validAnswer)})
			e := newTestExtractor(t, s.URL(), nil)
			res, err := e.Extract(t.Context(), testExtractRequest())
			if CodeOf(err) != tt.code {
				t.Fatalf("err = %v (code %q), want code %q", err, CodeOf(err), tt.code)
			}
			if !reflect.DeepEqual(res, ExtractResult{}) {
				t.Errorf("result %+v on error, want the zero result", res)
			}
			switch tt.code {
			case CodeExtractionInvalid:
				if !errors.Is(err, ErrExtractionInvalid) {
					t.Errorf("errors.Is(%v, ErrExtractionInvalid) = false", err)
				}
			case CodeExtractionRefused:
				if !errors.Is(err, ErrExtractionRefused) {
					t.Errorf("errors.Is(%v, ErrExtractionRefused) = false", err)
				}
			}
			if n := len(s.Requests()); n != 1 {
				t.Errorf("%d requests, want 1: the caller decides about retrying", n)
			}
		})
	}
}

func TestOpenAIExtractorRetries(t *testing.T) {
	tests := []struct {
		name      string
		responses []llmtest.Response
		wantCode  string
		wantCalls int
	}{
		{"429 then success", []llmtest.Response{{Status: 429}, {Tokens: tokensOf(validAnswer)}}, "", 2},
		{"500, 503 then success", []llmtest.Response{{Status: 500}, {Status: 503}, {Tokens: tokensOf(validAnswer)}}, "", 3},
		{"429 until retries run out", []llmtest.Response{{Status: 429}, {Status: 429}, {Status: 429}, {Tokens: tokensOf(validAnswer)}}, CodeRateLimited, 3},
		{"400 is not retried", []llmtest.Response{{Status: 400}, {Tokens: tokensOf(validAnswer)}}, CodeUpstreamRejected, 1},
		{"401 is not retried", []llmtest.Response{{Status: 401}, {Tokens: tokensOf(validAnswer)}}, CodeUpstreamAuth, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := llmtest.NewServer(t)
			s.Enqueue(tt.responses...)
			e := newTestExtractor(t, s.URL(), nil)
			var delays []time.Duration
			e.base.sleep = func(ctx context.Context, d time.Duration) error {
				delays = append(delays, d)
				return nil
			}
			res, err := e.Extract(t.Context(), testExtractRequest())
			if CodeOf(err) != tt.wantCode || (tt.wantCode == "" && err != nil) {
				t.Fatalf("err = %v, want code %q", err, tt.wantCode)
			}
			if got := len(s.Requests()); got != tt.wantCalls {
				t.Errorf("%d requests, want %d", got, tt.wantCalls)
			}
			if len(delays) != tt.wantCalls-1 {
				t.Errorf("%d backoffs, want %d", len(delays), tt.wantCalls-1)
			}
			if err == nil && len(res.Snapshot.Characters) != 2 {
				t.Errorf("snapshot %+v", res.Snapshot)
			}
			if err != nil && strings.Contains(err.Error(), testKey) {
				t.Errorf("error contains the API key: %v", err)
			}
		})
	}
}

func TestOpenAIExtractorHonoursRetryAfter(t *testing.T) {
	s := llmtest.NewServer(t)
	s.Enqueue(llmtest.Response{Status: 429, RetryAfter: "1.5"}, llmtest.Response{Tokens: tokensOf(validAnswer)})
	e := newTestExtractor(t, s.URL(), nil)
	var delays []time.Duration
	e.base.sleep = func(ctx context.Context, d time.Duration) error {
		delays = append(delays, d)
		return nil
	}
	if _, err := e.Extract(t.Context(), testExtractRequest()); err != nil {
		t.Fatalf("Extract: %v", err)
	}
	if !slices.Equal(delays, []time.Duration{1500 * time.Millisecond}) {
		t.Errorf("delays %v, want [1.5s]", delays)
	}
}

func TestOpenAIExtractorEstimatesMissingUsage(t *testing.T) {
	s := llmtest.NewServer(t)
	content, _ := json.Marshal(validAnswer)
	s.Enqueue(llmtest.Response{Body: `{"id":"x","object":"chat.completion","created":1,"model":"gpt-4o","choices":[` +
		`{"index":0,"message":{"role":"assistant","content":` + string(content) + `},"finish_reason":"stop"}]}`})
	e := newTestExtractor(t, s.URL(), nil)
	res, err := e.Extract(t.Context(), testExtractRequest())
	if err != nil {
		t.Fatalf("Extract: %v", err)
	}
	if want := EstimateMessagesTokens(extractionMessages(testExtractRequest())); res.PromptTokens != want {
		t.Errorf("prompt tokens %d, want the estimate %d", res.PromptTokens, want)
	}
	if want := EstimateTokens(validAnswer); res.CompletionTokens != want {
		t.Errorf("completion tokens %d, want the estimate %d", res.CompletionTokens, want)
	}
}

func TestOpenAIExtractorNothingNew(t *testing.T) {
	s := llmtest.NewServer(t)
	e := newTestExtractor(t, s.URL(), nil)
	req := testExtractRequest()
	for _, turns := range [][]Turn{nil, {{User: "  ", Assistant: "What is it about?"}}} {
		req.Turns = turns
		res, err := e.Extract(t.Context(), req)
		if err != nil {
			t.Fatalf("Extract: %v", err)
		}
		want := req.Current
		want.Normalize()
		if !reflect.DeepEqual(res, ExtractResult{Snapshot: want}) {
			t.Errorf("result %+v, want the current dossier and no tokens", res)
		}
	}
	if n := len(s.Requests()); n != 0 {
		t.Errorf("%d requests, want none", n)
	}
}

func TestOpenAIExtractorReasoningModelSendsNoTemperature(t *testing.T) {
	s := llmtest.NewServer(t)
	s.Enqueue(llmtest.Response{Tokens: tokensOf(validAnswer)})
	e := newTestExtractor(t, s.URL(), func(c *OpenAIConfig) { c.Model = "o3-mini"; c.MaxTokens = 4000 })
	if _, err := e.Extract(t.Context(), testExtractRequest()); err != nil {
		t.Fatalf("Extract: %v", err)
	}
	r := s.Requests()[0]
	if r.Temperature != nil || r.MaxTokens != 0 || r.MaxCompletionTokens != 4000 {
		t.Errorf("temperature %v max_tokens %d max_completion_tokens %d", r.Temperature, r.MaxTokens, r.MaxCompletionTokens)
	}
}

func TestOpenAIExtractorCancelled(t *testing.T) {
	s := llmtest.NewServer(t)
	e := newTestExtractor(t, s.URL(), nil)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := e.Extract(ctx, testExtractRequest()); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}

	hold := make(chan struct{})
	defer close(hold)
	s.Enqueue(llmtest.Response{Tokens: tokensOf(validAnswer), Hold: hold})
	ctx, cancel = context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := e.Extract(ctx, testExtractRequest())
		done <- err
	}()
	waitRequests(t, s, 1)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	wait, stop := context.WithTimeout(t.Context(), 10*time.Second)
	defer stop()
	if err := s.WaitClientGone(wait); err != nil {
		t.Errorf("the upstream request was not closed: %v", err)
	}
}

func TestOpenAIExtractorTimeout(t *testing.T) {
	s := llmtest.NewServer(t)
	s.Enqueue(llmtest.Response{Status: 500}, llmtest.Response{Status: 500})
	e := newTestExtractor(t, s.URL(), func(c *OpenAIConfig) { c.Timeout = time.Second; c.RetryBaseDelay = 5 * time.Second })
	// The backoff cannot end before the deadline: the upstream's answer is
	// reported instead of waiting for a timeout.
	_, err := e.Extract(t.Context(), testExtractRequest())
	if CodeOf(err) != CodeUpstreamUnavailable {
		t.Errorf("err = %v, want upstream_unavailable", err)
	}
	if n := len(s.Requests()); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

func TestNewOpenAIExtractorValidation(t *testing.T) {
	for _, cfg := range []OpenAIConfig{
		{BaseURL: "ftp://example.com"},
		{Timeout: -time.Second},
		{MaxTokens: -1},
	} {
		if _, err := NewOpenAIExtractor(cfg); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("NewOpenAIExtractor(%+v) err = %v, want ErrInvalidConfig", cfg, err)
		}
	}
	e, err := NewOpenAIExtractor(OpenAIConfig{Model: "llama3.1", BaseURL: "http://localhost:11434/v1"})
	if err != nil || e.Name() != "openai:llama3.1" {
		t.Errorf("NewOpenAIExtractor: %v, name %v", err, e)
	}
}

// waitRequests polls until s has received n requests.
func waitRequests(t *testing.T, s *llmtest.Server, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(s.Requests()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("server got %d requests, want %d", len(s.Requests()), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// An interviewer line shrinks to its closing question: the person's next
// answer answers it; the rest restates what the person said.
func TestInterviewerCue(t *testing.T) {
	long := strings.Repeat("word ", 80) + "?"
	for _, c := range []struct{ in, want string }{
		{"", ""},
		{"   ", ""},
		{"Okay.", "Okay."},
		{"Ada Whitlock — I'd like to know more. Who else matters to her?", "Who else matters to her?"},
		{"So she keeps the light. Where does it happen? Tell me the place.", "Where does it happen? Tell me the place."},
		{"First part. Second part.", "Second part."},
		{long, truncateText(strings.TrimSpace(long), interviewerCueMax)},
	} {
		if got := interviewerCue(c.in); got != c.want {
			t.Errorf("interviewerCue(%q) = %q, want %q", c.in, got, c.want)
		}
		if got := interviewerCue(c.in); len(got) > interviewerCueMax+len("…") {
			t.Errorf("interviewerCue(%q) is %d bytes", c.in, len(got))
		}
	}
}

// An empty dossier says so instead of sending an empty brief.
func TestExtractionPromptOfEmptyDossier(t *testing.T) {
	msgs := extractionMessages(ExtractRequest{Turns: []Turn{{User: "It's about duty."}}})
	if !strings.HasPrefix(msgs[1].Content, "The dossier is empty so far.\n\nNew turns") {
		t.Errorf("prompt:\n%s", msgs[1].Content)
	}
}
