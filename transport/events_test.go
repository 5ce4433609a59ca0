package transport

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/storyd/storyd/actors"
)

var benchText = actors.Event{Type: actors.EventText, SessionID: "0b6a9c1e-4f55-4a53-9b9c-0c6a1a8f2c11", Seq: 4242,
	TurnID: "5c1e0b6a-4f55-4a53-9b9c-0c6a1a8f2c11", Content: "w1764612345678901234 "}

// BenchmarkEncodeEvent is the JSON encoding of one text event, what every
// token costs a transport.
func BenchmarkEncodeEvent(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = encodeEvent(benchText)
	}
}

// BenchmarkEncodeFanout is the encoding work of one token delivered to n
// subscribers of a session: each subscriber's writer asks for the event's
// bytes. Before the shared memo (actors.Wire) and the hand-written text
// encoding, each subscriber encoded with encoding/json: on the 2-core
// development machine 1 subscriber cost about 780 ns and 2 allocations, 3
// about 2.5 µs and 6, 10 about 6 µs and 20.
func BenchmarkEncodeFanout(b *testing.B) {
	for _, n := range []int{1, 3, 10} {
		b.Run(fmt.Sprintf("subscribers=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				ev := benchText
				if n > 1 { // as the session actor does
					ev.Wire = actors.NewWire()
				}
				for range n {
					_ = encodeEvent(ev)
				}
			}
		})
	}
}

func TestEncodeEventMatchesJSON(t *testing.T) {
	contents := []string{"", "plain", "quote \" backslash \\ slash /", "<b>&amp;</b>", "tab\tnew\nline\r",
		"\x00\x01\x1f\x7f", "é 中文 🎬", "\u2028\u2029", "bad \xff utf8 \xc3", "w1764612345678901234 "}
	for _, c := range contents {
		ev := benchText
		ev.Content = c
		got := encodeEvent(ev)
		want, _ := json.Marshal(wireEvent{Type: "text", SessionID: ev.SessionID, Seq: ev.Seq, Content: c})
		if string(got) != string(want) {
			t.Errorf("content %q:\n got %s\nwant %s", c, got, want)
		}
		ev.Wire = actors.NewWire()
		if a, b := encodeEvent(ev), encodeEvent(ev); string(a) != string(want) || string(b) != string(want) {
			t.Errorf("content %q, shared: %s then %s, want %s", c, a, b, want)
		}
	}
}
