package llm

import "testing"

func TestEstimateTokens(t *testing.T) {
	tests := []struct {
		in   string
		want int
	}{
		{"", 0},
		{"a", 1},
		{"abcd", 1},
		{"abcde", 2},
		{"The quick brown fox jumps over the lazy dog.", 11},
		{"日本語", 3}, // 9 bytes
	}
	for _, tt := range tests {
		if got := EstimateTokens(tt.in); got != tt.want {
			t.Errorf("EstimateTokens(%q) = %d, want %d", tt.in, got, tt.want)
		}
	}
	m := Message{Role: RoleUser, Content: "abcdefgh"}
	if got := EstimateMessageTokens(m); got != 2+messageOverheadTokens {
		t.Errorf("EstimateMessageTokens = %d", got)
	}
	if got := EstimateMessagesTokens([]Message{m, m}); got != 2*(2+messageOverheadTokens)+replyPrimingTokens {
		t.Errorf("EstimateMessagesTokens = %d", got)
	}
}
