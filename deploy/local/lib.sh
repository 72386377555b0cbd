# Shared by up.sh, down.sh and status.sh; sourced, not run.
#
# The state directory holds, for each process up.sh started, NAME.pid,
# NAME.port and NAME.comm (the process's command name, so that a pid
# reused by another program is never signalled), and its log in
# logs/NAME.log. Data lives under data/ and survives down.sh.

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
STATE_DIR="${MAMBA_LOCAL_DIR:-$repo_root/.mamba-local}"

gobin="$(go env GOBIN 2>/dev/null || true)"
[ -n "$gobin" ] || gobin="$(go env GOPATH 2>/dev/null || echo "$HOME/go")/bin"

# find_bin NAME prints the path of NAME: on PATH, else in Go's bin dir.
find_bin() {
	if command -v "$1" >/dev/null 2>&1; then
		command -v "$1"
	elif [ -x "$gobin/$1" ]; then
		echo "$gobin/$1"
	else
		return 1
	fi
}

# names prints the names of the processes with a pid file, nodes first
# and stores last, so that nodes stop before what they write to.
names() {
	local f kind
	for kind in node minio redis; do
		for f in "$STATE_DIR/$kind"-*.pid; do
			[ -e "$f" ] || continue
			basename "$f" .pid
		done | sort -t- -k2,2V
	done
}

# alive NAME succeeds when NAME's pid runs the program up.sh started.
alive() {
	local pid comm
	pid="$(cat "$STATE_DIR/$1.pid" 2>/dev/null)" || return 1
	[ -n "$pid" ] || return 1
	kill -0 "$pid" 2>/dev/null || return 1
	comm="$(ps -p "$pid" -o comm= 2>/dev/null)" || return 1
	[ "$comm" = "$(cat "$STATE_DIR/$1.comm" 2>/dev/null)" ]
}

# ready NAME succeeds when NAME answers on its port.
ready() {
	local port
	port="$(cat "$STATE_DIR/$1.port" 2>/dev/null)" || return 1
	case "$1" in
	node-*) curl -fs -o /dev/null --max-time 2 "http://127.0.0.1:$port/readyz" ;;
	minio-*) curl -fs -o /dev/null --max-time 2 "http://127.0.0.1:$port/minio/health/live" ;;
	redis-*) [ "$(redis_ping "$port")" = PONG ] ;;
	*) return 1 ;;
	esac
}

redis_ping() {
	if command -v redis-cli >/dev/null 2>&1; then
		redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null
	else
		# RESP over bash's /dev/tcp, for hosts without redis-cli.
		(exec 3<>"/dev/tcp/127.0.0.1/$1" && printf 'PING\r\n' >&3 && head -c 5 <&3 | tr -d '+\r\n') 2>/dev/null
	fi
}
