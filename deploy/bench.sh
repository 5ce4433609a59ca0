#!/usr/bin/env bash
# make bench: build storyd and storyload, start the mock model upstream and
# storyd (SQLite in a temporary directory; a throwaway PostgreSQL for the
# storage scenario, started as deploy/test.sh does it), run the four load
# scenarios of docs/BENCHMARKS.md with bounded durations, run the Go
# benchmarks, and rewrite the generated part of docs/BENCHMARKS.md.
#
# BENCH_SCALE=quick shrinks every scenario for a smoke run (its figures are
# not the published ones); BENCH_DOC names another document to write;
# BENCH_ONLY="relay idle throughput storage go" picks scenarios.
set -euo pipefail
cd "$(dirname "$0")/.."

LOG_PREFIX=bench.sh
# shellcheck source=deploy/services.sh
. deploy/services.sh

SCALE=${BENCH_SCALE:-full}
ONLY=${BENCH_ONLY:-relay idle throughput storage go}
want() { case " $ONLY " in *" $1 "*) return 0 ;; esac; return 1; }
DOC=${BENCH_DOC:-docs/BENCHMARKS.md}
case "$SCALE" in
full)
	RELAY_N=1000 RELAY_S=40s SSE_S=30s LIGHT_N=200 LIGHT_S=25s
	IDLE_N=15000 IDLE_HOLD=25s
	TP_STEPS="25 50 100 200 400 700" TP_S=20s
	STORE_S=20s ACT_N=100x
	;;
quick)
	RELAY_N=100 RELAY_S=12s SSE_S=12s LIGHT_N=20 LIGHT_S=12s
	IDLE_N=1000 IDLE_HOLD=3s
	TP_STEPS="20 40" TP_S=12s
	STORE_S=12s ACT_N=10x
	;;
*)
	log "BENCH_SCALE=$SCALE: want full or quick"
	exit 2
	;;
esac

START=$(date +%s)
TMP=$(mktemp -d /tmp/storyd-bench.XXXXXX)
chmod 755 "$TMP"
RES=$TMP/results
mkdir -p "$RES"
STORYD_PID="" MOCK_PID="" PG_STARTED=""
IDLE_PIDS=()

cleanup() {
	for p in $STORYD_PID $MOCK_PID "${IDLE_PIDS[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	wait 2>/dev/null || true
	[ -n "$PG_STARTED" ] && stop_pg "$TMP/pg"
	rm -rf "$TMP"
}
trap cleanup EXIT

log "building storyd and storyload"
go build -o "$TMP/storyd" ./cmd/storyd
go build -o "$TMP/storyload" ./cmd/storyload
SL=$TMP/storyload

MOCK_PORT=$(free_port)
STORYD_PORT=$(free_port)
PPROF_PORT=$(free_port)
PG_PORT=$(free_port)
WS=ws://127.0.0.1:$STORYD_PORT/api/v1/ws
MOCK=http://127.0.0.1:$MOCK_PORT/v1

# note writes a command to commands.txt, temporary paths and ports made
# symbolic; record notes a command and runs it.
note() {
	echo "$*" | sed -e "s#$TMP/storyload#storyload#g" -e "s#$TMP#\$TMP#g" \
		-e "s#127.0.0.1:$STORYD_PORT#\$STORYD#g" -e "s#127.0.0.1:$MOCK_PORT#\$MOCK#g" \
		-e "s#-pid [0-9]*#-pid \$STORYD_PID#g" >>"$RES/commands.txt"
}
record() {
	note "$@"
	"$@"
}

wait_port() {
	for _ in $(seq 1 200); do
		(exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
		sleep 0.05
	done
	log "nothing listens on port $1"
	exit 1
}

start_mock() {
	note "$SL" mockllm -addr "127.0.0.1:$MOCK_PORT" -duration 20m "$@"
	"$SL" mockllm -addr "127.0.0.1:$MOCK_PORT" -duration 20m "$@" >>"$TMP/mock.log" 2>&1 &
	MOCK_PID=$!
	wait_port "$MOCK_PORT"
}

stop_mock() {
	kill "$MOCK_PID" 2>/dev/null || true
	wait "$MOCK_PID" 2>/dev/null || true
	MOCK_PID=""
}

# start_storyd [VAR=value…] starts storyd on a fresh SQLite directory (or
# the DATABASE_URL given) with the mock as its model.
RUN_N=0
start_storyd() {
	RUN_N=$((RUN_N + 1))
	echo "env $* storyd serve  # plus STORYD_ADDR, OPENAI_BASE_URL=\$MOCK/v1, extraction off" | sed -e "s#$TMP#\$TMP#g" >>"$RES/commands.txt"
	env DATABASE_URL= STORYD_ADDR="127.0.0.1:$STORYD_PORT" STORYD_DATA_DIR="$TMP/data-$RUN_N" \
		OPENAI_API_KEY=bench OPENAI_BASE_URL="$MOCK" \
		STORYD_EXTRACT_TURNS=1000 STORYD_EXTRACT_TOKENS=1000000 STORYD_EXTRACT_IDLE=1h \
		STORYD_LOG_LEVEL=warn STORYD_SHUTDOWN_TIMEOUT=5s STORYD_PPROF_ADDR="127.0.0.1:$PPROF_PORT" \
		"$@" "$TMP/storyd" serve >>"$TMP/storyd.log" 2>&1 &
	STORYD_PID=$!
	wait_port "$STORYD_PORT"
}

stop_storyd() {
	kill -TERM "$STORYD_PID" 2>/dev/null || true
	wait "$STORYD_PID" 2>/dev/null || true
	STORYD_PID=""
}

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

# profile NAME DELAY SECONDS takes a CPU profile of storyd in the
# background, after DELAY; wait_profile waits for it.
PROF_PID=""
profile() {
	(sleep "$2" && curl -s -o "$RES/$1.cpu.pprof" "http://127.0.0.1:$PPROF_PORT/debug/pprof/profile?seconds=$3" &&
		go tool pprof -top -nodecount=30 "$TMP/storyd" "$RES/$1.cpu.pprof" >"$RES/$1.profile.txt" 2>/dev/null) &
	PROF_PID=$!
}
wait_profile() {
	if [ -n "$PROF_PID" ]; then wait "$PROF_PID" || true; fi
	PROF_PID=""
}

{
	echo "{"
	echo "  \"date\": \"$(date -u +%Y-%m-%dT%H:%M:%SZ)\","
	echo "  \"scale\": \"$SCALE\","
	echo "  \"cores\": $(nproc),"
	echo "  \"mem_kib\": $(awk '/^MemTotal/ {print $2}' /proc/meminfo),"
	echo "  \"cpu\": \"$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)\","
	echo "  \"kernel\": \"$(uname -r)\","
	echo "  \"go\": \"$(go env GOVERSION)\","
	echo "  \"commit\": \"$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo +dirty)\","
	echo "  \"nofile\": $(ulimit -n),"
	echo "  \"load_before\": \"$(cut -d' ' -f1-3 /proc/loadavg)\""
	echo "}"
} >"$RES/machine.json"

if want relay; then
log "1/4 relay overhead: $RELAY_N streams at 20 tokens/s, WebSocket, with the direct baseline"
start_mock -tokens 100 -pace 50ms -ttft 100ms
start_storyd
profile relay 15 10
record "$SL" run -url "$WS" -mock "$MOCK" -clients "$RELAY_N" -turns 0 -ramp 5s -warmup 10s -duration "$RELAY_S" \
	-pid "$STORYD_PID" -json >"$RES/relay-ws.json"
wait_profile
stop_storyd
start_storyd
log "1/4 relay overhead: $LIGHT_N streams (a lighter load)"
record "$SL" run -url "$WS" -mock "$MOCK" -clients "$LIGHT_N" -turns 0 -ramp 2s -warmup 5s -duration "$LIGHT_S" \
	-pid "$STORYD_PID" -json >"$RES/relay-light.json"
stop_storyd
start_storyd
log "1/4 relay overhead: $RELAY_N streams over SSE"
record "$SL" run -transport sse -url "http://127.0.0.1:$STORYD_PORT" -mock "$MOCK" -clients "$RELAY_N" -turns 0 -ramp 5s \
	-warmup 10s -duration "$SSE_S" -pid "$STORYD_PID" -json >"$RES/relay-sse.json"
stop_storyd
stop_mock
fi

if want idle; then
log "2/4 idle capacity: $IDLE_N idle WebSockets, each following its own session, from two processes"
start_mock -tokens 3 -pace 0
start_storyd
sleep 1
BASE_RSS=$(rss_kib "$STORYD_PID")
HALF=$((IDLE_N / 2))
for i in 1 2; do
	args=(idle -url "$WS" -n "$HALF" -src-ips "127.0.$i.0/24" -rate 800 -hold "$IDLE_HOLD" -storms 1
		-pid "$STORYD_PID" -ready-file "$TMP/ready-$i" -duration 4m -json)
	note "$SL" "${args[@]}"
	"$SL" "${args[@]}" >"$RES/idle-$i.json" 2>>"$TMP/idle.log" &
	IDLE_PIDS+=($!)
done
for _ in $(seq 1 2400); do
	[ -f "$TMP/ready-1" ] && [ -f "$TMP/ready-2" ] && break
	sleep 0.1
done
sleep 2
HELD_RSS=$(rss_kib "$STORYD_PID")
FDS=$(ls "/proc/$STORYD_PID/fd" | wc -l)
HELD=$(($(cat "$TMP/ready-1" 2>/dev/null || echo 0) + $(cat "$TMP/ready-2" 2>/dev/null || echo 0)))
curl -s -o "$RES/idle.heap.pprof" "http://127.0.0.1:$PPROF_PORT/debug/pprof/heap" || true
curl -s "http://127.0.0.1:$PPROF_PORT/debug/pprof/heap?debug=1" | grep -E '^# (HeapAlloc|HeapInuse|Stack|Sys|NumGC) ' >"$RES/idle.memstats.txt" || true
curl -s "http://127.0.0.1:$PPROF_PORT/debug/pprof/goroutine?debug=1" | head -1 >>"$RES/idle.memstats.txt" || true
go tool pprof -top -sample_index=inuse_space -nodecount=15 "$TMP/storyd" "$RES/idle.heap.pprof" >"$RES/idle.heap.txt" 2>/dev/null || true
printf '{"base_rss_kib": %s, "held_rss_kib": %s, "held": %s, "fds": %s}\n' "$BASE_RSS" "$HELD_RSS" "$HELD" "$FDS" >"$RES/idle-rss.json"
for p in "${IDLE_PIDS[@]}"; do wait "$p" || log "an idle process failed"; done
IDLE_PIDS=()
stop_storyd
stop_mock
fi

if want throughput; then
log "3/4 throughput: sessions of 3 subscribers at 100 tokens/s each, stepping up: $TP_STEPS"
start_mock -tokens 50 -pace 10ms
for n in $TP_STEPS; do
	start_storyd
	if [ "$n" = "${TP_STEPS##* }" ]; then profile throughput 8 8; fi
	record "$SL" run -url "$WS" -mock "$MOCK" -clients "$n" -followers 2 -direct $((n / 10)) -turns 0 -ramp 3s -warmup 6s \
		-duration "$TP_S" -pid "$STORYD_PID" -json >"$RES/throughput-$n.json"
	wait_profile
	stop_storyd
done
stop_mock
fi

if want storage; then
log "4/4 storage: complete turns/s with an instant upstream, SQLite then PostgreSQL"
start_mock -tokens 20 -pace 0
start_storyd
record "$SL" run -url "$WS" -clients 50 -turns 0 -warmup 5s -duration "$STORE_S" -pid "$STORYD_PID" -json >"$RES/storage-sqlite.json"
stop_storyd
need_postgres
start_pg "$TMP/pg" "$PG_PORT" "-c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=top -c max_connections=300"
PG_STARTED=1
PGURL="postgres://postgres@127.0.0.1:$PG_PORT/postgres?sslmode=disable"
psql -q "$PGURL" -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" >/dev/null
start_storyd DATABASE_URL="$PGURL"
record "$SL" run -url "$WS" -clients 50 -turns 0 -warmup 5s -duration "$STORE_S" -pid "$STORYD_PID" -json >"$RES/storage-postgres.json"
log "4/4 storage: SQL statements per turn (pg_stat_statements over 20 sessions × 10 turns)"
stop_storyd # its last replies are stored as it stops: before the count starts
start_storyd DATABASE_URL="$PGURL"
psql -q "$PGURL" -c "SELECT pg_stat_statements_reset()" >/dev/null
record "$SL" run -url "$WS" -clients 20 -turns 10 -duration 60s -json >"$RES/statements-run.json"
psql -At -F $'\t' "$PGURL" -c "SELECT calls, regexp_replace(query, '\s+', ' ', 'g') FROM pg_stat_statements
	WHERE query NOT LIKE '%pg_stat_statements%' ORDER BY calls DESC" >"$RES/statements.tsv"
stop_storyd
log "4/4 storage: cold activation of a session with 10,000 stored messages"
STORYD_TEST_DATABASE_URL=$PGURL STORYD_REQUIRE_SERVICES=1 \
	record go test -run '^$' -bench ColdActivation -benchtime "$ACT_N" -timeout 10m ./actors >"$RES/activation.txt"
stop_mock
fi

if want go; then
log "Go benchmarks of the hot paths"
record go test -run '^$' -bench . -skip ColdActivation -benchmem -timeout 10m ./... >"$RES/gobench.txt"
fi

printf '{"load_after": "%s"}\n' "$(cut -d' ' -f1-3 /proc/loadavg)" >"$RES/load-after.json"
WALL=$(($(date +%s) - START))
"$SL" report -results "$RES" -doc "$DOC" -wall "${WALL}s"
log "wrote $DOC in ${WALL}s"
