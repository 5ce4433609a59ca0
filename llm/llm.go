package llm

// Chat roles as the OpenAI wire format names them.
const (
	RoleSystem    = "system"
	RoleUser      = "user"
	RoleAssistant = "assistant"
)

// Message is one message of a chat prompt.
type Message struct {
	Role    string
	Content string
}
