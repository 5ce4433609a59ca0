package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/storyd/storyd/llm/llmtest"
)

// mockConfig is one mock upstream.
type mockConfig struct {
	addr             string
	tokens           int
	pace, ttft       time.Duration
	p429, p500, pcut float64
	duration         time.Duration
	seed             uint64
}

func parseMock(args []string, stderr io.Writer) (mockConfig, error) {
	var c mockConfig
	fs := newFlagSet("mockllm", stderr)
	fs.StringVar(&c.addr, "addr", "127.0.0.1:9100", "listen address (loopback only); the API is at http://ADDR/v1")
	fs.IntVar(&c.tokens, "tokens", 50, "content chunks per streamed reply")
	fs.DurationVar(&c.pace, "pace", 50*time.Millisecond, "pause between chunks (0: as fast as possible)")
	fs.DurationVar(&c.ttft, "ttft", 0, "pause before the first chunk (0: -pace)")
	fs.Float64Var(&c.p429, "p429", 0, "probability that a request is answered 429 rate limited")
	fs.Float64Var(&c.p500, "p500", 0, "probability that a request is answered 500")
	fs.Float64Var(&c.pcut, "pcut", 0, "probability that a stream is cut (connection closed) half way")
	fs.DurationVar(&c.duration, "duration", 30*time.Minute, "stop after this long")
	fs.Uint64Var(&c.seed, "seed", 1, "seed of the fault injection")
	if err := parseFlags(fs, args); err != nil {
		return c, err
	}
	var ck checks
	ck.add(loopbackAddr("addr", c.addr))
	ck.positive("tokens", c.tokens)
	ck.atMost("tokens", c.tokens, 100_000)
	ck.duration("pace", c.pace, 0, 10*time.Second)
	ck.duration("ttft", c.ttft, 0, time.Minute)
	ck.probability("p429", c.p429)
	ck.probability("p500", c.p500)
	ck.probability("pcut", c.pcut)
	if c.p429+c.p500+c.pcut > 1 {
		ck.add(fmt.Errorf("-p429 + -p500 + -pcut = %g: want at most 1", c.p429+c.p500+c.pcut))
	}
	ck.duration("duration", c.duration, time.Second, 24*time.Hour)
	return c, ck.err()
}

// mockResponder answers every request of the mock: stamped chunks at the
// configured pace, or an injected fault. Non-streaming requests (storyd's
// dossier extraction) get an empty JSON object, which extracts nothing.
type mockResponder struct {
	c                    mockConfig
	mu                   sync.Mutex
	rng                  *rand.Rand
	ok, r429, r500, cuts atomic.Int64
}

func newMockResponder(c mockConfig) *mockResponder {
	return &mockResponder{c: c, rng: rand.New(rand.NewPCG(c.seed, c.seed^0x5eed))}
}

func (m *mockResponder) respond(req llmtest.Request) llmtest.Response {
	if !req.Stream {
		return llmtest.Response{Tokens: []string{"{}"}}
	}
	m.mu.Lock()
	r := m.rng.Float64()
	m.mu.Unlock()
	c := m.c
	switch {
	case r < c.p429:
		m.r429.Add(1)
		return llmtest.Response{Status: http.StatusTooManyRequests, RetryAfter: "1"}
	case r < c.p429+c.p500:
		m.r500.Add(1)
		return llmtest.Response{Status: http.StatusInternalServerError}
	}
	resp := llmtest.Response{Tokens: make([]string, c.tokens), Stamp: true, Delay: c.pace, FirstDelay: c.ttft}
	if r < c.p429+c.p500+c.pcut {
		m.cuts.Add(1)
		resp.CutAfter = max(1, c.tokens/2)
	} else {
		m.ok.Add(1)
	}
	return resp
}

func runMock(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c, err := parseMock(args, stderr)
	if err != nil {
		return err
	}
	srv, err := llmtest.Listen(c.addr)
	if err != nil {
		return err
	}
	m := newMockResponder(c)
	srv.DiscardRequests()
	srv.SetResponder(m.respond)
	fmt.Fprintf(stdout, "storyload mockllm: serving %s (tokens %d, pace %s, ttft %s, p429 %g, p500 %g, pcut %g) for at most %s\n",
		srv.URL(), c.tokens, c.pace, c.ttft, c.p429, c.p500, c.pcut, c.duration)
	ctx, cancel := context.WithTimeout(ctx, c.duration)
	defer cancel()
	<-ctx.Done()
	srv.Close()
	fmt.Fprintf(stdout, "storyload mockllm: streams %d, 429s %d, 500s %d, cut %d\n", m.ok.Load(), m.r429.Load(), m.r500.Load(), m.cuts.Load())
	return nil
}
