# Shared by script/test-smoke.sh and script/bench-s3.sh (source it, do not run it).
#
# garage_bin              -> sets GARAGE_BIN, building the release binary if it is missing
# start_single_node DIR   -> starts `garage server --single-node` with a generated configuration
#                            in DIR (free loopback ports), waits until S3 answers, and sets
#                            GARAGE_PID, S3_ENDPOINT, S3_REGION, S3_KEY_ID, S3_SECRET, S3_BUCKET,
#                            WEB_ENDPOINT (website endpoint, root domain .web.garage.localhost)
# stop_server             -> SIGTERM, then SIGKILL after 10 s (safe to call twice)

# A free TCP port on 127.0.0.1 (the kernel picks it; there is a small window before we bind it).
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

garage_bin() {
  GARAGE_BIN=${GARAGE_BIN:-${CARGO_TARGET_DIR:-target}/release/garage}
  if [ ! -x "$GARAGE_BIN" ]; then
    echo "== $GARAGE_BIN not found: cargo build --release"
    cargo build --release --bin garage
  fi
  if [ ! -x "$GARAGE_BIN" ]; then
    echo "error: no garage binary at $GARAGE_BIN (set GARAGE_BIN)" >&2
    return 1
  fi
}

start_single_node() {
  local dir=$1
  local s3_port rpc_port web_port
  s3_port=$(free_port)
  rpc_port=$(free_port)
  while [ "$rpc_port" = "$s3_port" ]; do rpc_port=$(free_port); done
  web_port=$(free_port)
  while [ "$web_port" = "$s3_port" ] || [ "$web_port" = "$rpc_port" ]; do web_port=$(free_port); done
  mkdir -p "$dir"
  cat > "$dir/garage.toml" <<EOF
metadata_dir = "$dir/meta"
data_dir = "$dir/data"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:$rpc_port"
rpc_public_addr = "127.0.0.1:$rpc_port"
rpc_secret = "$(python3 -c 'import secrets; print(secrets.token_hex(32))')"

[s3_api]
api_bind_addr = "127.0.0.1:$s3_port"
s3_region = "garage"

[s3_web]
bind_addr = "127.0.0.1:$web_port"
root_domain = ".web.garage.localhost"
EOF
  WEB_ENDPOINT=http://127.0.0.1:$web_port
  chmod 600 "$dir/garage.toml"
  RUST_LOG=${RUST_LOG:-garage=info} "$GARAGE_BIN" -c "$dir/garage.toml" server --single-node \
    > "$dir/stdout" 2> "$dir/stderr" &
  GARAGE_PID=$!
  SERVER_DIR=$dir

  # The credentials are printed once the node is bootstrapped (layout, key, bucket).
  local i
  for i in $(seq 1 300); do
    if grep -q '^  Secret key:' "$dir/stdout" 2>/dev/null; then break; fi
    if ! kill -0 "$GARAGE_PID" 2>/dev/null; then
      echo "error: the garage server exited during startup; its log:" >&2
      tail -30 "$dir/stderr" >&2
      return 1
    fi
    sleep 0.2
  done
  field() { sed -n "s/^  $1: *//p" "$dir/stdout" | head -1; }
  S3_ENDPOINT=$(field 'S3 endpoint')
  S3_REGION=$(field 'Region')
  S3_KEY_ID=$(field 'Access key id')
  S3_SECRET=$(field 'Secret key')
  S3_BUCKET=$(field 'Bucket')
  if [ -z "$S3_KEY_ID" ] || [ -z "$S3_SECRET" ] || [ -z "$S3_ENDPOINT" ]; then
    echo "error: the server did not print its credentials within 60 s; stdout:" >&2
    cat "$dir/stdout" >&2
    tail -30 "$dir/stderr" >&2
    return 1
  fi
  # Then S3 must answer over HTTP (any status: an unsigned request gets 403 AccessDenied).
  for i in $(seq 1 100); do
    if python3 - "$S3_ENDPOINT" <<'EOF' 2>/dev/null; then return 0; fi
import sys, urllib.request, urllib.error
try:
    urllib.request.urlopen(sys.argv[1] + "/", timeout=2)
except urllib.error.HTTPError:
    pass
EOF
    sleep 0.2
  done
  echo "error: $S3_ENDPOINT does not answer" >&2
  return 1
}

stop_server() {
  if [ -n "${GARAGE_PID:-}" ] && kill -0 "$GARAGE_PID" 2>/dev/null; then
    kill -TERM "$GARAGE_PID" 2>/dev/null || true
    local i
    for i in $(seq 1 50); do
      kill -0 "$GARAGE_PID" 2>/dev/null || break
      sleep 0.2
    done
    kill -KILL "$GARAGE_PID" 2>/dev/null || true
    wait "$GARAGE_PID" 2>/dev/null || true
  fi
  GARAGE_PID=
}
