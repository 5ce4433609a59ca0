# shellcheck shell=bash
# Functions shared by deploy/test.sh and deploy/bench.sh: install Debian's
# postgresql and redis-server when missing (apt-get, as root), find free
# loopback ports, and start or stop a throwaway PostgreSQL. Source it after
# setting LOG_PREFIX.

log() { echo "${LOG_PREFIX:-deploy}: $*" >&2; }

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

# need_postgres installs PostgreSQL when missing and sets PGBIN.
need_postgres() {
	[ -n "$(pg_bin)" ] && [ -x "$(pg_bin)/initdb" ] || apt_install postgresql
	PGBIN=$(pg_bin)
}

# free_port prints a loopback TCP port nobody listens on, below the
# ephemeral range when it can, so that no client socket takes it between a
# server's stop and its restart.
free_port() {
	local p lo base=30000 span=20000
	lo=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 0)
	if [ "${lo:-0}" -gt 21000 ]; then base=20000 span=$((lo - 20000)); fi
	for _ in $(seq 1 100); do
		p=$(( (RANDOM % span) + base ))
		if ! (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null; then
			echo "$p"
			return
		fi
	done
	log "no free port found"
	exit 1
}

# PostgreSQL refuses to run as root: run it as the postgres user when root.
as_pg() {
	if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# start_pg DIR PORT [postgres options…] initializes a cluster in DIR/data
# (socket in DIR, log in DIR/log) and starts it on 127.0.0.1:PORT, tuned
# for throwaway data (no fsync).
start_pg() {
	local dir=$1 port=$2
	shift 2
	mkdir -p "$dir"
	chmod 755 "$(dirname "$dir")"
	[ "$(id -u)" = 0 ] && chown postgres "$dir"
	as_pg "$PGBIN/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 --no-locale >"$dir/initdb.log" 2>&1 || {
		cat "$dir/initdb.log" >&2
		exit 1
	}
	as_pg "$PGBIN/pg_ctl" -D "$dir/data" -w -t 60 -l "$dir/log" \
		-o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300 $*" \
		start >/dev/null || {
		cat "$dir/log" >&2
		exit 1
	}
	log "PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$port"
}

# stop_pg DIR stops the cluster start_pg started in DIR.
stop_pg() {
	as_pg "$PGBIN/pg_ctl" -D "$1/data" -m immediate -w stop >/dev/null 2>&1 || true
}
