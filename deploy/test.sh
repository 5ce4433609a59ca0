#!/usr/bin/env bash
# make test: start a throwaway PostgreSQL and Redis on free loopback ports in a
# temporary directory (installing Debian's postgresql, redis-server and, for
# the web client's browser tests, chromium when missing), run every Go test
# with -race against them, then stop them.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "test.sh: $*" >&2; }

apt_install() {
	if [ "$(id -u)" != 0 ]; then
		log "missing $*; install it (apt-get install $*) or run as root"
		exit 1
	fi
	log "installing $* with apt-get"
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -q --no-install-recommends "$@" >/dev/null 2>&1 || {
		apt-get update -q >/dev/null
		apt-get install -y -q --no-install-recommends "$@" >/dev/null
	}
}

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

[ -n "$(pg_bin)" ] && [ -x "$(pg_bin)/initdb" ] || apt_install postgresql
command -v redis-server >/dev/null || apt_install redis-server
# The web client's browser tests (cmd/storyd) drive headless Chromium.
[ -x /usr/bin/chromium ] || apt_install chromium
PGBIN=$(pg_bin)

# free_port prints a loopback TCP port nobody listens on.
free_port() {
	local p
	for _ in $(seq 1 100); do
		p=$(( (RANDOM % 20000) + 30000 ))
		if ! (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null; then
			echo "$p"
			return
		fi
	done
	log "no free port found"
	exit 1
}

TMP=$(mktemp -d /tmp/storyd-test.XXXXXX)
chmod 755 "$TMP"
PG_PORT=$(free_port)
REDIS_PORT=$(free_port)
while [ "$REDIS_PORT" = "$PG_PORT" ]; do REDIS_PORT=$(free_port); done

# PostgreSQL refuses to run as root: run it as the postgres user when root.
as_pg() {
	if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

cleanup() {
	as_pg "$PGBIN/pg_ctl" -D "$TMP/pg/data" -m immediate -w stop >/dev/null 2>&1 || true
	if [ -f "$TMP/redis.pid" ]; then kill "$(cat "$TMP/redis.pid")" 2>/dev/null || true; fi
	rm -rf "$TMP"
}
trap cleanup EXIT

mkdir -p "$TMP/pg"
[ "$(id -u)" = 0 ] && chown postgres "$TMP/pg"
as_pg "$PGBIN/initdb" -D "$TMP/pg/data" -A trust -U postgres -E UTF8 --no-locale >"$TMP/initdb.log" 2>&1 || {
	cat "$TMP/initdb.log" >&2
	exit 1
}
as_pg "$PGBIN/pg_ctl" -D "$TMP/pg/data" -w -t 60 -l "$TMP/pg/log" \
	-o "-p $PG_PORT -k $TMP/pg -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
	start >/dev/null || {
	cat "$TMP/pg/log" >&2
	exit 1
}
log "PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PG_PORT"

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
