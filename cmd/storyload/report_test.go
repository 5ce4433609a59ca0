package main

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReport renders a results directory like deploy/bench.sh's into a
// document, keeping the hand-written text around the generated block.
func TestReport(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, v any) {
		t.Helper()
		var b []byte
		if s, ok := v.(string); ok {
			b = []byte(s)
		} else {
			b, _ = json.Marshal(v)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("machine.json", `{"date":"2026-12-01T20:00:00Z","scale":"quick","cores":2,"mem_kib":1048576,"cpu":"x","kernel":"k","go":"go1.26","commit":"abc","nofile":20000,"load_before":"0.1 0.2 0.3"}`)
	relay := loadReport{Transport: "ws", Clients: 10, TokensPerS: 200, Relay: summary{Count: 5, P50: 300, P99: 900},
		Baseline: &baselineReport{Relay: summary{P50: 100, P99: 400}}, Added: &added{P50: 200, P99: 500}}
	write("relay-ws.json", relay)
	write("throughput-20.json", loadReport{Clients: 20, Followers: 2, TokensPerS: 5000, Relay: summary{Count: 9, P99: 2000}})
	write("idle-rss.json", `{"base_rss_kib": 1000, "held_rss_kib": 3000, "held": 100, "fds": 110}`)
	write("idle-1.json", idleReport{Requested: 100, Held: 100})
	write("statements-run.json", loadReport{Clients: 2, Turns: 4})
	write("statements.tsv", "8\tWITH ins AS (INSERT …)\n4\tSELECT 1 | 2\n")
	write("activation.txt", "BenchmarkColdActivation/store=sqlite-2  10  4000000 ns/op  9.0 max-ms  4.0 p50-ms  8.0 p99-ms\n")
	write("gobench.txt", "pkg: x\nBenchmarkX-2 1 2 ns/op\nPASS\n")
	write("commands.txt", "storyload run -url ws://$STORYD/api/v1/ws")

	doc := filepath.Join(t.TempDir(), "BENCHMARKS.md")
	if err := os.WriteFile(doc, []byte("# B\n\nhand-written\n\n"+beginGenerated+"\nold\n"+endGenerated+"\nafter\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := run(t.Context(), []string{"report", "-results", dir, "-doc", doc, "-wall", "12s"}, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(doc)
	out := string(b)
	for _, want := range []string{
		"hand-written", "after", "| make bench wall time | 12s (scale quick) |",
		"**200 µs / 500 µs**", // added latency
		"**20.0 KiB**",        // (3000 − 1000) / 100
		"Most tokens/s delivered with p99 ≤ 10 ms: **5000**",
		"**3.00 statements per turn**", // 12 / 4
		"`SELECT 1 \\| 2`",             // escaped for the table
		"| sqlite | 4.00 ms | 8.00 ms | 9.00 ms | **met** |",
		"BenchmarkX-2",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if strings.Contains(out, "\nold\n") {
		t.Error("the old generated block survived")
	}

	if err := os.WriteFile(doc, []byte("# no markers\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := run(t.Context(), []string{"report", "-results", dir, "-doc", doc}, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "no generated block") {
		t.Errorf("document without markers: %v", err)
	}
	if err := run(t.Context(), []string{"report"}, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "-results") {
		t.Errorf("no -results: %v", err)
	}
}
