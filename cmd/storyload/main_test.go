package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/storyd/storyd/llm/llmtest"
)

// TestArguments checks that every subcommand refuses bad arguments with a
// message naming the flag, and never targets a non-loopback address.
func TestArguments(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string // in the error
	}{
		{"unknown command", []string{"explode"}, `unknown command "explode"`},
		{"remote url", []string{"run", "-url", "ws://example.com/api/v1/ws"}, "not a loopback address"},
		{"remote url, old flags", []string{"-url", "ws://10.0.0.1:8000/api/v1/ws", "-clients", "2"}, "not a loopback address"},
		{"bad scheme", []string{"run", "-url", "ftp://127.0.0.1/"}, "want a"},
		{"no clients", []string{"run", "-clients", "0"}, "-clients 0: want at least 1"},
		{"negative followers", []string{"run", "-followers", "-1"}, "-followers -1"},
		{"bad transport", []string{"run", "-transport", "carrier-pigeon"}, "-transport"},
		{"endless", []string{"run", "-duration", "0s"}, "-duration 0s"},
		{"negative rate", []string{"run", "-rate", "-3"}, "-rate -3"},
		{"too long", []string{"run", "-duration", "100h"}, "-duration 100h0m0s"},
		{"direct without mock", []string{"run", "-direct", "5"}, "-direct needs -mock"},
		{"remote mock", []string{"run", "-mock", "http://192.168.1.1:9100/v1"}, "-mock"},
		{"too many sockets", []string{"run", "-clients", "10000", "-followers", "3"}, "several storyload processes"},
		{"warmup too long", []string{"run", "-duration", "10s", "-warmup", "10s"}, "-warmup"},
		{"no such pid", []string{"run", "-pid", "999999999"}, "no such local process"},
		{"stray argument", []string{"run", "now"}, `unexpected argument "now"`},
		{"unknown flag", []string{"run", "-turbo"}, "flag provided but not defined"},
		{"mock remote addr", []string{"mockllm", "-addr", "0.0.0.0:9100"}, "not a loopback address"},
		{"mock no port", []string{"mockllm", "-addr", "127.0.0.1"}, "want host:port"},
		{"mock no tokens", []string{"mockllm", "-tokens", "0"}, "-tokens 0"},
		{"mock bad probability", []string{"mockllm", "-p429", "1.5"}, "-p429 1.5"},
		{"mock faults over 1", []string{"mockllm", "-p429", "0.6", "-p500", "0.6"}, "want at most 1"},
		{"mock negative pace", []string{"mockllm", "-pace", "-1s"}, "-pace"},
		{"idle too many", []string{"idle", "-n", "20000"}, "-n 20000: want at most 18000"},
		{"idle src outside loopback", []string{"idle", "-src-ips", "10.0.0.0/24"}, "127.0.0.0/8"},
		{"idle bad src", []string{"idle", "-src-ips", "lots"}, "-src-ips"},
		{"idle http url", []string{"idle", "-url", "http://127.0.0.1:8000/"}, "want a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := run(context.Background(), tt.args, &out, &errOut)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("run(%q) = %v, want an error containing %q", tt.args, err, tt.want)
			}
		})
	}
}

func TestSrcAddrs(t *testing.T) {
	ips, err := srcAddrs("127.0.1.0/24")
	if err != nil {
		t.Fatal(err)
	}
	if len(ips) != 254 || ips[0].String() != "127.0.1.1" || ips[253].String() != "127.0.1.254" {
		t.Errorf("got %d addresses from %v to %v", len(ips), ips[0], ips[len(ips)-1])
	}
	one, err := srcAddrs("127.0.0.9")
	if err != nil || len(one) != 1 || one[0].String() != "127.0.0.9" {
		t.Errorf("single address: %v %v", one, err)
	}
}

func TestHistQuantiles(t *testing.T) {
	var h hist
	for i := 1; i <= 1000; i++ {
		h.add(time.Duration(i) * time.Microsecond)
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Microsecond}, {0.99, 990 * time.Microsecond}} {
		got := h.quantile(c.q)
		if d := got - c.want; d < -c.want/50 || d > c.want/50 {
			t.Errorf("quantile(%g) = %v, want %v within 2%%", c.q, got, c.want)
		}
	}
	if h.summary().Max != 1000 {
		t.Errorf("max %v µs, want 1000", h.summary().Max)
	}
	for i := 0; i < len(h.counts); i++ {
		if histIndex(histLower(i)) != i {
			t.Fatalf("bucket %d: lower bound %d maps to %d", i, histLower(i), histIndex(histLower(i)))
		}
	}
}

// TestMockFaults checks the mock's answers: stamped streams, and 429, 500
// and cut streams in the proportions asked for.
func TestMockFaults(t *testing.T) {
	c, err := parseMock([]string{"-tokens", "4", "-pace", "0", "-p429", "0.25", "-p500", "0.25", "-pcut", "0.25"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	m := newMockResponder(c)
	srv := llmtest.NewServer(t)
	srv.SetResponder(m.respond)
	const n = 400
	statuses := map[int]int{}
	cut, stamped := 0, 0
	for i := 0; i < n; i++ {
		resp, err := http.Post(srv.URL()+"/chat/completions", "application/json",
			strings.NewReader(`{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}`))
		if err != nil {
			t.Fatal(err)
		}
		body, rerr := io.ReadAll(resp.Body)
		resp.Body.Close()
		statuses[resp.StatusCode]++
		if resp.StatusCode == http.StatusOK {
			if rerr != nil || !strings.Contains(string(body), "[DONE]") {
				cut++
			}
			stamped += len(llmtest.ParseStamps(nil, string(body)))
		}
	}
	for _, s := range []int{200, 429, 500} {
		if statuses[s] < n/8 {
			t.Errorf("status %d answered %d times of %d: %v", s, statuses[s], n, statuses)
		}
	}
	if cut < n/8 || cut >= statuses[200] {
		t.Errorf("%d of %d streams cut, want about half", cut, statuses[200])
	}
	if stamped == 0 {
		t.Error("no stamped chunk")
	}
	if m.r429.Load()+m.r500.Load()+m.cuts.Load()+m.ok.Load() != n {
		t.Errorf("counters do not add up to %d", n)
	}
}
