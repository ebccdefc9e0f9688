#!/usr/bin/env bash
# Benchmark of a fresh single-node release server with s3bench, plus:
# - the daemon's peak RSS during 32 concurrent 64 MiB uploads;
# - for the 1 MiB objects, writing and reading the same bytes as plain files in the same
#   filesystem (same count, same concurrency), and the ratio S3 / plain files.
#
#   bash script/bench-s3.sh
#
# Environment: SIZES (default 1KiB:300,1MiB:100,64MiB:16: fewer 64 MiB objects keep the run
# short), CONCURRENCY (default 1,32), LISTS (default 50), RSS_OBJECTS (default 32), GARAGE_BIN,
# S3BENCH_BIN. The whole run takes a few minutes on 2 cores and writes about 4 GiB to $TMPDIR.
# To measure another S3 server the same way, run s3bench directly (s3bench --help).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=script/lib-server.sh
. script/lib-server.sh

SIZES=${SIZES:-1KiB:300,1MiB:100,64MiB:16}
CONCURRENCY=${CONCURRENCY:-1,32}
LISTS=${LISTS:-50}
RSS_OBJECTS=${RSS_OBJECTS:-32}

garage_bin
S3BENCH_BIN=${S3BENCH_BIN:-$(dirname "$GARAGE_BIN")/s3bench}
if [ ! -x "$S3BENCH_BIN" ]; then
  echo "== $S3BENCH_BIN not found: cargo build --release --bin s3bench"
  cargo build --release --bin s3bench
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/garage-bench.XXXXXX")
POLL_PID=
cleanup() {
  [ -n "$POLL_PID" ] && kill "$POLL_PID" 2> /dev/null || true
  stop_server
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== starting a single-node release server ($GARAGE_BIN)"
RUST_LOG=garage=warn start_single_node "$WORK/server"
export AWS_ENDPOINT_URL=$S3_ENDPOINT AWS_REGION=$S3_REGION
export AWS_ACCESS_KEY_ID=$S3_KEY_ID AWS_SECRET_ACCESS_KEY=$S3_SECRET S3BENCH_BUCKET=$S3_BUCKET
echo "   $S3_ENDPOINT, bucket $S3_BUCKET, pid $GARAGE_PID; $(nproc) CPU(s); data in $WORK"
echo

CSV=$WORK/results.csv
"$S3BENCH_BIN" --sizes "$SIZES" --concurrency "$CONCURRENCY" --lists "$LISTS" --csv "$CSV"

# ---------------------------------------------------------------------------------------------
echo
echo "== daemon memory during $RSS_OBJECTS concurrent 64 MiB uploads"
status_kib() { sed -n "s/^$1:[[:space:]]*\([0-9]*\) kB/\1/p" "/proc/$GARAGE_PID/status"; }
RSS_BEFORE=$(status_kib VmRSS)
# Reset the peak (VmHWM) so that it covers this run only (needs Linux >= 4.0 and permission).
HWM_RESET=no
if echo 5 > "/proc/$GARAGE_PID/clear_refs" 2> /dev/null; then HWM_RESET=yes; fi
(
  peak=0
  while kill -0 "$GARAGE_PID" 2> /dev/null; do
    r=$(sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$GARAGE_PID/status" 2> /dev/null || echo 0)
    [ "${r:-0}" -gt "$peak" ] && peak=$r && echo "$peak" > "$WORK/rss-peak"
    sleep 0.05
  done
) &
POLL_PID=$!
"$S3BENCH_BIN" --sizes "64MiB:$RSS_OBJECTS" --concurrency "$RSS_OBJECTS" --ops put --prefix rss/ \
  | sed 's/^/   /'
kill "$POLL_PID" 2> /dev/null || true
wait "$POLL_PID" 2> /dev/null || true
POLL_PID=
RSS_POLLED=$(cat "$WORK/rss-peak" 2> /dev/null || echo 0)
HWM=$(status_kib VmHWM)
"$S3BENCH_BIN" --sizes "64MiB:$RSS_OBJECTS" --concurrency "$RSS_OBJECTS" --ops delete --prefix rss/ > /dev/null
echo "   daemon RSS before: $((RSS_BEFORE / 1024)) MiB; peak during the uploads: $((RSS_POLLED / 1024)) MiB (polled every 50 ms), VmHWM $((HWM / 1024)) MiB (reset before the run: $HWM_RESET)"
echo "   ($RSS_OBJECTS x 64 MiB = $((RSS_OBJECTS * 64)) MiB in flight; the daemon holds a few blocks per upload, not whole objects)"

# ---------------------------------------------------------------------------------------------
echo
echo "== 1 MiB objects: S3 vs plain files (same bytes, same count, same concurrency, same filesystem)"
python3 - "$CSV" "$WORK/files" <<'EOF'
import csv, os, sys, time
from concurrent.futures import ThreadPoolExecutor

results, root = sys.argv[1], sys.argv[2]
rows = [r for r in csv.DictReader(open(results)) if int(r["size"]) == 1 << 20]
if not rows:
    print("   (no 1 MiB results)")
    sys.exit(0)
pool = os.urandom(8 << 20)

def measure(count, conc):
    os.makedirs(root, exist_ok=True)
    def write(i):
        off = (i * 7919 * 4096) % (len(pool) - (1 << 20))
        data = i.to_bytes(16, "little") + pool[off + 16 : off + (1 << 20)]
        with open(os.path.join(root, "%08d" % i), "wb") as f:
            f.write(data)
    def read(i):
        with open(os.path.join(root, "%08d" % i), "rb") as f:
            n = 0
            while True:
                b = f.read(1 << 18)
                if not b:
                    return n
                n += len(b)
    out = {}
    with ThreadPoolExecutor(conc) as ex:
        t = time.perf_counter(); list(ex.map(write, range(count))); out["PUT"] = time.perf_counter() - t
        t = time.perf_counter(); list(ex.map(read, range(count))); out["GET"] = time.perf_counter() - t
    for i in range(count):
        os.unlink(os.path.join(root, "%08d" % i))
    return {op: count / s for op, s in out.items()}  # MiB/s (1 MiB per object)

print("   %-4s %5s %6s %12s %14s %8s" % ("op", "conc", "count", "S3 MiB/s", "files MiB/s", "ratio"))
for r in rows:
    if r["op"] not in ("PUT", "GET"):
        continue
    count, conc = int(r["ops"]), int(r["concurrency"])
    if count == 0:
        continue
    files = measure(count, conc)[r["op"]]
    s3 = float(r["mib_per_s"])
    print("   %-4s %5d %6d %12.1f %14.1f %7.1f%%" % (r["op"], conc, count, s3, files, 100 * s3 / files))
print("   (plain files: Python threads writing/reading 1 MiB files without fsync, like the daemon")
print("    with data_fsync = false; reads come from the page cache in both cases)")
EOF
