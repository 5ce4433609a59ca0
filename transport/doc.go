// Package transport is storyd's HTTP surface: the REST endpoints, the SSE
// chat stream and the health probes. NewServer returns an http.Handler; it
// does not listen on its own (cmd/storyd does). The pages it serves live in
// sub-packages: apidocs (/docs) and webclient (the web client at /), both
// embedded and served through static.
//
// Concurrency rules: handlers run on net/http's goroutines. A streaming
// handler owns one subscriber queue: the session actor fills it without
// blocking (see actors.Subscriber), the handler drains it and writes each
// event under its own write deadline. When the client goes away the handler
// unsubscribes and returns; the reply itself goes on in the actor.
// Long-lived streams also end when the Server's Close is called.
//
// An upgraded WebSocket leaves net/http's goroutine (so that net/http lets
// go of the connection's buffers): it runs on a goroutine of its own, which
// reads frames, starts and waits for the socket's single writer goroutine,
// and stops its ping timer; Server.Wait waits for every socket. Outbound
// queues (outbox) are bounded but allocate only as they fill.
package transport
