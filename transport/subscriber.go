package transport

import (
	"sync"

	"github.com/storyd/storyd/actors"
)

// queue is a subscriber with a bounded outbound queue. The session actor
// calls Deliver and Drop (never blocking); the stream handler pops events
// when Ready is signalled and learns from Dropped that no more will come.
type queue struct {
	events  *outbox[queued]
	dropped chan struct{}
	once    sync.Once
	err     error // why it was dropped; read only after Dropped is closed
}

// queued is one item of a queue: an event, or a whole catch-up (one item
// of the bound, however long).
type queued struct {
	ev  actors.Event
	evs []actors.Event // a catch-up, instead of ev
}

func newQueue(size int) *queue {
	return &queue{events: newOutbox[queued](size), dropped: make(chan struct{})}
}

// Deliver implements actors.Subscriber.
func (q *queue) Deliver(ev actors.Event) bool {
	return q.events.push(queued{ev: ev})
}

// DeliverBatch implements actors.Subscriber.
func (q *queue) DeliverBatch(evs []actors.Event) bool {
	if len(evs) == 0 {
		return true
	}
	return q.events.push(queued{evs: evs})
}

// Drop implements actors.Subscriber.
func (q *queue) Drop(err error) {
	q.once.Do(func() {
		q.err = err
		close(q.dropped)
	})
}

// Ready is signalled when events were delivered; Next then returns them.
func (q *queue) Ready() <-chan struct{} { return q.events.Ready() }

// Next appends the next queued event (or catch-up) to dst; ok is false,
// and dst is returned as it was, when the queue is empty.
func (q *queue) Next(dst []actors.Event) (evs []actors.Event, ok bool) {
	it, ok := q.events.pop()
	if !ok {
		return dst, false
	}
	if it.evs != nil {
		return append(dst, it.evs...), true
	}
	return append(dst, it.ev), true
}

// Dropped is closed once the actor removed the subscriber. Events delivered
// before it may still be waiting in C.
func (q *queue) Dropped() <-chan struct{} { return q.dropped }

// Err says why the subscriber was dropped (nil: its stream completed). Call
// it only after Dropped is closed.
func (q *queue) Err() error { return q.err }
