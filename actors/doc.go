// Package actors holds storyd's long-lived actors, built on protoactor-go's
// local actor package.
//
// A session actor owns one chat session: its context window, its event
// sequence numbers, the reply being generated and the subscribers that
// follow it. A manager actor (one per Sessions) owns the session actors:
// it spawns them on first use, forwards commands to them and passivates
// them when they have been idle for a while.
//
// Concurrency rules:
//   - Actor state is touched only inside Receive. Store calls and model
//     streams never run inside Receive: they run in goroutines started through
//     the Sessions' worker group (which Shutdown waits for) and report back to
//     the actor as messages.
//   - Commands carry a buffered reply channel of capacity one, so an actor
//     never blocks when answering and a caller that gave up leaks nothing.
//   - Subscribers are called from the owning actor only, and their methods
//     must not block (see Subscriber).
//   - Transport code never sees a *actor.PID: it addresses sessions by id
//     through Sessions, which keeps the core ready for cross-node routing.
package actors
