# shellcheck shell=bash
# Source this file (`source script/dev-env-rclone.sh`) to get an rclone remote `garage:` for the
# cluster of script/dev-cluster.sh, defined entirely by RCLONE_CONFIG_GARAGE_* variables (no
# change to your rclone.conf). It reads the state directory GARAGE_DEV_DIR (default
# ${TMPDIR:-/tmp}/garage-dev-$UID).
#
#   rclone lsd garage:
#   rclone copy ./some/dir garage:dev-bucket/dir
_garage_env=${GARAGE_DEV_DIR:-${TMPDIR:-/tmp}/garage-dev-$(id -u)}/env
if [ ! -f "$_garage_env" ]; then
  echo "dev-env-rclone: $_garage_env not found: start a cluster with script/dev-cluster.sh (or set GARAGE_DEV_DIR)" >&2
  unset _garage_env
  return 1 2> /dev/null || exit 1
fi
# shellcheck disable=SC1090
. "$_garage_env"
unset _garage_env
export GARAGE_CONFIG_FILE
export RCLONE_CONFIG_GARAGE_TYPE=s3
export RCLONE_CONFIG_GARAGE_PROVIDER=Other
export RCLONE_CONFIG_GARAGE_ENDPOINT=$GARAGE_S3_ENDPOINT
export RCLONE_CONFIG_GARAGE_REGION=$GARAGE_REGION
export RCLONE_CONFIG_GARAGE_ACCESS_KEY_ID=$GARAGE_KEY_ID
export RCLONE_CONFIG_GARAGE_SECRET_ACCESS_KEY=$GARAGE_SECRET
export RCLONE_CONFIG_GARAGE_FORCE_PATH_STYLE=true
# rclone's S3 backend refuses to start when AWS_CA_BUNDLE is set (LoadCustomCABundleError); the
# development endpoint is plain HTTP and needs no CA bundle.
if [ -n "${AWS_CA_BUNDLE:-}" ]; then
  echo "dev-env-rclone: unsetting AWS_CA_BUNDLE (rclone refuses to start with it)" >&2
  unset AWS_CA_BUNDLE
fi
echo "rclone: remote garage: -> $GARAGE_S3_ENDPOINT, key $GARAGE_KEY_ID, bucket $GARAGE_BUCKET"
