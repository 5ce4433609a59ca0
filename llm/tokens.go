package llm

// messageOverheadTokens approximates what the chat format adds around each
// message (role and separators), as OpenAI documents for its chat models.
const messageOverheadTokens = 4

// replyPrimingTokens approximates the tokens that prime the assistant reply.
const replyPrimingTokens = 3

// EstimateTokens returns a cheap estimate of the tokens in s: about four
// bytes per token, and at least 1 for any non-empty string. Counting bytes
// rather than runes keeps the estimate on the safe (high) side for non-Latin
// scripts. It is meant for budgeting context windows, not billing.
func EstimateTokens(s string) int {
	if s == "" {
		return 0
	}
	return (len(s) + 3) / 4
}

// EstimateMessageTokens returns the estimated tokens one message costs in a
// prompt: its content plus a small per-message overhead.
func EstimateMessageTokens(m Message) int {
	return messageOverheadTokens + EstimateTokens(m.Content)
}

// EstimateMessagesTokens returns the estimated tokens a whole prompt costs,
// including the tokens that prime the reply.
func EstimateMessagesTokens(msgs []Message) int {
	n := replyPrimingTokens
	for _, m := range msgs {
		n += EstimateMessageTokens(m)
	}
	return n
}
