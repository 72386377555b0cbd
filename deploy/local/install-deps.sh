#!/usr/bin/env bash
# Installs the servers Mamba's integration tests, local set-up and
# benchmarks run, and the linter `make test` runs: redis-server from Debian,
# and MinIO, mc, nats-server and staticcheck built with `go install` at
# pinned versions. Each step is skipped when the
# binary is already present, so running this twice costs nothing.
#
# MinIO is AGPL-licensed: it is only ever run as a separate process; Mamba
# never imports its packages. nats-server (Apache-2.0) is only used by the
# benchmark comparison (`mamba bench`) and its tests, also as a separate
# process.
set -euo pipefail

MINIO_VERSION="${MINIO_VERSION:-v0.0.0-20260212201848-7aac2a2c5b7c}"
MC_VERSION="${MC_VERSION:-v0.0.0-20250313080218-cf909e1063a9}"
NATS_SERVER_VERSION="${NATS_SERVER_VERSION:-v2.15.2}"

gobin="$(go env GOBIN)"
[ -n "$gobin" ] || gobin="$(go env GOPATH)/bin"

have() { command -v "$1" >/dev/null 2>&1 || [ -x "$gobin/$1" ]; }

as_root() {
	if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

if have redis-server; then
	echo "redis-server: present ($(command -v redis-server || echo "$gobin/redis-server"))"
else
	echo "redis-server: installing from Debian"
	as_root apt-get update -qq
	# The package's post-install may try to start a system service; tests
	# start their own servers, so a failure to start one here is harmless.
	DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends redis-server
	as_root systemctl disable --now redis-server >/dev/null 2>&1 || true
fi

if have minio; then
	echo "minio: present"
else
	echo "minio: go install github.com/minio/minio@$MINIO_VERSION (takes a few minutes)"
	go install "github.com/minio/minio@$MINIO_VERSION"
fi

if have mc; then
	echo "mc: present"
else
	echo "mc: go install github.com/minio/mc@$MC_VERSION"
	go install "github.com/minio/mc@$MC_VERSION"
fi

if have nats-server; then
	echo "nats-server: present"
else
	echo "nats-server: go install github.com/nats-io/nats-server/v2@$NATS_SERVER_VERSION"
	go install "github.com/nats-io/nats-server/v2@$NATS_SERVER_VERSION"
fi

STATICCHECK_VERSION="${STATICCHECK_VERSION:-v0.8.2}"
if have staticcheck; then
	echo "staticcheck: present"
else
	echo "staticcheck: go install honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION"
	go install "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION"
fi

echo "binaries in $gobin: $(ls "$gobin" 2>/dev/null | tr '\n' ' ')"
