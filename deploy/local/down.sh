#!/usr/bin/env bash
# Stops what deploy/local/up.sh started, by the pids it recorded: the
# nodes first, then MinIO and Redis. Each gets SIGTERM, then SIGKILL if it
# has not exited after $DOWN_TIMEOUT seconds (default 30). A pid that now
# belongs to another program is left alone. Data stays in the state
# directory's data/ for the next up.sh; --purge removes the whole state
# directory as well.
#
#   deploy/local/down.sh [--purge]
set -euo pipefail
. "$(dirname "$0")/lib.sh"

purge=0
case "${1:-}" in
"") ;;
--purge) purge=1 ;;
-h | --help) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
*) echo "unknown argument $1 (see --help)" >&2; exit 2 ;;
esac
timeout="${DOWN_TIMEOUT:-30}"

stopped=0
for name in $(names); do
	pid="$(cat "$STATE_DIR/$name.pid")"
	if alive "$name"; then
		kill -TERM "$pid" 2>/dev/null || true
		deadline=$((SECONDS + timeout))
		while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.2; done
		if kill -0 "$pid" 2>/dev/null; then
			echo "$name (pid $pid) still runs after ${timeout}s: SIGKILL"
			kill -KILL "$pid" 2>/dev/null || true
		else
			echo "stopped $name (pid $pid)"
		fi
		stopped=$((stopped + 1))
	else
		echo "$name (pid $pid) was not running"
	fi
	rm -f "$STATE_DIR/$name".{pid,port,comm}
done
rm -f "$STATE_DIR/endpoints"
[ "$stopped" -gt 0 ] || echo "nothing to stop"
if [ "$purge" = 1 ] && [ -d "$STATE_DIR" ]; then
	rm -rf "$STATE_DIR"
	echo "removed $STATE_DIR"
fi
