# shellcheck shell=bash
# Source this file (`source script/dev-env-s3cmd.sh`) to use s3cmd with the cluster of
# script/dev-cluster.sh. It reads the state directory GARAGE_DEV_DIR (default
# ${TMPDIR:-/tmp}/garage-dev-$UID), writes GARAGE_DEV_DIR/s3cmd.cfg (path-style requests, plain
# HTTP, SigV4 for region "garage"), exports S3CMD_CONFIG (which s3cmd reads) and defines the
# alias `s3grg` = `s3cmd -c <that file>`:
#
#   s3grg ls s3://dev-bucket
#   s3grg put file.txt s3://dev-bucket/file.txt
_garage_env=${GARAGE_DEV_DIR:-${TMPDIR:-/tmp}/garage-dev-$(id -u)}/env
if [ ! -f "$_garage_env" ]; then
  echo "dev-env-s3cmd: $_garage_env not found: start a cluster with script/dev-cluster.sh (or set GARAGE_DEV_DIR)" >&2
  unset _garage_env
  return 1 2> /dev/null || exit 1
fi
# shellcheck disable=SC1090
. "$_garage_env"
unset _garage_env
export GARAGE_CONFIG_FILE
export S3CMD_CONFIG=$GARAGE_DEV_DIR/s3cmd.cfg
# host_bucket without %(bucket)s: s3cmd then sends path-style requests to host_base.
(umask 077 && cat > "$S3CMD_CONFIG" << EOF_S3CMD
[default]
access_key = $GARAGE_KEY_ID
secret_key = $GARAGE_SECRET
host_base = ${GARAGE_S3_ENDPOINT#http://}
host_bucket = ${GARAGE_S3_ENDPOINT#http://}
bucket_location = $GARAGE_REGION
use_https = False
signature_v2 = False
check_ssl_certificate = False
guess_mime_type = True
EOF_S3CMD
)
# shellcheck disable=SC2139
alias s3grg="s3cmd -c $S3CMD_CONFIG"
echo "s3cmd: $S3CMD_CONFIG -> $GARAGE_S3_ENDPOINT, key $GARAGE_KEY_ID, bucket $GARAGE_BUCKET (alias s3grg)"
