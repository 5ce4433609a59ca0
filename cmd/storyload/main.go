// Command storyload measures storyd: a mock model upstream, chat load over
// WebSocket or SSE with the direct baseline measured in the same run, and
// idle connections held by the thousand.
//
//	storyload mockllm -addr 127.0.0.1:9100 -tokens 100 -pace 50ms -ttft 200ms
//	storyload run -url ws://127.0.0.1:8000/api/v1/ws -mock http://127.0.0.1:9100/v1 -clients 1000 -duration 30s
//	storyload idle -url ws://127.0.0.1:8000/api/v1/ws -n 7500 -src-ips 127.0.1.0/24 -hold 20s
//
// Without a subcommand, storyload runs `run` (the old flags -url -clients
// -followers -turns -duration still work). Every run is bounded by
// -duration, and only loopback addresses are accepted: storyload loads this
// machine and nothing else. See docs/BENCHMARKS.md for what it measures.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "storyload:", err)
		os.Exit(2)
	}
}

const usage = `usage: storyload [run] [flags]   chat load against storyd (default)
       storyload mockllm [flags]  an OpenAI-compatible mock upstream
       storyload idle [flags]     hold idle WebSocket connections
       storyload report [flags]   render deploy/bench.sh results into docs/BENCHMARKS.md
Run "storyload <command> -h" for the flags of each.`

// run dispatches to a subcommand.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cmd := "run"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "run":
		return runLoad(ctx, args, stdout, stderr)
	case "mockllm":
		return runMock(ctx, args, stdout, stderr)
	case "idle":
		return runIdle(ctx, args, stdout, stderr)
	case "report":
		return runReport(args, stdout, stderr)
	case "help":
		fmt.Fprintln(stdout, usage)
		return nil
	}
	return fmt.Errorf("unknown command %q\n%s", cmd, usage)
}
