#!/usr/bin/env bash
# A local development cluster: N garage daemons on this machine, one zone per node.
#
#   bash script/dev-cluster.sh [start] [N]   # start N nodes (default 3), or restart a stopped cluster
#   bash script/dev-cluster.sh stop          # stop the nodes (data is kept)
#   bash script/dev-cluster.sh status        # `garage status` of node 1
#   bash script/dev-cluster.sh clean         # stop the nodes and delete the state directory
#
# Environment:
#   GARAGE_DEV_DIR        state directory (default ${TMPDIR:-/tmp}/garage-dev-$UID): one folder
#                         per node (garage.toml, meta/, data/, log, pid) and the `env` file that
#                         script/dev-env-{aws,rclone,s3cmd}.sh read
#   GARAGE_BIN            the binary (default: target/release/garage, else target/debug/garage,
#                         else `cargo build --release`; CARGO_TARGET_DIR is honoured)
#   GARAGE_DEV_BASE_PORT  fixed ports: node i uses BASE+10*i (S3), +1 (RPC), +2 (web), +3 (admin);
#                         without it, free ports are picked and printed
#   GARAGE_DEV_CAPACITY   capacity given to every node in the layout (default 1G)
#
# On the first start it writes the configurations (replication factor min(N, 3), one shared
# rpc_secret), starts the daemons, connects them to node 1, assigns node i to zone dc<i>,
# applies the layout, creates the key `dev-key` and the bucket `dev-bucket`, and prints the
# environment to use. Then: `source script/dev-env-aws.sh` (or -rclone, -s3cmd).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=script/lib-server.sh
. "$REPO/script/lib-server.sh"

DIR=${GARAGE_DEV_DIR:-${TMPDIR:-/tmp}/garage-dev-$(id -u)}
CAPACITY=${GARAGE_DEV_CAPACITY:-1G}
KEY_NAME=dev-key
BUCKET=dev-bucket

die() {
  echo "error: $*" >&2
  exit 1
}

find_bin() {
  # A running cluster is driven with the binary that started it.
  if [ -z "${GARAGE_BIN:-}" ] && [ -f "$DIR/env" ]; then
    GARAGE_BIN=$(sed -n "s/^GARAGE_BIN='\(.*\)'$/\1/p" "$DIR/env")
    [ -x "$GARAGE_BIN" ] || GARAGE_BIN=
  fi
  if [ -z "${GARAGE_BIN:-}" ]; then
    local t=${CARGO_TARGET_DIR:-$REPO/target}
    if [ -x "$t/release/garage" ]; then
      GARAGE_BIN=$t/release/garage
    elif [ -x "$t/debug/garage" ]; then
      GARAGE_BIN=$t/debug/garage
    fi
  fi
  (cd "$REPO" && garage_bin)
  GARAGE_BIN=${GARAGE_BIN:-${CARGO_TARGET_DIR:-$REPO/target}/release/garage}
  case "$GARAGE_BIN" in /*) ;; *) GARAGE_BIN=$REPO/$GARAGE_BIN ;; esac
}

node_dirs() {
  local d
  for d in "$DIR"/node*; do
    [ -f "$d/garage.toml" ] && echo "$d"
  done | sort -V
}

is_running() {
  [ -f "$1/pid" ] && kill -0 "$(cat "$1/pid")" 2> /dev/null
}

# retry TRIES COMMAND...: runs COMMAND until it succeeds, 0.5 s apart; shows the last failure.
retry() {
  local tries=$1 i
  shift
  for i in $(seq 1 "$tries"); do
    if "$@" > "$DIR/retry.out" 2>&1; then
      cat "$DIR/retry.out"
      return 0
    fi
    sleep 0.5
  done
  echo "error: gave up after $tries tries: $*" >&2
  cat "$DIR/retry.out" >&2
  return 1
}

g() { # g NODE_NUMBER ARGS...: the CLI against node NODE_NUMBER
  local n=$1
  shift
  "$GARAGE_BIN" -c "$DIR/node$n/garage.toml" "$@"
}

write_configs() {
  local n=$1 rf=$(($1 < 3 ? $1 : 3)) secret i
  secret=$(openssl rand -hex 32 2> /dev/null || python3 -c 'import secrets; print(secrets.token_hex(32))')
  local used=" "
  pick() {
    local p
    if [ -n "${GARAGE_DEV_BASE_PORT:-}" ]; then
      echo $((GARAGE_DEV_BASE_PORT + 10 * i + $1))
      return
    fi
    p=$(free_port)
    while [[ $used == *" $p "* ]]; do p=$(free_port); done
    echo "$p"
  }
  for i in $(seq 1 "$n"); do
    local d=$DIR/node$i s3 rpc web admin
    s3=$(pick 0)
    used="$used$s3 "
    rpc=$(pick 1)
    used="$used$rpc "
    web=$(pick 2)
    used="$used$web "
    admin=$(pick 3)
    used="$used$admin "
    mkdir -p "$d"
    cat > "$d/garage.toml" << EOF
# Node $i of the development cluster (script/dev-cluster.sh).
metadata_dir = "$d/meta"
data_dir = "$d/data"
replication_factor = $rf
rpc_bind_addr = "127.0.0.1:$rpc"
rpc_public_addr = "127.0.0.1:$rpc"
rpc_secret = "$secret"

[s3_api]
api_bind_addr = "127.0.0.1:$s3"
s3_region = "garage"
root_domain = ".s3.garage.localhost"

[s3_web]
bind_addr = "127.0.0.1:$web"
root_domain = ".web.garage.localhost"
index = "index.html"

[admin]
api_bind_addr = "127.0.0.1:$admin"
EOF
    chmod 600 "$d/garage.toml"
  done
}

# A value of a node's configuration: conf_port NODE SECTION_KEY (api_bind_addr, bind_addr…).
conf_addr() {
  sed -n "s/^$2 = \"\\(.*\\)\"/\\1/p" "$DIR/node$1/garage.toml" | head -1
}

start_nodes() {
  local d
  for d in $(node_dirs); do
    if is_running "$d"; then
      echo "   $(basename "$d") already running (pid $(cat "$d/pid"))"
      continue
    fi
    # setsid: the daemons outlive this script and ignore the terminal's Ctrl-C.
    RUST_LOG=${RUST_LOG:-garage=info} setsid "$GARAGE_BIN" -c "$d/garage.toml" server \
      > "$d/log" 2>&1 < /dev/null &
    echo $! > "$d/pid"
  done
  for d in $(node_dirs); do
    local i
    for i in $(seq 1 100); do
      [ -s "$d/meta/node_key.pub" ] && break
      is_running "$d" || die "$(basename "$d") exited at start; its log ($d/log): $(tail -5 "$d/log")"
      sleep 0.2
    done
    [ -s "$d/meta/node_key.pub" ] || die "$(basename "$d") did not create its node key; see $d/log"
  done
}

healthy_count() {
  g 1 status 2> /dev/null | awk '/^==== HEALTHY/{h=1; next} /^====/{h=0} h && length($1) == 16 && $1 ~ /^[0-9a-f]+$/ {c++} END{print c+0}'
}

setup_cluster() {
  local n=$1 i first
  first=$(retry 50 g 1 node id -q)
  for i in $(seq 2 "$n"); do
    retry 50 g "$i" node connect "$first" > /dev/null
  done
  for i in $(seq 1 100); do
    [ "$(healthy_count)" -ge "$n" ] && break
    sleep 0.3
  done
  [ "$(healthy_count)" -ge "$n" ] || die "node 1 does not see $n healthy nodes: $(g 1 status 2>&1)"
  for i in $(seq 1 "$n"); do
    local id
    id=$(g "$i" node id -q | cut -d@ -f1)
    g 1 layout assign -z "dc$i" -c "$CAPACITY" -t "node$i" "$id" > /dev/null
  done
  g 1 layout apply --version 1
  # Keys and buckets live in full-copy tables: retry while the new layout reaches every node.
  local key_out
  key_out=$(retry 60 g 1 key create "$KEY_NAME")
  KEY_ID=$(sed -n 's/^Key ID: *//p' <<< "$key_out")
  SECRET=$(sed -n 's/^Secret key: *//p' <<< "$key_out")
  if [ -z "$KEY_ID" ] || [ -z "$SECRET" ]; then
    die "unexpected output of key create: $key_out"
  fi
  retry 20 g 1 key allow --create-bucket "$KEY_NAME" > /dev/null
  retry 20 g 1 bucket create "$BUCKET" > /dev/null
  retry 20 g 1 bucket allow --read --write --owner "$BUCKET" --key "$KEY_NAME" > /dev/null

  local nodes=""
  for i in $(seq 1 "$n"); do
    nodes="$nodes http://$(conf_addr "$i" api_bind_addr)"
  done
  cat > "$DIR/env.tmp" << EOF
# Written by script/dev-cluster.sh; read by script/dev-env-*.sh.
GARAGE_DEV_DIR='$DIR'
GARAGE_BIN='$GARAGE_BIN'
GARAGE_CONFIG_FILE='$DIR/node1/garage.toml'
GARAGE_S3_ENDPOINT='http://$(conf_addr 1 api_bind_addr)'
GARAGE_S3_ENDPOINTS='${nodes# }'
GARAGE_WEB_ENDPOINT='http://$(conf_addr 1 bind_addr)'
GARAGE_ADMIN_ENDPOINT='http://$(sed -n '/^\[admin\]/,$ s/^api_bind_addr = "\(.*\)"/\1/p' "$DIR/node1/garage.toml")'
GARAGE_REGION='garage'
GARAGE_KEY_ID='$KEY_ID'
GARAGE_SECRET='$SECRET'
GARAGE_BUCKET='$BUCKET'
EOF
  chmod 600 "$DIR/env.tmp"
  mv "$DIR/env.tmp" "$DIR/env"
}

wait_s3() {
  # shellcheck disable=SC1091
  . "$DIR/env"
  local ep i
  for ep in $GARAGE_S3_ENDPOINTS; do
    for i in $(seq 1 100); do
      # Any HTTP status will do (an unsigned request gets 403).
      [ "$(curl -s -o /dev/null -w '%{http_code}' "$ep/" || true)" != 000 ] && break
      sleep 0.2
    done
  done
}

print_env() {
  # shellcheck disable=SC1091
  . "$DIR/env"
  local i
  echo
  echo "Garage development cluster in $DIR"
  for i in $(seq 1 "$(node_dirs | wc -l)"); do
    printf '  node%s  pid %-7s S3 http://%s  RPC %s  web http://%s  admin http://%s\n' "$i" \
      "$(cat "$DIR/node$i/pid" 2> /dev/null || echo -)" "$(conf_addr "$i" api_bind_addr)" \
      "$(conf_addr "$i" rpc_bind_addr)" "$(conf_addr "$i" bind_addr)" \
      "$(sed -n '/^\[admin\]/,$ s/^api_bind_addr = "\(.*\)"/\1/p' "$DIR/node$i/garage.toml")"
  done
  cat << EOF

  S3 endpoint:   $GARAGE_S3_ENDPOINT   (region $GARAGE_REGION)
  Access key id: $GARAGE_KEY_ID
  Secret key:    $GARAGE_SECRET
  Bucket:        $GARAGE_BUCKET
  Website:       curl -H 'Host: <bucket>.web.garage.localhost' $GARAGE_WEB_ENDPOINT/

Use it from a shell (GARAGE_DEV_DIR=$DIR if you set it):
  export GARAGE_CONFIG_FILE=$GARAGE_CONFIG_FILE   # then: $GARAGE_BIN status
  source script/dev-env-aws.sh      # AWS_* variables and the alias awsgrg
  source script/dev-env-rclone.sh   # the rclone remote garage:
  source script/dev-env-s3cmd.sh    # S3CMD_CONFIG and the alias s3grg
Stop it with: bash script/dev-cluster.sh stop
EOF
}

stop_nodes() {
  local d pid i
  for d in $(node_dirs); do
    is_running "$d" || continue
    pid=$(cat "$d/pid")
    kill -TERM "$pid" 2> /dev/null || true
    for i in $(seq 1 50); do
      kill -0 "$pid" 2> /dev/null || break
      sleep 0.2
    done
    kill -KILL "$pid" 2> /dev/null || true
    echo "   stopped $(basename "$d") (pid $pid)"
  done
  rm -f "$DIR"/node*/pid
}

cmd=${1:-start}
case "$cmd" in
  [0-9]*) set -- start "$@" ;;
esac
cmd=${1:-start}
case "$cmd" in
  start)
    N=${2:-3}
    [[ $N =~ ^[1-9][0-9]*$ ]] || die "the number of nodes must be a positive integer, not '$N'"
    find_bin
    command -v curl > /dev/null || die "curl is required"
    if [ -f "$DIR/env" ]; then
      have=$(node_dirs | wc -l)
      [ "$have" = "$N" ] || [ -z "${2:-}" ] \
        || die "$DIR holds a cluster of $have nodes; run '$0 clean' first to start $N"
      echo "== restarting the cluster in $DIR"
      start_nodes
    else
      [ -z "$(node_dirs)" ] || die "$DIR holds a half-created cluster; run '$0 clean' first"
      echo "== starting $N nodes in $DIR with $GARAGE_BIN"
      mkdir -p "$DIR"
      write_configs "$N"
      start_nodes
      setup_cluster "$N"
    fi
    wait_s3
    print_env
    ;;
  stop)
    stop_nodes
    ;;
  status)
    find_bin
    [ -f "$DIR/node1/garage.toml" ] || die "no cluster in $DIR"
    g 1 status
    ;;
  clean)
    stop_nodes
    [ -d "$DIR" ] && rm -rf "$DIR" && echo "   removed $DIR"
    ;;
  *)
    die "unknown command '$cmd' (start [N], stop, status, clean)"
    ;;
esac
