#!/usr/bin/env bash
# make test: start a throwaway PostgreSQL and Redis on free loopback ports in a
# temporary directory (installing Debian's postgresql, redis-server and, for
# the web client's browser tests, chromium when missing), run every Go test
# with -race against them, then stop them.
set -euo pipefail
cd "$(dirname "$0")/.."

LOG_PREFIX=test.sh
# shellcheck source=deploy/services.sh
. deploy/services.sh

need_postgres
command -v redis-server >/dev/null || apt_install redis-server
# The web client's browser tests (cmd/storyd) drive headless Chromium.
[ -x /usr/bin/chromium ] || apt_install chromium

TMP=$(mktemp -d /tmp/storyd-test.XXXXXX)
chmod 755 "$TMP"
PG_PORT=$(free_port)
REDIS_PORT=$(free_port)
while [ "$REDIS_PORT" = "$PG_PORT" ]; do REDIS_PORT=$(free_port); done

cleanup() {
	stop_pg "$TMP/pg"
	if [ -f "$TMP/redis.pid" ]; then kill "$(cat "$TMP/redis.pid")" 2>/dev/null || true; fi
	rm -rf "$TMP"
}
trap cleanup EXIT

start_pg "$TMP/pg" "$PG_PORT"

redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
	--daemonize yes --dir "$TMP" --pidfile "$TMP/redis.pid" --logfile "$TMP/redis.log"
for _ in $(seq 1 100); do
	(exec 3<>/dev/tcp/127.0.0.1/$REDIS_PORT) 2>/dev/null && break
	sleep 0.1
done
log "Redis $(redis-server --version | awk '{print $3}' | cut -d= -f2) on 127.0.0.1:$REDIS_PORT"

export STORYD_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres?sslmode=disable"
export STORYD_TEST_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
export STORYD_REQUIRE_SERVICES=1

go test -race -count=1 -timeout 20m ./... "$@"
