# shellcheck shell=bash
# Source this file (`source script/dev-env-aws.sh`) to point the aws CLI (and boto3, and any
# AWS SDK) at the cluster of script/dev-cluster.sh. It reads the state directory
# GARAGE_DEV_DIR (default ${TMPDIR:-/tmp}/garage-dev-$UID), exports the AWS_* variables, and
# defines the alias `awsgrg` = `aws --endpoint-url <node 1's S3 endpoint>`:
#
#   awsgrg s3 ls s3://dev-bucket
#   awsgrg s3api list-objects-v2 --bucket dev-bucket
#
# AWS_ENDPOINT_URL is exported too: recent aws CLIs (2.13+) and SDKs use it without the alias.
_garage_env=${GARAGE_DEV_DIR:-${TMPDIR:-/tmp}/garage-dev-$(id -u)}/env
if [ ! -f "$_garage_env" ]; then
  echo "dev-env-aws: $_garage_env not found: start a cluster with script/dev-cluster.sh (or set GARAGE_DEV_DIR)" >&2
  unset _garage_env
  return 1 2> /dev/null || exit 1
fi
# shellcheck disable=SC1090
. "$_garage_env"
unset _garage_env
export GARAGE_CONFIG_FILE
export AWS_ACCESS_KEY_ID=$GARAGE_KEY_ID
export AWS_SECRET_ACCESS_KEY=$GARAGE_SECRET
export AWS_DEFAULT_REGION=$GARAGE_REGION
export AWS_REGION=$GARAGE_REGION
export AWS_ENDPOINT_URL=$GARAGE_S3_ENDPOINT
# Credentials and settings of ~/.aws would otherwise mix in.
export AWS_EC2_METADATA_DISABLED=true
export AWS_PAGER=
# shellcheck disable=SC2139
alias awsgrg="aws --endpoint-url $GARAGE_S3_ENDPOINT"
echo "aws: endpoint $GARAGE_S3_ENDPOINT, key $GARAGE_KEY_ID, bucket $GARAGE_BUCKET (alias awsgrg)"
