package llmtest_test

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	openai "github.com/sashabaranov/go-openai"

	"github.com/storyd/storyd/llm/llmtest"
)

func TestParseStamps(t *testing.T) {
	tests := []struct {
		name, content string
		want          []int64
	}{
		{"one", "w123 ", []int64{123}},
		{"joined", "w1 w22 w333 ", []int64{1, 22, 333}},
		{"text between", "Hello w5 world w6 ", []int64{5, 6}},
		{"no space", "w123", nil},
		{"not digits", "wow w12x ", nil},
		{"empty", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := llmtest.ParseStamps(nil, tt.content)
			if len(got) != len(tt.want) {
				t.Fatalf("ParseStamps(%q) = %v, want %v", tt.content, got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("ParseStamps(%q) = %v, want %v", tt.content, got, tt.want)
				}
			}
		})
	}
	now := time.Now()
	if got := llmtest.ParseStamps(nil, llmtest.Stamp(now)); len(got) != 1 || got[0] != now.UnixNano() {
		t.Errorf("round trip of %v: %v", now.UnixNano(), got)
	}
}

// TestStampedStream reads a stamped stream with go-openai, as storyd does:
// every delta is one stamp, sent no earlier than the request and in order,
// and the first waits FirstDelay.
func TestStampedStream(t *testing.T) {
	s := llmtest.NewServer(t)
	s.Enqueue(llmtest.Response{Tokens: make([]string, 4), Stamp: true, FirstDelay: 30 * time.Millisecond})
	cfg := openai.DefaultConfig("sk-x")
	cfg.BaseURL = s.URL()
	client := openai.NewClientWithConfig(cfg)
	start := time.Now()
	stream, err := client.CreateChatCompletionStream(context.Background(), openai.ChatCompletionRequest{
		Model:    "gpt-4o-mini",
		Messages: []openai.ChatCompletionMessage{{Role: "user", Content: "hi"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	var stamps []int64
	for {
		r, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Choices) > 0 && r.Choices[0].Delta.Content != "" {
			got := llmtest.ParseStamps(nil, r.Choices[0].Delta.Content)
			if len(got) != 1 {
				t.Fatalf("delta %q holds %d stamps, want 1", r.Choices[0].Delta.Content, len(got))
			}
			stamps = append(stamps, got[0])
		}
	}
	if len(stamps) != 4 {
		t.Fatalf("got %d stamped deltas, want 4", len(stamps))
	}
	if first := time.Unix(0, stamps[0]); first.Sub(start) < 30*time.Millisecond {
		t.Errorf("first token stamped %v after the request, want at least FirstDelay", first.Sub(start))
	}
	for i := 1; i < len(stamps); i++ {
		if stamps[i] < stamps[i-1] {
			t.Errorf("stamps out of order: %v", stamps)
		}
	}
}

func TestListen(t *testing.T) {
	s, err := llmtest.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	resp := post(t, s, streamBody)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
}
