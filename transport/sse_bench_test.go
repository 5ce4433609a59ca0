package transport

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"testing"

	"github.com/storyd/storyd/actors"
)

// BenchmarkSSECoalescing is the write side of an SSE stream that fell
// behind: streamSSE encodes what is queued (up to maxSSEBatch events) into
// one buffer and writes it with one syscall, instead of one write per event.
// The events go over a real loopback TCP connection to a reader that
// discards them; ns/op is per event.
func BenchmarkSSECoalescing(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(io.Discard, c); c.Close() }()
		}
	}()
	for _, batch := range []int{1, 16, maxSSEBatch} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			conn, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Close()
			evs := make([]actors.Event, batch)
			for i := range evs {
				evs[i] = actors.Event{Type: actors.EventText, SessionID: "01a2b3c4-0000-7000-8000-000000000000", Seq: int64(i + 1), Content: "word "}
			}
			var buf bytes.Buffer
			b.ReportAllocs()
			b.ResetTimer()
			for sent := 0; sent < b.N; sent += batch {
				buf.Reset()
				for _, ev := range evs {
					writeSSE(&buf, ev)
				}
				if _, err := conn.Write(buf.Bytes()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
