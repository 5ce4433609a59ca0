package main

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// hist is a lock-free latency histogram: exact below 1024 ns, then 64
// buckets per power of two (under 1.6 % error), up to about 18 minutes.
type hist struct {
	counts [1024 + 31*64]atomic.Int64
	n      atomic.Int64
	max    atomic.Int64
}

func histIndex(ns int64) int {
	if ns < 1024 {
		return int(ns)
	}
	e := bits.Len64(uint64(ns)) - 1 // >= 10
	if e > 40 {
		e, ns = 40, 1<<41-1
	}
	sub := int(ns>>(e-6)) & 63
	return 1024 + (e-10)*64 + sub
}

// histLower is the lowest value of bucket i.
func histLower(i int) int64 {
	if i < 1024 {
		return int64(i)
	}
	e, sub := (i-1024)/64+10, (i-1024)%64
	return int64(64+sub) << (e - 6)
}

func (h *hist) add(d time.Duration) {
	ns := int64(d)
	if ns < 0 {
		ns = 0
	}
	h.counts[histIndex(ns)].Add(1)
	h.n.Add(1)
	for {
		m := h.max.Load()
		if ns <= m || h.max.CompareAndSwap(m, ns) {
			break
		}
	}
}

// quantile returns the q-quantile (0..1), the lower bound of its bucket
// (the exact value below 1024 ns).
func (h *hist) quantile(q float64) time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	rank := int64(q*float64(n-1)) + 1
	var seen int64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			return time.Duration(histLower(i))
		}
	}
	return time.Duration(h.max.Load())
}

// summary is the JSON form of a histogram, in microseconds.
type summary struct {
	Count int64   `json:"count"`
	P50   float64 `json:"p50_us"`
	P90   float64 `json:"p90_us"`
	P99   float64 `json:"p99_us"`
	Max   float64 `json:"max_us"`
}

func (h *hist) summary() summary {
	us := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
	return summary{Count: h.n.Load(), P50: us(h.quantile(0.5)), P90: us(h.quantile(0.9)),
		P99: us(h.quantile(0.99)), Max: us(time.Duration(h.max.Load()))}
}
