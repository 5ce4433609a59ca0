package transport

import (
	"sync"

	"github.com/storyd/storyd/actors"
)

// queue is a subscriber with a bounded outbound queue. The session actor
// calls Deliver and Drop (never blocking); the stream handler reads events
// from C and learns from Dropped that no more will come.
type queue struct {
	events  chan []actors.Event // one event, or a whole catch-up
	dropped chan struct{}
	once    sync.Once
	err     error // why it was dropped; read only after Dropped is closed
}

func newQueue(size int) *queue {
	return &queue{events: make(chan []actors.Event, size), dropped: make(chan struct{})}
}

// Deliver implements actors.Subscriber.
func (q *queue) Deliver(ev actors.Event) bool {
	return q.DeliverBatch([]actors.Event{ev})
}

// DeliverBatch implements actors.Subscriber.
func (q *queue) DeliverBatch(evs []actors.Event) bool {
	select {
	case q.events <- evs:
		return true
	default:
		return false
	}
}

// Drop implements actors.Subscriber.
func (q *queue) Drop(err error) {
	q.once.Do(func() {
		q.err = err
		close(q.dropped)
	})
}

// C returns the events channel; each item holds one or more events.
func (q *queue) C() <-chan []actors.Event { return q.events }

// Dropped is closed once the actor removed the subscriber. Events delivered
// before it may still be waiting in C.
func (q *queue) Dropped() <-chan struct{} { return q.dropped }

// Err says why the subscriber was dropped (nil: its stream completed). Call
// it only after Dropped is closed.
func (q *queue) Err() error { return q.err }
