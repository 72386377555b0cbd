#!/usr/bin/env bash
# Sets up S3 Cross-Region Replication from Mamba's bucket in region A to its
# replica in region B with the AWS CLI. Both buckets must exist. Settings are
# environment variables:
#
#   SOURCE_BUCKET  SOURCE_REGION   Mamba's bucket and its region (A)
#   DEST_BUCKET    DEST_REGION     the replica bucket and its region (B)
#   ROLE_ARN       an IAM role S3 assumes to replicate (see README.md); when
#                  unset, ROLE_NAME (default mamba-replication) is created
#                  with role-trust.json and role-policy.json.tmpl
#   DRY_RUN=1      print the commands instead of running them
#
# Running it again is harmless: versioning and the replication configuration
# are set to the same values, and an existing role is reused.
set -euo pipefail
cd "$(dirname "$0")"

for v in SOURCE_BUCKET SOURCE_REGION DEST_BUCKET DEST_REGION; do
	[ -n "${!v:-}" ] || { echo "$v is required (see the top of $0)" >&2; exit 2; }
done
ROLE_NAME="${ROLE_NAME:-mamba-replication}"

run() {
	echo "+ $*"
	[ "${DRY_RUN:-0}" = 1 ] || "$@"
}
fill() { sed -e "s|\${SOURCE_BUCKET}|$SOURCE_BUCKET|g" -e "s|\${DEST_BUCKET}|$DEST_BUCKET|g" -e "s|\${ROLE_ARN}|$ROLE_ARN|g" "$1"; }

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

if [ -z "${ROLE_ARN:-}" ]; then
	if ROLE_ARN="$(aws iam get-role --role-name "$ROLE_NAME" --query Role.Arn --output text 2>/dev/null)"; then
		echo "role $ROLE_NAME: exists ($ROLE_ARN)"
	else
		run aws iam create-role --role-name "$ROLE_NAME" --assume-role-policy-document file://role-trust.json
		ROLE_ARN="$(aws iam get-role --role-name "$ROLE_NAME" --query Role.Arn --output text 2>/dev/null || echo "arn:aws:iam::<account>:role/$ROLE_NAME")"
	fi
	ROLE_ARN_SET=1
fi
fill role-policy.json.tmpl >"$tmp/role-policy.json"
if [ -n "${ROLE_ARN_SET:-}" ]; then
	run aws iam put-role-policy --role-name "$ROLE_NAME" --policy-name mamba-replication \
		--policy-document "file://$tmp/role-policy.json"
fi

run aws s3api put-bucket-versioning --region "$SOURCE_REGION" --bucket "$SOURCE_BUCKET" \
	--versioning-configuration Status=Enabled
run aws s3api put-bucket-versioning --region "$DEST_REGION" --bucket "$DEST_BUCKET" \
	--versioning-configuration Status=Enabled

fill replication.json.tmpl >"$tmp/replication.json"
run aws s3api put-bucket-replication --region "$SOURCE_REGION" --bucket "$SOURCE_BUCKET" \
	--replication-configuration "file://$tmp/replication.json"

echo "replication $SOURCE_BUCKET ($SOURCE_REGION) -> $DEST_BUCKET ($DEST_REGION) configured with role $ROLE_ARN"
echo "objects written before this are not replicated by the rule: copy them with S3 Batch Replication (README.md)"
