// Package llm provides the language-model providers storyd talks to: a
// streaming client for any OpenAI-compatible chat completions endpoint
// ([OpenAI]) and a deterministic, network-free intake interviewer
// ([Offline]) used when no API key is configured.
//
// Both providers share one shape, StreamChat(ctx, msgs, emit), which the
// consumer (the session actor) declares as its own small interface; this
// package deliberately declares none.
//
// # Concurrency
//
// An [*OpenAI] or [*Offline] value is immutable after construction and safe
// for concurrent use by any number of goroutines; every call to StreamChat is
// independent.
//
// StreamChat blocks until the reply is complete, fails, or ctx ends. It calls
// emit synchronously on the calling goroutine, in order, and never after it
// has returned; emit must not block for long, because upstream reading waits
// for it. StreamChat starts no goroutine that outlives the call: the only
// helper is a stopped-on-return timer that cancels the first-token deadline.
// Cancelling ctx closes the upstream HTTP request and makes StreamChat return
// an error for which errors.Is(err, context.Canceled) holds.
//
// # Errors
//
// Upstream failures are returned as [*Error] carrying a stable, snake_case
// code (see [CodeOf]) that is safe to send to clients; the API key never
// appears in an error. The package never logs.
package llm
