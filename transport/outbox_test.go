package transport

import (
	"testing"

	"github.com/storyd/storyd/actors"
)

func TestOutbox(t *testing.T) {
	o := newOutbox[int](3)
	if _, ok := o.pop(); ok {
		t.Fatal("pop of an empty outbox")
	}
	for round := 0; round < 3; round++ {
		for i := 0; i < 3; i++ {
			if !o.push(i) {
				t.Fatalf("round %d: push %d refused below the limit", round, i)
			}
		}
		if o.push(99) {
			t.Fatalf("round %d: push beyond the limit accepted", round)
		}
		select {
		case <-o.Ready():
		default:
			t.Fatal("no ready signal after a push")
		}
		for i := 0; i < 3; i++ {
			if v, ok := o.pop(); !ok || v != i {
				t.Fatalf("round %d: pop = %d, %v; want %d", round, v, ok, i)
			}
		}
		if _, ok := o.pop(); ok {
			t.Fatal("pop after draining")
		}
	}
	big := newOutbox[int](1000)
	for i := 0; i < 500; i++ {
		big.push(i)
	}
	for _, ok := big.pop(); ok; _, ok = big.pop() {
	}
	if big.items != nil {
		t.Errorf("an emptied outbox kept a buffer of %d", cap(big.items))
	}
}

// BenchmarkQueueDeliver is a subscriber's share of each token: the actor
// delivers, the stream's writer pops.
func BenchmarkQueueDeliver(b *testing.B) {
	q := newQueue(1024)
	ev := actors.Event{Type: actors.EventText, SessionID: "0b6a9c1e-4f55-4a53-9b9c-0c6a1a8f2c11", Seq: 42, Content: "tok "}
	var evs []actors.Event
	b.ReportAllocs()
	for b.Loop() {
		q.Deliver(ev)
		evs, _ = q.Next(evs[:0])
	}
}
