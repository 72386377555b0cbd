#!/usr/bin/env bash
# Shows what deploy/local/up.sh started: each process, its pid, whether it
# runs, its port and whether it answers (/readyz for nodes, MinIO's health
# check, Redis PING). Exits 0 when everything runs and answers, 1 when
# something does not, 3 when nothing was started.
#
#   deploy/local/status.sh
set -euo pipefail
. "$(dirname "$0")/lib.sh"

list="$(names)"
if [ -z "$list" ]; then
	echo "nothing started (state in $STATE_DIR); start with deploy/local/up.sh"
	exit 3
fi
{
	echo "NAME PID RUNNING PORT READY"
	for name in $list; do
		run=no rdy=no
		if alive "$name"; then run=yes; fi
		if [ "$run" = yes ] && ready "$name"; then rdy=yes; fi
		echo "$name $(cat "$STATE_DIR/$name.pid") $run $(cat "$STATE_DIR/$name.port" 2>/dev/null || echo -) $rdy"
	done
} | column -t
for name in $list; do alive "$name" && ready "$name" || exit 1; done
