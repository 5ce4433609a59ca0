package transport

import "sync"

// outbox is a bounded FIFO between a producer that must never block (a
// session actor delivering events) and one consumer (a socket's writer).
// Unlike a buffered channel it allocates as it fills, not up front: an idle
// connection holds an empty outbox, which is most of what a node holds.
type outbox[T any] struct {
	mu    sync.Mutex
	items []T
	head  int
	limit int
	ready chan struct{} // capacity 1: signalled by every push
}

// shrinkAbove is the capacity beyond which an emptied outbox lets its
// buffer go, so that one burst does not pin memory for the socket's life.
const shrinkAbove = 2

func newOutbox[T any](limit int) *outbox[T] {
	return &outbox[T]{limit: max(limit, 1), ready: make(chan struct{}, 1)}
}

// push appends v unless the outbox holds limit items already; it never
// blocks.
func (o *outbox[T]) push(v T) bool {
	o.mu.Lock()
	if len(o.items)-o.head >= o.limit {
		o.mu.Unlock()
		return false
	}
	o.items = append(o.items, v)
	o.mu.Unlock()
	select {
	case o.ready <- struct{}{}:
	default:
	}
	return true
}

// pop removes and returns the oldest item, if any.
func (o *outbox[T]) pop() (v T, ok bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.head == len(o.items) {
		return v, false
	}
	v = o.items[o.head]
	var zero T
	o.items[o.head] = zero
	o.head++
	if o.head == len(o.items) {
		if cap(o.items) > shrinkAbove {
			o.items = nil
		} else {
			o.items = o.items[:0]
		}
		o.head = 0
	}
	return v, true
}

// Ready is signalled after a push; the consumer then pops until the outbox
// is empty. A signal may find it already emptied.
func (o *outbox[T]) Ready() <-chan struct{} { return o.ready }
