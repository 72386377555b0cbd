#!/usr/bin/env bash
# Starts a local Mamba cluster on loopback: MinIO (with the bucket), Redis
# with AOF (appendfsync always), and N `mamba serve` nodes on ports 8080,
# 8081, ... Installs what is missing with install-deps.sh first. With --dr
# it also starts region B (a second MinIO and Redis) and sets up bucket
# replication from A to B with deploy/replication/minio-setup.sh.
#
#   deploy/local/up.sh [--nodes N] [--dr]
#
# Pids, ports and logs go to the state directory ($MAMBA_LOCAL_DIR,
# default .mamba-local at the top of the repository); data goes to its
# data/ and is kept by down.sh. up.sh refuses to start while a process it
# started earlier still runs; stop it with down.sh, see it with status.sh.
#
# Ports: nodes 8080+i, MinIO A 9000 (console 9001), Redis A 6379, and with
# --dr MinIO B 9100 (console 9101), Redis B 6380. MinIO's user is mamba,
# its password mamba-secret.
set -Eeuo pipefail
. "$(dirname "$0")/lib.sh"

nodes=1
dr=0
while [ $# -gt 0 ]; do
	case "$1" in
	--nodes) nodes="${2:?--nodes needs a number}"; shift 2 ;;
	--nodes=*) nodes="${1#--nodes=}"; shift ;;
	--dr) dr=1; shift ;;
	-h | --help) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "unknown argument $1 (see --help)" >&2; exit 2 ;;
	esac
done
case "$nodes" in '' | *[!0-9]*) echo "--nodes $nodes: want a number from 1 to 20" >&2; exit 2 ;; esac
if [ "$nodes" -lt 1 ] || [ "$nodes" -gt 20 ]; then echo "--nodes $nodes: want a number from 1 to 20" >&2; exit 2; fi

MINIO_USER=mamba
MINIO_PASSWORD=mamba-secret
BUCKET=mamba

mkdir -p "$STATE_DIR/logs" "$STATE_DIR/data"
for name in $(names); do
	if alive "$name"; then
		echo "already up: $name runs (pid $(cat "$STATE_DIR/$name.pid")); see deploy/local/status.sh, stop with deploy/local/down.sh" >&2
		exit 1
	fi
done
# Left over from processes that died: forget them.
for name in $(names); do rm -f "$STATE_DIR/$name".{pid,port,comm}; done

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
ports=(9000 9001 6379)
[ "$dr" = 1 ] && ports+=(9100 9101 6380)
for i in $(seq 0 $((nodes - 1))); do ports+=($((8080 + i))); done
for p in "${ports[@]}"; do
	if ! port_free "$p"; then
		echo "port $p on 127.0.0.1 is in use by something up.sh did not start" >&2
		exit 1
	fi
done

echo "== dependencies"
bash "$repo_root/deploy/local/install-deps.sh" | sed 's/^/   /'
REDIS="$(find_bin redis-server)"
MINIO="$(find_bin minio)"
MC="$(find_bin mc)"

# If anything below fails, stop what was started.
trap 'echo "up.sh failed; stopping what it started" >&2; "$repo_root/deploy/local/down.sh" >&2 || true' ERR

# start NAME PORT CMD... runs CMD in the background with its log in
# logs/NAME.log and records its pid, port and command name.
start() {
	local name="$1" port="$2"
	shift 2
	nohup "$@" >"$STATE_DIR/logs/$name.log" 2>&1 </dev/null &
	local pid=$!
	echo "$pid" >"$STATE_DIR/$name.pid"
	echo "$port" >"$STATE_DIR/$name.port"
	# The command name as ps shows it (truncated to 15 characters).
	basename "$1" | cut -c1-15 >"$STATE_DIR/$name.comm"
	echo "   $name: pid $pid, port $port, log $STATE_DIR/logs/$name.log"
}

# wait_ready NAME [SECONDS] waits until NAME answers, or fails with its log.
wait_ready() {
	local name="$1" deadline=$((SECONDS + ${2:-60}))
	until ready "$name"; do
		if ! alive "$name" || [ "$SECONDS" -ge "$deadline" ]; then
			echo "$name did not become ready; the end of its log:" >&2
			tail -n 20 "$STATE_DIR/logs/$name.log" >&2
			return 1
		fi
		sleep 0.2
	done
}

start_stores() { # REGION MINIO_PORT REDIS_PORT
	local r="$1" mport="$2" rport="$3"
	mkdir -p "$STATE_DIR/data/minio-$r" "$STATE_DIR/data/redis-$r"
	start "redis-$r" "$rport" "$REDIS" --bind 127.0.0.1 --port "$rport" --protected-mode yes \
		--dir "$STATE_DIR/data/redis-$r" --appendonly yes --appendfsync always --save ""
	MINIO_ROOT_USER=$MINIO_USER MINIO_ROOT_PASSWORD=$MINIO_PASSWORD MINIO_BROWSER=off \
		start "minio-$r" "$mport" "$MINIO" server --quiet --address "127.0.0.1:$mport" \
		--console-address "127.0.0.1:$((mport + 1))" "$STATE_DIR/data/minio-$r"
	wait_ready "redis-$r"
	wait_ready "minio-$r"
	MC_CONFIG_DIR="$STATE_DIR/mc" "$MC" alias set "$r" "http://127.0.0.1:$mport" "$MINIO_USER" "$MINIO_PASSWORD" >/dev/null
	MC_CONFIG_DIR="$STATE_DIR/mc" "$MC" mb --ignore-existing "$r/$BUCKET" | sed 's/^/   /'
}

echo "== region A: MinIO and Redis"
start_stores a 9000 6379
if [ "$dr" = 1 ]; then
	echo "== region B: MinIO and Redis"
	start_stores b 9100 6380
	echo "== replication A -> B"
	A_ENDPOINT=http://127.0.0.1:9000 A_ACCESS_KEY=$MINIO_USER A_SECRET_KEY=$MINIO_PASSWORD A_BUCKET=$BUCKET \
		B_ENDPOINT=http://127.0.0.1:9100 B_ACCESS_KEY=$MINIO_USER B_SECRET_KEY=$MINIO_PASSWORD B_BUCKET=$BUCKET \
		MC="$MC" bash "$repo_root/deploy/replication/minio-setup.sh" 2>&1 | sed 's/^/   /'
fi

echo "== building mamba"
mkdir -p "$STATE_DIR/bin"
(cd "$repo_root" && go build -o "$STATE_DIR/bin/mamba" ./cmd/mamba)

echo "== $nodes mamba node(s)"
for i in $(seq 0 $((nodes - 1))); do
	AWS_ACCESS_KEY_ID=$MINIO_USER AWS_SECRET_ACCESS_KEY=$MINIO_PASSWORD \
		start "node-$i" $((8080 + i)) "$STATE_DIR/bin/mamba" serve \
		--listen "127.0.0.1:$((8080 + i))" --node-id "node-$i" \
		--bucket "s3://$BUCKET?endpoint=http://127.0.0.1:9000" --redis redis://127.0.0.1:6379/0
done
for i in $(seq 0 $((nodes - 1))); do wait_ready "node-$i"; done
trap - ERR

{
	echo "Mamba nodes:"
	for i in $(seq 0 $((nodes - 1))); do echo "  http://127.0.0.1:$((8080 + i))"; done
	echo "MinIO (region A): http://127.0.0.1:9000  bucket $BUCKET  user $MINIO_USER  password $MINIO_PASSWORD"
	echo "Redis (region A): redis://127.0.0.1:6379/0"
	if [ "$dr" = 1 ]; then
		echo "MinIO (region B): http://127.0.0.1:9100  bucket $BUCKET (replica of A's)"
		echo "Redis (region B): redis://127.0.0.1:6380/0"
	fi
} | tee "$STATE_DIR/endpoints"
echo
echo "Try: $STATE_DIR/bin/mamba topic create orders --partitions 4"
[ "$dr" = 1 ] && echo "     AWS_ACCESS_KEY_ID=$MINIO_USER AWS_SECRET_ACCESS_KEY=$MINIO_PASSWORD $STATE_DIR/bin/mamba dr status --source 's3://$BUCKET?endpoint=http://127.0.0.1:9000' --target 's3://$BUCKET?endpoint=http://127.0.0.1:9100'"
echo "Then: deploy/local/status.sh, deploy/local/down.sh"
