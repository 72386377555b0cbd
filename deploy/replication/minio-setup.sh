#!/usr/bin/env bash
# Sets up MinIO bucket replication from Mamba's bucket in region A to its
# replica in region B, with the mc client:
#
#   1. creates either bucket if it is missing;
#   2. enables versioning on both (bucket replication requires it);
#   3. adds a replication rule on A's bucket that copies every new object,
#      every existing object and every delete (delete markers too) to B's;
#   4. starts a resync, so objects written before the rule are copied now
#      rather than whenever MinIO's scanner reaches them;
#   5. optionally expires noncurrent versions on both buckets, so deleted
#      chunks and pruned checkpoints do not stay forever as old versions.
#
# Running it again changes nothing that is already set up: a bucket that
# exists is kept, versioning is enabled again (a no-op), a rule to the same
# remote bucket is not added twice. It prints each step and what it found.
#
# Settings, as environment variables or flags (flags win):
#
#   A_ENDPOINT    --a-endpoint    region A's MinIO, e.g. https://minio-a.example.com:9000
#   A_ACCESS_KEY  --a-access-key  an A user allowed to configure replication (e.g. root)
#   A_SECRET_KEY  --a-secret-key
#   A_BUCKET      --a-bucket      Mamba's bucket in A (as in --bucket s3://<bucket>)
#   B_ENDPOINT    --b-endpoint    region B's MinIO, as A's endpoint is seen *from A's servers*
#   B_ACCESS_KEY  --b-access-key  a B user that may write B_BUCKET (MinIO replicates as this user)
#   B_SECRET_KEY  --b-secret-key
#   B_BUCKET      --b-bucket      the replica bucket in B
#   NONCURRENT_DAYS  --noncurrent-days  expire noncurrent versions after
#                 this many days on both buckets; 0 leaves lifecycle alone (default 0)
#   MC            --mc            the mc binary (default: mc on PATH, else $(go env GOPATH)/bin/mc)
#
# Example:
#
#   A_ENDPOINT=http://10.0.0.5:9000 A_ACCESS_KEY=admin A_SECRET_KEY=... A_BUCKET=mamba \
#   B_ENDPOINT=http://10.1.0.5:9000 B_ACCESS_KEY=admin B_SECRET_KEY=... B_BUCKET=mamba \
#     deploy/replication/minio-setup.sh
#
# Then watch the replica with `mamba dr status --source ... --target ...`
# (docs/dr.md). mc keeps its aliases in a temporary directory that is
# removed on exit, so nothing is written to ~/.mc.
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
	case "$1" in
	--a-endpoint) A_ENDPOINT="$2"; shift 2 ;;
	--a-access-key) A_ACCESS_KEY="$2"; shift 2 ;;
	--a-secret-key) A_SECRET_KEY="$2"; shift 2 ;;
	--a-bucket) A_BUCKET="$2"; shift 2 ;;
	--b-endpoint) B_ENDPOINT="$2"; shift 2 ;;
	--b-access-key) B_ACCESS_KEY="$2"; shift 2 ;;
	--b-secret-key) B_SECRET_KEY="$2"; shift 2 ;;
	--b-bucket) B_BUCKET="$2"; shift 2 ;;
	--noncurrent-days) NONCURRENT_DAYS="$2"; shift 2 ;;
	--mc) MC="$2"; shift 2 ;;
	-h | --help) usage; exit 0 ;;
	*) echo "unknown argument $1 (see --help)" >&2; exit 2 ;;
	esac
done

missing=()
for v in A_ENDPOINT A_ACCESS_KEY A_SECRET_KEY A_BUCKET B_ENDPOINT B_ACCESS_KEY B_SECRET_KEY B_BUCKET; do
	[ -n "${!v:-}" ] || missing+=("$v")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "missing settings: ${missing[*]} (see --help)" >&2
	exit 2
fi
NONCURRENT_DAYS="${NONCURRENT_DAYS:-0}"

if [ -z "${MC:-}" ]; then
	if command -v mc >/dev/null 2>&1; then
		MC="$(command -v mc)"
	else
		MC="$(go env GOPATH 2>/dev/null)/bin/mc"
	fi
fi
[ -x "$MC" ] || { echo "mc not found (set MC or run deploy/local/install-deps.sh)" >&2; exit 2; }

MC_CONFIG_DIR="$(mktemp -d)"
export MC_CONFIG_DIR
trap 'rm -rf "$MC_CONFIG_DIR"' EXIT
mc() { "$MC" --no-color --disable-pager "$@"; }

# urlencode percent-encodes a credential for the remote bucket URL.
urlencode() {
	local s="$1" out="" c i
	for ((i = 0; i < ${#s}; i++)); do
		c="${s:i:1}"
		case "$c" in
		[A-Za-z0-9._~-]) out+="$c" ;;
		*) out+="$(printf '%%%02X' "'$c")" ;;
		esac
	done
	printf '%s' "$out"
}

echo "mc: $MC"
mc alias set mamba-a "$A_ENDPOINT" "$A_ACCESS_KEY" "$A_SECRET_KEY" >/dev/null
mc alias set mamba-b "$B_ENDPOINT" "$B_ACCESS_KEY" "$B_SECRET_KEY" >/dev/null
echo "region A: $A_ENDPOINT bucket $A_BUCKET"
echo "region B: $B_ENDPOINT bucket $B_BUCKET"

for side in a b; do
	if [ "$side" = a ]; then bucket="$A_BUCKET"; else bucket="$B_BUCKET"; fi
	target="mamba-$side/$bucket"
	if mc stat "$target" >/dev/null 2>&1; then
		echo "bucket $target: exists"
	else
		mc mb --ignore-existing "$target" >/dev/null
		echo "bucket $target: created"
	fi
	if mc version info "$target" 2>/dev/null | grep -q "versioning is enabled"; then
		echo "versioning on $target: already enabled"
	else
		mc version enable "$target" >/dev/null
		echo "versioning on $target: enabled"
	fi
	if [ "$NONCURRENT_DAYS" != 0 ]; then
		if mc ilm rule ls "$target" --json 2>/dev/null | grep -q '"NoncurrentVersionExpiration":{"NoncurrentDays":[1-9]'; then
			echo "lifecycle on $target: noncurrent versions already expire"
		else
			mc ilm rule add "$target" --noncurrent-expire-days "$NONCURRENT_DAYS" >/dev/null
			echo "lifecycle on $target: noncurrent versions expire after $NONCURRENT_DAYS days"
		fi
	fi
done

# The remote host as mc replicate ls prints it: host:port/bucket.
b_host="${B_ENDPOINT#*://}"
b_host="${b_host%/}"
if mc replicate ls "mamba-a/$A_BUCKET" 2>/dev/null | grep -qF "Remote Bucket: $b_host/$B_BUCKET"; then
	echo "replication mamba-a/$A_BUCKET -> $b_host/$B_BUCKET: rule already present"
else
	scheme="${B_ENDPOINT%%://*}"
	remote="$scheme://$(urlencode "$B_ACCESS_KEY"):$(urlencode "$B_SECRET_KEY")@$b_host/$B_BUCKET"
	mc replicate add "mamba-a/$A_BUCKET" --remote-bucket "$remote" \
		--replicate "delete,delete-marker,existing-objects" >/dev/null
	echo "replication mamba-a/$A_BUCKET -> $b_host/$B_BUCKET: rule added (new objects, existing objects, deletes, delete markers)"
	arn="$(mc replicate ls "mamba-a/$A_BUCKET" --json | grep -o '"Bucket":"arn:[^"]*:'"$B_BUCKET"'"' | head -n 1 | sed -e 's/^"Bucket":"//' -e 's/"$//')"
	if [ -n "$arn" ]; then
		mc replicate resync start "mamba-a/$A_BUCKET" --remote-bucket "$arn" >/dev/null
		echo "resync of existing objects to $arn: started"
	fi
fi

echo "done; replication status:"
mc replicate status "mamba-a/$A_BUCKET" 2>/dev/null | sed -e 's/[[:space:]]*$//' -e '/^$/d' | sed -n '1,6p' || true
