// Package llmtest provides a faithful in-process fake of the OpenAI chat
// completions API (streaming and non-streaming) for tests of any package
// that talks to a model through package llm or go-openai.
//
// # Concurrency
//
// A [*Server] is safe for concurrent use: tests may Enqueue, read Requests
// and wait for disconnects while requests are being served. Each request is
// served on its own net/http goroutine, which the Server owns: handlers
// return when the scripted reply is done, when the client goes away, or when
// the test ends (t.Cleanup closes the server and releases any held reply).
package llmtest
