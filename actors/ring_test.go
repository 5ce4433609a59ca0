package actors

import "testing"

// TestEventRingGrows checks that a ring that grows on demand keeps the
// same contract as a full-sized one: the newest events in order, and it
// knows what it forgot.
func TestEventRingGrows(t *testing.T) {
	for _, capacity := range []int{1, 16, 100, 4096} {
		r := newEventRing(capacity, 0, 0)
		if len(r.buf) != 0 {
			t.Fatalf("capacity %d: new ring holds a buffer of %d", capacity, len(r.buf))
		}
		const n = 250
		for seq := int64(1); seq <= n; seq++ {
			r.add(Event{Type: EventText, Seq: seq})
			if len(r.buf) > capacity {
				t.Fatalf("capacity %d: buffer grew to %d", capacity, len(r.buf))
			}
		}
		held := min(capacity, n)
		evs, ok := r.since(int64(n - held))
		if !ok || len(evs) != held {
			t.Fatalf("capacity %d: since(%d) = %d events, ok %v; want %d", capacity, n-held, len(evs), ok, held)
		}
		for i, ev := range evs {
			if ev.Seq != int64(n-held+1+i) {
				t.Fatalf("capacity %d: event %d has seq %d", capacity, i, ev.Seq)
			}
		}
		if _, ok := r.since(int64(n - held - 1)); ok && held < n {
			t.Errorf("capacity %d: since a forgotten seq reported ok", capacity)
		}
	}
}

// BenchmarkRingAdd is the ring's share of every published event.
func BenchmarkRingAdd(b *testing.B) {
	r := newEventRing(4096, 0, 0)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		r.add(Event{Type: EventText, Seq: int64(i + 1), Content: "tok "})
	}
}
