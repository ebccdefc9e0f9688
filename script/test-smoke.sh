#!/usr/bin/env bash
# Smoke test: real S3 clients (aws CLI, boto3, rclone, s3cmd, restic, curl for a browser-style
# POST form upload) and the website endpoint (curl) against a fresh single-node server, then a
# 3-node dev cluster (script/dev-cluster.sh) used through script/dev-env-*.sh.
#
#   bash script/test-smoke.sh          # GARAGE_BIN=path/to/garage to use a given binary
#
# Starts `garage server --single-node` in a temporary directory with a generated configuration
# on free loopback ports, runs every check (continuing after a failure), kills the server at
# exit, and ends with "N passed, M failed". Exit status 0 only if nothing failed.
#
# Every client is configured so that the large test files go through multipart uploads (aws CLI
# threshold 8 MB with 5 MB parts, boto3 TransferConfig likewise, rclone upload cutoff 10M, s3cmd
# 5 MB chunks) and the small ones through single PutObjects.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=script/lib-server.sh
. script/lib-server.sh

for tool in aws python3 cmp diff curl; do
  command -v "$tool" > /dev/null || { echo "error: $tool is required" >&2; exit 1; }
done
python3 -c 'import boto3' 2> /dev/null || { echo "error: python3 module boto3 is required (pip install boto3)" >&2; exit 1; }
for tool in rclone s3cmd restic; do
  if ! command -v $tool > /dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get > /dev/null; then
      echo "== $tool missing: apt-get install -y $tool"
      (apt-get install -y -qq $tool > /dev/null 2>&1) || { apt-get update -qq && apt-get install -y -qq $tool; }
    else
      echo "error: $tool is required (apt-get install $tool, as root)" >&2
      exit 1
    fi
  fi
done

garage_bin
export GARAGE_BIN

WORK=$(mktemp -d "${TMPDIR:-/tmp}/garage-smoke.XXXXXX")
PASS=0
FAIL=0
SKIP=0
FAILED=()
cleanup() {
  local rc=$?
  stop_server
  if [ -d "$WORK/dev" ]; then
    GARAGE_DEV_DIR=$WORK/dev bash script/dev-cluster.sh stop > /dev/null 2>&1 || true
  fi
  if [ "$FAIL" -gt 0 ] || [ "$rc" -ne 0 ]; then
    if [ -f "$WORK/server/stderr" ]; then
      echo "--- last lines of the server log ($WORK/server/stderr):" >&2
      tail -20 "$WORK/server/stderr" >&2
    fi
    echo "(work directory kept: $WORK)" >&2
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# check NAME COMMAND...: runs COMMAND in a subshell with errexit (so any failing step fails the
# check), shows its output only on failure, and counts the result.
check() {
  local name=$1
  shift
  set +e
  ( set -e; "$@" ) > "$WORK/check.log" 2>&1
  local rc=$?
  set -e
  if [ "$rc" -eq 0 ]; then
    PASS=$((PASS + 1))
    echo "  ok    $name"
  else
    FAIL=$((FAIL + 1))
    FAILED+=("$name")
    echo "  FAIL  $name (exit $rc)"
    sed 's/^/        | /' "$WORK/check.log" | tail -25
  fi
}

skip() {
  SKIP=$((SKIP + 1))
  echo "  SKIPPED ($1)"
}

# Note: `! cmd` never trips errexit, hence these helpers for negative checks.
# fails COMMAND...: the command must fail.
fails() {
  if "$@"; then
    echo "unexpectedly succeeded: $*"
    return 1
  fi
}

# lacks TEXT PATTERN: TEXT has no line matching the grep PATTERN.
lacks() {
  if grep -q -- "$2" <<< "$1"; then
    echo "unexpected match for [$2] in:"
    printf '%s\n' "$1"
    return 1
  fi
}

# has TEXT PATTERN: TEXT has a line matching the grep PATTERN (no pipe: no SIGPIPE with pipefail).
has() {
  if ! grep -q -- "$2" <<< "$1"; then
    echo "no match for [$2] in:"
    printf '%s\n' "$1"
    return 1
  fi
}

# expect_eq WHAT ACTUAL EXPECTED
expect_eq() {
  if [ "$2" != "$3" ]; then
    echo "$1: expected [$3], got [$2]"
    return 1
  fi
}

echo "== starting a single-node server"
start_single_node "$WORK/server"
echo "   endpoint $S3_ENDPOINT, region $S3_REGION, bucket $S3_BUCKET, pid $GARAGE_PID"

# Test data: a small text file, a 20 MiB random file, and a tree with nested directories,
# an empty file, names with spaces and non-ASCII characters, and a multi-block file.
DATA=$WORK/data
mkdir -p "$DATA/tree/a/b/c" "$DATA/tree/d e" "$DATA/tree/ünï"
echo "hello garage $(date)" > "$DATA/small.txt"
head -c $((20 << 20)) /dev/urandom > "$DATA/big.bin"
for i in 1 2 3; do echo "file $i" > "$DATA/tree/a/f$i.txt"; done
echo deep > "$DATA/tree/a/b/c/deep.txt"
: > "$DATA/tree/empty"
echo "spaces" > "$DATA/tree/d e/with space+plus.txt"
echo "unicode" > "$DATA/tree/ünï/ßé.txt"
head -c $((3 << 20)) /dev/urandom > "$DATA/tree/a/b/three-mib.bin"

# ---------------------------------------------------------------------------------------------
echo "== aws CLI ($(aws --version 2>&1 | cut -d' ' -f1))"
export AWS_ACCESS_KEY_ID=$S3_KEY_ID
export AWS_SECRET_ACCESS_KEY=$S3_SECRET
export AWS_DEFAULT_REGION=$S3_REGION
export AWS_SHARED_CREDENTIALS_FILE=$WORK/no-credentials
export AWS_EC2_METADATA_DISABLED=true
export AWS_PAGER=
export AWS_CONFIG_FILE=$WORK/aws-config
# Files above 8 MB go through multipart uploads of 5 MB parts.
cat > "$AWS_CONFIG_FILE" <<EOF
[default]
region = $S3_REGION
s3 =
  multipart_threshold = 8MB
  multipart_chunksize = 5MB
  addressing_style = path
EOF
awsc() { aws --endpoint-url "$S3_ENDPOINT" "$@"; }
B=$S3_BUCKET
OUT=$WORK/out
mkdir -p "$OUT"

t_cp_small() {
  awsc s3 cp "$DATA/small.txt" "s3://$B/cli/small.txt"
  awsc s3 cp "s3://$B/cli/small.txt" "$OUT/small.txt"
  cmp "$DATA/small.txt" "$OUT/small.txt"
}
t_cp_big() {
  awsc s3 cp "$DATA/big.bin" "s3://$B/cli/big.bin"
  awsc s3 cp "s3://$B/cli/big.bin" "$OUT/big.bin"
  cmp "$DATA/big.bin" "$OUT/big.bin"
}
t_cp_100() {
  # 100 MiB: a multipart upload of several parts; compared by SHA-256 after the round trip, and
  # the object's multipart ETag (-N suffix) checked.
  head -c $((100 << 20)) /dev/urandom > "$WORK/100MiB.bin"
  awsc s3 cp "$WORK/100MiB.bin" "s3://$B/cli/100MiB.bin"
  awsc s3 cp "s3://$B/cli/100MiB.bin" "$OUT/100MiB.bin"
  expect_eq "sha256 after the round trip" "$(sha256sum < "$OUT/100MiB.bin")" "$(sha256sum < "$WORK/100MiB.bin")"
  has "$(awsc s3api head-object --bucket "$B" --key cli/100MiB.bin)" '"ETag": "\\"[0-9a-f]*-[0-9]*\\""'
  awsc s3 rm "s3://$B/cli/100MiB.bin"
  rm -f "$WORK/100MiB.bin" "$OUT/100MiB.bin"
}
t_ls() {
  local out
  out=$(awsc s3 ls "s3://$B/cli/")
  echo "$out"
  has "$out" ' 20971520 big.bin$'
  has "$out" ' small.txt$'
  has "$(awsc s3 ls)" " $B\$"
}
t_rm() {
  awsc s3 rm "s3://$B/cli/small.txt"
  local out
  out=$(awsc s3 ls "s3://$B/cli/")
  lacks "$out" 'small.txt'
  fails awsc s3 cp "s3://$B/cli/small.txt" "$OUT/gone.txt" 2> /dev/null
}
t_sync() {
  awsc s3 sync "$DATA/tree" "s3://$B/tree"
  awsc s3 sync "s3://$B/tree" "$OUT/tree-cli"
  diff -r "$DATA/tree" "$OUT/tree-cli"
  # A second sync has nothing to do.
  local again
  again=$(awsc s3 sync "$DATA/tree" "s3://$B/tree")
  expect_eq "second sync output" "$again" ""
}
check "s3 cp small file up and down, cmp" t_cp_small
check "s3 cp 20 MiB file up and down, cmp" t_cp_big
check "s3 cp 100 MiB file (multipart) up and down, sha256 compared" t_cp_100
check "s3 ls (objects and buckets)" t_ls
check "s3 rm" t_rm
check "s3 sync a tree up and back, diff -r" t_sync

# s3api: explicit operations on a new bucket.
AB=smoke-api-$RANDOM
t_create_bucket() {
  awsc s3api create-bucket --bucket "$AB"
  awsc s3api head-bucket --bucket "$AB"
  local names
  names=$(awsc s3api list-buckets --query 'Buckets[].Name' --output text)
  has "$(tr '\t' '\n' <<< "$names")" "^$AB\$"
  expect_eq "location" "$(awsc s3api get-bucket-location --bucket "$AB" --query LocationConstraint --output text)" "$S3_REGION"
}
t_put_get_head() {
  awsc s3api put-object --bucket "$AB" --key dir/a.txt --body "$DATA/small.txt" \
    --content-type text/plain --metadata color=blue
  awsc s3api put-object --bucket "$AB" --key dir/sub/b.bin --body "$DATA/tree/a/b/three-mib.bin"
  awsc s3api put-object --bucket "$AB" --key dir/sub/c.txt --body "$DATA/tree/a/f1.txt"
  awsc s3api put-object --bucket "$AB" --key top.txt --body "$DATA/tree/a/f2.txt"
  awsc s3api get-object --bucket "$AB" --key dir/a.txt "$OUT/api-a.txt" > /dev/null
  cmp "$DATA/small.txt" "$OUT/api-a.txt"
  awsc s3api get-object --bucket "$AB" --key dir/sub/b.bin "$OUT/api-b.bin" > /dev/null
  cmp "$DATA/tree/a/b/three-mib.bin" "$OUT/api-b.bin"
  local h
  h=$(awsc s3api head-object --bucket "$AB" --key dir/a.txt \
    --query '[ContentLength, ContentType, Metadata.color, ETag]' --output text)
  local md5
  md5=$(python3 -c 'import hashlib,sys; print(hashlib.md5(open(sys.argv[1],"rb").read()).hexdigest())' "$DATA/small.txt")
  expect_eq "head-object" "$h" "$(stat -c %s "$DATA/small.txt")	text/plain	blue	\"$md5\""
  # A missing key is a 404.
  fails awsc s3api head-object --bucket "$AB" --key nope 2> "$OUT/err"
  grep -q '404' "$OUT/err"
}
t_list_v2() {
  local out
  # --no-paginate: the CLI's automatic pagination drops KeyCount from the merged result.
  out=$(awsc s3api list-objects-v2 --no-paginate --bucket "$AB" --prefix dir/ --delimiter / \
    --query '[join(`,`, Contents[].Key), join(`,`, CommonPrefixes[].Prefix), to_string(KeyCount)]' --output text)
  expect_eq "list-objects-v2 prefix+delimiter" "$out" "dir/a.txt	dir/sub/	2"
  out=$(awsc s3api list-objects-v2 --bucket "$AB" --delimiter / \
    --query '[join(`,`, Contents[].Key), join(`,`, CommonPrefixes[].Prefix)]' --output text)
  expect_eq "list-objects-v2 delimiter" "$out" "top.txt	dir/"
  # Pagination: one key per page, the CLI follows the continuation tokens.
  # (with pagination, --query applies to each page: one line per page)
  out=$(awsc s3api list-objects-v2 --bucket "$AB" --page-size 1 --query 'Contents[].Key' --output text)
  expect_eq "list-objects-v2 paginated" "$(tr -s '\t\n' '  ' <<< "$out" | xargs)" "dir/a.txt dir/sub/b.bin dir/sub/c.txt top.txt"
  out=$(awsc s3api list-objects --bucket "$AB" --prefix dir/sub/ --query 'join(`,`, Contents[].Key)' --output text)
  expect_eq "list-objects (v1)" "$out" "dir/sub/b.bin,dir/sub/c.txt"
}
t_copy() {
  awsc s3api copy-object --bucket "$AB" --key copies/b.bin --copy-source "$AB/dir/sub/b.bin"
  awsc s3api get-object --bucket "$AB" --key copies/b.bin "$OUT/api-copy.bin" > /dev/null
  cmp "$DATA/tree/a/b/three-mib.bin" "$OUT/api-copy.bin"
  awsc s3api copy-object --bucket "$AB" --key copies/a.txt --copy-source "$AB/dir/a.txt" \
    --metadata-directive REPLACE --metadata color=red --content-type text/x-test
  local h
  h=$(awsc s3api head-object --bucket "$AB" --key copies/a.txt --query '[ContentType, Metadata.color]' --output text)
  expect_eq "copy with REPLACE" "$h" "text/x-test	red"
}
t_delete_objects() {
  local out
  out=$(awsc s3api delete-objects --bucket "$AB" --delete \
    '{"Objects":[{"Key":"dir/a.txt"},{"Key":"dir/sub/b.bin"},{"Key":"dir/sub/c.txt"},{"Key":"top.txt"},{"Key":"copies/a.txt"},{"Key":"copies/b.bin"}]}' \
    --query 'length(Deleted)' --output text)
  expect_eq "deleted count" "$out" "6"
  out=$(awsc s3api list-objects-v2 --no-paginate --bucket "$AB" --query 'KeyCount' --output text)
  expect_eq "keys left" "$out" "0"
}
t_delete_bucket() {
  awsc s3api delete-bucket --bucket "$AB"
  fails awsc s3api head-bucket --bucket "$AB" 2> /dev/null
}
t_multipart() {
  # A 12 MB file: 3 parts of at most 5 MB; the ETag of a multipart object ends with -<parts>.
  head -c 12000000 /dev/urandom > "$OUT/mp.bin"
  awsc s3 cp --only-show-errors "$OUT/mp.bin" "s3://$B/mp.bin"
  etag=$(awsc s3api head-object --bucket "$B" --key mp.bin --query ETag --output text)
  case "$etag" in *-3*) ;; *) echo "unexpected ETag $etag"; return 1 ;; esac
  awsc s3 cp --only-show-errors "s3://$B/mp.bin" "$OUT/mp.back"
  cmp "$OUT/mp.bin" "$OUT/mp.back"
  awsc s3api get-object --bucket "$B" --key mp.bin --part-number 2 "$OUT/mp.p2" > /dev/null
  cmp <(head -c 10485760 "$OUT/mp.bin" | tail -c 5242880) "$OUT/mp.p2"
  up=$(awsc s3api create-multipart-upload --bucket "$B" --key aborted --query UploadId --output text)
  awsc s3api abort-multipart-upload --bucket "$B" --key aborted --upload-id "$up"
  fails awsc s3api list-parts --bucket "$B" --key aborted --upload-id "$up" 2> /dev/null
}
check "s3api create-bucket, head-bucket, list-buckets, get-bucket-location" t_create_bucket
check "s3api put-object, get-object, head-object (metadata, ETag, 404)" t_put_get_head
check "s3api list-objects-v2 (prefix, delimiter, pagination), list-objects" t_list_v2
check "s3api copy-object (COPY and REPLACE)" t_copy
check "s3api delete-objects" t_delete_objects
check "s3api delete-bucket" t_delete_bucket
check "multipart upload (aws s3 cp 12 MB), part GET, abort" t_multipart

# A browser-style POST form upload (PostObject), signed like a web page would be: the policy and
# its SigV4 signature come from a small python3 snippet, the form is sent by curl -F.
t_post_form() {
  local sign date cred policy sig code
  sign=$(python3 - "$S3_KEY_ID" "$S3_SECRET" "$S3_REGION" "$B" <<'PYEOF'
import base64, datetime, hashlib, hmac, json, sys
key_id, secret, region, bucket = sys.argv[1:5]
now = datetime.datetime.now(datetime.timezone.utc)
date = now.strftime("%Y%m%dT%H%M%SZ")
day = date[:8]
cred = "%s/%s/%s/s3/aws4_request" % (key_id, day, region)
policy = base64.b64encode(json.dumps({
    "expiration": (now + datetime.timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
    "conditions": [
        {"bucket": bucket}, ["starts-with", "$key", "form/"], {"success_action_status": "201"},
        ["starts-with", "$Content-Type", "text/"], ["content-length-range", 1, 1048576],
        {"x-amz-algorithm": "AWS4-HMAC-SHA256"}, {"x-amz-credential": cred}, {"x-amz-date": date},
    ],
}).encode()).decode()
k = ("AWS4" + secret).encode()
for part in (day, region, "s3", "aws4_request"):
    k = hmac.new(k, part.encode(), hashlib.sha256).digest()
print(date, cred, policy, hmac.new(k, policy.encode(), hashlib.sha256).hexdigest())
PYEOF
)
  read -r date cred policy sig <<< "$sign"
  post() {
    curl -sS -o "$OUT/post.xml" -w '%{http_code}' \
      -F 'key=form/${filename}' -F success_action_status=201 -F Content-Type=text/plain \
      -F x-amz-algorithm=AWS4-HMAC-SHA256 -F "x-amz-credential=$cred" -F "x-amz-date=$date" \
      -F "policy=$policy" -F "x-amz-signature=$1" -F "file=@$DATA/small.txt" "$S3_ENDPOINT/$B"
  }
  code=$(post "$sig")
  expect_eq "POST status" "$code" "201"
  has "$(cat "$OUT/post.xml")" "<Key>form/small.txt</Key>"
  awsc s3 cp "s3://$B/form/small.txt" "$OUT/form-small.txt"
  cmp "$DATA/small.txt" "$OUT/form-small.txt"
  expect_eq "content type" "$(awsc s3api head-object --bucket "$B" --key form/small.txt --query ContentType --output text)" "text/plain"
  # A wrong signature is refused.
  code=$(post "$(tr 0-9a-f 1-9a-f0 <<< "$sig")")
  expect_eq "POST with a bad signature" "$code" "403"
  has "$(cat "$OUT/post.xml")" "SignatureDoesNotMatch"
}
check "POST form upload (curl -F, python3-signed policy), read back" t_post_form

# ---------------------------------------------------------------------------------------------
echo "== boto3 $(python3 -c 'import boto3; print(boto3.__version__)')"
# The script prints one "ok"/"FAIL" line per step; each step counts as one check.
set +e
python3 - "$S3_ENDPOINT" "$S3_REGION" "$S3_KEY_ID" "$S3_SECRET" "$DATA" "$OUT" > "$WORK/boto3.log" 2>&1 <<'PYEOF'
import filecmp, hashlib, os, sys, traceback, urllib.request
import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

endpoint, region, key_id, secret, data, out = sys.argv[1:7]
s3 = boto3.client(
    "s3", endpoint_url=endpoint, region_name=region,
    aws_access_key_id=key_id, aws_secret_access_key=secret,
    config=Config(signature_version="s3v4", s3={"addressing_style": "path"},
                  retries={"max_attempts": 2}),
)
# Multipart above 8 MB, in 5 MB parts.
single_put = TransferConfig(multipart_threshold=8 * 1024**2, multipart_chunksize=5 * 1024**2)
bucket = "smoke-boto3-%d" % os.getpid()
failed = 0

def step(name):
    def wrap(f):
        global failed
        try:
            f()
            print("  ok    %s" % name)
        except Exception:
            failed += 1
            print("  FAIL  %s" % name)
            for line in traceback.format_exc().splitlines()[-8:]:
                print("        | " + line)
        return f
    return wrap

@step("boto3 create_bucket, head_bucket, list_buckets")
def _():
    s3.create_bucket(Bucket=bucket)
    s3.head_bucket(Bucket=bucket)
    assert bucket in [b["Name"] for b in s3.list_buckets()["Buckets"]]

@step("boto3 put_object/get_object/head_object (bytes, metadata)")
def _():
    body = b"x" * 5000 + b"boto3"
    r = s3.put_object(Bucket=bucket, Key="p/one.txt", Body=body, Metadata={"k": "v"},
                      ContentType="text/plain")
    assert r["ETag"] == '"%s"' % hashlib.md5(body).hexdigest(), r["ETag"]
    g = s3.get_object(Bucket=bucket, Key="p/one.txt")
    assert g["Body"].read() == body
    h = s3.head_object(Bucket=bucket, Key="p/one.txt")
    assert h["ContentLength"] == len(body) and h["Metadata"] == {"k": "v"}, h
    assert h["ContentType"] == "text/plain", h["ContentType"]
    r = s3.get_object(Bucket=bucket, Key="p/one.txt", Range="bytes=4998-5002")
    assert r["Body"].read() == b"xxbot", "range"

@step("boto3 upload_file/download_file 20 MiB (multipart), compare")
def _():
    s3.upload_file(os.path.join(data, "big.bin"), bucket, "p/big.bin", Config=single_put)
    s3.download_file(bucket, "p/big.bin", os.path.join(out, "boto3-big.bin"), Config=single_put)
    assert filecmp.cmp(os.path.join(data, "big.bin"), os.path.join(out, "boto3-big.bin"), shallow=False)

@step("boto3 list_objects_v2 prefix+delimiter, paginator")
def _():
    for k in ["p/sub/a", "p/sub/b", "q/c"]:
        s3.put_object(Bucket=bucket, Key=k, Body=k.encode())
    r = s3.list_objects_v2(Bucket=bucket, Prefix="p/", Delimiter="/")
    assert [o["Key"] for o in r["Contents"]] == ["p/big.bin", "p/one.txt"], r
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["p/sub/"], r
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, PaginationConfig={"PageSize": 2}):
        keys += [o["Key"] for o in page.get("Contents", [])]
    assert keys == ["p/big.bin", "p/one.txt", "p/sub/a", "p/sub/b", "q/c"], keys

@step("boto3 copy_object")
def _():
    s3.copy_object(Bucket=bucket, Key="copy/big.bin", CopySource={"Bucket": bucket, "Key": "p/big.bin"})
    g = s3.get_object(Bucket=bucket, Key="copy/big.bin")
    h = hashlib.sha256()
    for chunk in g["Body"].iter_chunks(1 << 20):
        h.update(chunk)
    with open(os.path.join(data, "big.bin"), "rb") as f:
        assert h.hexdigest() == hashlib.sha256(f.read()).hexdigest()

@step("boto3 presigned GET URL fetched with urllib (and a tampered one refused)")
def _():
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "p/one.txt"}, ExpiresIn=300)
    with urllib.request.urlopen(url, timeout=10) as r:
        assert r.read() == b"x" * 5000 + b"boto3"
    bad = url.replace("p/one.txt", "p/sub/a")
    try:
        urllib.request.urlopen(bad, timeout=10)
        raise AssertionError("tampered presigned URL accepted")
    except urllib.error.HTTPError as e:
        assert e.code == 403, e.code

@step("boto3 delete_object, delete_objects, delete_bucket")
def _():
    s3.delete_object(Bucket=bucket, Key="q/c")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    r = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys]})
    assert len(r["Deleted"]) == len(keys) and not r.get("Errors"), r
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0
    s3.delete_bucket(Bucket=bucket)
    try:
        s3.head_bucket(Bucket=bucket)
        raise AssertionError("bucket still exists")
    except s3.exceptions.ClientError as e:
        assert e.response["Error"]["Code"] in ("404", "NoSuchBucket"), e.response

sys.exit(1 if failed else 0)
PYEOF
boto_rc=$?
set -e
cat "$WORK/boto3.log"
n_ok=$(grep -c '^  ok ' "$WORK/boto3.log" || true)
n_fail=$(grep -c '^  FAIL ' "$WORK/boto3.log" || true)
PASS=$((PASS + n_ok))
FAIL=$((FAIL + n_fail))
if [ "$boto_rc" -ne 0 ] && [ "$n_fail" -eq 0 ]; then
  FAIL=$((FAIL + 1))
  FAILED+=("boto3 script (exit $boto_rc)")
  echo "  FAIL  boto3 script exited with $boto_rc"
elif [ "$n_fail" -gt 0 ]; then
  FAILED+=("$n_fail boto3 step(s)")
fi

# ---------------------------------------------------------------------------------------------
echo "== rclone ($(rclone version 2>/dev/null | head -1))"
# The remote "garage:" is configured entirely through the environment.
export RCLONE_CONFIG=$WORK/rclone.conf
: > "$RCLONE_CONFIG"
export RCLONE_CONFIG_GARAGE_TYPE=s3
export RCLONE_CONFIG_GARAGE_PROVIDER=Other
export RCLONE_CONFIG_GARAGE_ENDPOINT=$S3_ENDPOINT
export RCLONE_CONFIG_GARAGE_REGION=$S3_REGION
export RCLONE_CONFIG_GARAGE_ACCESS_KEY_ID=$S3_KEY_ID
export RCLONE_CONFIG_GARAGE_SECRET_ACCESS_KEY=$S3_SECRET
export RCLONE_CONFIG_GARAGE_FORCE_PATH_STYLE=true
# Files above 10M go through multipart uploads of 5M chunks.
export RCLONE_CONFIG_GARAGE_UPLOAD_CUTOFF=10M
export RCLONE_CONFIG_GARAGE_CHUNK_SIZE=5M
# rclone's AWS SDK refuses to start when AWS_CA_BUNDLE is set (LoadCustomCABundleError with its
# own HTTP transport); the endpoint is plain HTTP, so drop it.
rcl() { env -u AWS_CA_BUNDLE rclone --retries 1 --low-level-retries 2 "$@"; }
RB=smoke-rclone-$RANDOM

t_rclone_copy() {
  rcl mkdir "garage:$RB"
  rcl copy "$DATA/tree" "garage:$RB/tree"
  rcl copy "$DATA/big.bin" "garage:$RB/"
  rcl copy "garage:$RB/tree" "$OUT/tree-rclone"
  diff -r "$DATA/tree" "$OUT/tree-rclone"
  rcl copy "garage:$RB/big.bin" "$OUT/rclone/"
  cmp "$DATA/big.bin" "$OUT/rclone/big.bin"
}
t_rclone_ls() {
  local out
  out=$(rcl ls "garage:$RB")
  echo "$out"
  has "$out" ' 20971520 big.bin$'
  has "$out" ' tree/a/b/c/deep.txt$'
  has "$out" ' tree/d e/with space+plus.txt$'
  expect_eq "object count" "$(echo "$out" | wc -l)" "9"
  local dirs
  dirs=$(rcl lsd "garage:")
  has "$dirs" " $RB\$"
}
t_rclone_check() {
  rcl check "$DATA/tree" "garage:$RB/tree"
  # And check notices a difference.
  cp -r "$DATA/tree" "$OUT/tree-changed"
  echo changed > "$OUT/tree-changed/a/f1.txt"
  fails rcl check "$OUT/tree-changed" "garage:$RB/tree" 2> /dev/null
}
t_rclone_sync() {
  # Modify, add and remove files locally, sync, and compare both ways.
  cp -r "$DATA/tree" "$OUT/tree-sync"
  echo "modified" > "$OUT/tree-sync/a/f2.txt"
  rm "$OUT/tree-sync/a/f3.txt"
  mkdir -p "$OUT/tree-sync/new/dir"
  echo "new" > "$OUT/tree-sync/new/dir/n.txt"
  rcl sync "$OUT/tree-sync" "garage:$RB/tree"
  rcl check "$OUT/tree-sync" "garage:$RB/tree"
  rcl sync "garage:$RB/tree" "$OUT/tree-sync-back"
  diff -r "$OUT/tree-sync" "$OUT/tree-sync-back"
  lacks "$(rcl ls "garage:$RB/tree")" 'a/f3.txt'
}
t_rclone_delete() {
  rcl delete "garage:$RB/tree" --include '*.txt'
  local out
  out=$(rcl ls "garage:$RB")
  lacks "$out" '\.txt$'
  has "$out" ' big.bin$'
  rcl purge "garage:$RB"
  lacks "$(rcl lsd "garage:")" " $RB\$"
}
check "rclone mkdir + copy (tree and 20 MiB file) up and back, diff -r / cmp" t_rclone_copy
check "rclone ls / lsd" t_rclone_ls
check "rclone check (equal, then a difference detected)" t_rclone_check
check "rclone sync (modified, added, removed files) and back" t_rclone_sync
check "rclone delete --include, purge" t_rclone_delete

# ---------------------------------------------------------------------------------------------
echo "== s3cmd ($(s3cmd --version 2>&1))"
# The configuration comes from script/dev-env-s3cmd.sh, fed the single node's credentials in
# the state-file format of script/dev-cluster.sh.
cat > "$WORK/server/env" << EOF
GARAGE_DEV_DIR='$WORK/server'
GARAGE_CONFIG_FILE='$WORK/server/garage.toml'
GARAGE_S3_ENDPOINT='$S3_ENDPOINT'
GARAGE_S3_ENDPOINTS='$S3_ENDPOINT'
GARAGE_WEB_ENDPOINT='$WEB_ENDPOINT'
GARAGE_REGION='$S3_REGION'
GARAGE_KEY_ID='$S3_KEY_ID'
GARAGE_SECRET='$S3_SECRET'
GARAGE_BUCKET='$S3_BUCKET'
EOF
GARAGE_DEV_DIR=$WORK/server . script/dev-env-s3cmd.sh > /dev/null
s3c() { s3cmd --no-progress --multipart-chunk-size-mb=5 "$@"; }
SB=smoke-s3cmd-$RANDOM

t_s3cmd_mb_ls() {
  s3c mb "s3://$SB"
  has "$(s3c ls)" "s3://$SB\$"
  has "$(s3c ls)" "s3://$B\$"
}
t_s3cmd_put_get() {
  s3c put "$DATA/small.txt" "s3://$SB/small.txt"
  s3c put "$DATA/big.bin" "s3://$SB/big.bin"
  s3c get "s3://$SB/small.txt" "$OUT/s3cmd-small.txt"
  s3c get "s3://$SB/big.bin" "$OUT/s3cmd-big.bin"
  cmp "$DATA/small.txt" "$OUT/s3cmd-small.txt"
  cmp "$DATA/big.bin" "$OUT/s3cmd-big.bin"
  # 20 MiB in 5 MiB chunks: a multipart upload of 4 parts (its ETag ends with -4).
  local etag
  etag=$(awsc s3api head-object --bucket "$SB" --key big.bin --query ETag --output text)
  case "$etag" in *-4*) ;; *) echo "not a 4-part upload: ETag $etag"; return 1 ;; esac
  has "$(s3c info "s3://$SB/big.bin")" 'File size: *20971520$'
  local out
  out=$(s3c ls "s3://$SB/")
  echo "$out"
  has "$out" " 20971520 *s3://$SB/big.bin\$"
  has "$out" "s3://$SB/small.txt\$"
}
t_s3cmd_sync() {
  s3c sync "$DATA/tree/" "s3://$SB/tree/"
  mkdir -p "$OUT/tree-s3cmd"
  s3c sync "s3://$SB/tree/" "$OUT/tree-s3cmd/"
  diff -r "$DATA/tree" "$OUT/tree-s3cmd"
  # A second sync uploads nothing.
  lacks "$(s3c sync "$DATA/tree/" "s3://$SB/tree/" 2>&1)" 'upload:'
}
t_s3cmd_del_rb() {
  s3c del "s3://$SB/small.txt"
  lacks "$(s3c ls "s3://$SB/")" 'small.txt'
  s3c del --recursive --force "s3://$SB/"
  s3c rb "s3://$SB"
  lacks "$(s3c ls)" "s3://$SB\$"
}
check "s3cmd mb, ls (buckets)" t_s3cmd_mb_ls
check "s3cmd put / get (small, 20 MiB multipart), cmp, ls" t_s3cmd_put_get
check "s3cmd sync a tree up and back, diff -r, idempotent" t_s3cmd_sync
check "s3cmd del, del --recursive, rb" t_s3cmd_del_rb

# ---------------------------------------------------------------------------------------------
echo "== restic ($(restic version 2>&1 | cut -d' ' -f1-2))"
# A repository under restic/ in the default bucket; a tree of a few MiB to back up.
RTREE=$WORK/restic-src
mkdir -p "$RTREE/docs/nested/deeper" "$RTREE/media" "$RTREE/empty-dir"
head -c $((4 << 20)) /dev/urandom > "$RTREE/media/random-4MiB.bin"
head -c $((1 << 20)) /dev/zero > "$RTREE/media/zeros-1MiB.bin"
for i in $(seq 1 40); do echo "document $i $RANDOM" > "$RTREE/docs/doc-$i.txt"; done
echo "deep" > "$RTREE/docs/nested/deeper/leaf.txt"
: > "$RTREE/docs/empty.txt"
ln -s docs/doc-1.txt "$RTREE/link-to-doc1"
rst() {
  env -u AWS_CA_BUNDLE \
    RESTIC_REPOSITORY="s3:$S3_ENDPOINT/$B/restic" RESTIC_PASSWORD=smoke-test-password \
    AWS_ACCESS_KEY_ID="$S3_KEY_ID" AWS_SECRET_ACCESS_KEY="$S3_SECRET" \
    restic --no-cache -o s3.region="$S3_REGION" "$@"
}
t_restic_init_backup() {
  rst init
  rst backup "$RTREE"
  # A second backup after a change: two snapshots.
  echo "changed" >> "$RTREE/docs/doc-2.txt"
  rst backup "$RTREE"
  expect_eq "snapshots" "$(rst snapshots --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" "2"
}
t_restic_check() {
  rst check --read-data
}
t_restic_restore() {
  rst restore latest --target "$OUT/restic-restore"
  diff -r --no-dereference "$RTREE" "$OUT/restic-restore$RTREE"
}
check "restic init, backup twice, snapshots" t_restic_init_backup
check "restic check --read-data" t_restic_check
check "restic restore latest, diff -r" t_restic_restore

# ---------------------------------------------------------------------------------------------
echo "== website endpoint (curl, Host headers)"
WB=smoke-web-$RANDOM
WEB_HOST=$WB.web.garage.localhost
gcli() { "$GARAGE_BIN" -c "$WORK/server/garage.toml" "$@"; }
# http_get HOST PATH OUTFILE: prints the status code.
http_get() { curl -sS -o "$3" -w '%{http_code}' -H "Host: $1" "$WEB_ENDPOINT$2"; }
t_website_setup() {
  awsc s3api create-bucket --bucket "$WB"
  echo "<h1>home of $WB</h1>" > "$OUT/index.html"
  echo "<h1>sub folder</h1>" > "$OUT/sub-index.html"
  echo "<h1>nothing here</h1>" > "$OUT/error.html"
  awsc s3 cp --content-type text/html "$OUT/index.html" "s3://$WB/index.html"
  awsc s3 cp --content-type text/html "$OUT/sub-index.html" "s3://$WB/sub/index.html"
  awsc s3 cp --content-type text/html "$OUT/error.html" "s3://$WB/error.html"
  # Not yet a website: 404.
  expect_eq "status before --allow" "$(http_get "$WEB_HOST" / "$OUT/w0")" "404"
  gcli bucket website --allow -e error.html "$WB"
  has "$(gcli bucket info "$WB")" '[Ww]ebsite'
}
t_website_index() {
  expect_eq "status /" "$(http_get "$WEB_HOST" / "$OUT/w1")" "200"
  cmp "$OUT/index.html" "$OUT/w1"
  # The port in the Host header is ignored; the sub-folder index is served too.
  expect_eq "status / with port" "$(http_get "$WEB_HOST:8080" / "$OUT/w2")" "200"
  expect_eq "status /sub/" "$(http_get "$WEB_HOST" /sub/ "$OUT/w3")" "200"
  cmp "$OUT/sub-index.html" "$OUT/w3"
  expect_eq "status /index.html" "$(http_get "$WEB_HOST" /index.html "$OUT/w4")" "200"
  has "$(curl -sS -D - -o /dev/null -H "Host: $WEB_HOST" "$WEB_ENDPOINT/")" '^[Cc]ontent-[Tt]ype: text/html'
}
t_website_404() {
  expect_eq "status /no/such/page" "$(http_get "$WEB_HOST" /no/such/page "$OUT/w5")" "404"
  cmp "$OUT/error.html" "$OUT/w5"
  # An unknown bucket, and a bucket without website access, are 404 too.
  expect_eq "unknown host" "$(http_get "no-such-bucket-$RANDOM.web.garage.localhost" / "$OUT/w6")" "404"
  expect_eq "bucket without website" "$(http_get "$B.web.garage.localhost" / "$OUT/w7")" "404"
}
t_website_alias_domain() {
  # A global alias that is a domain name selects the bucket by itself.
  gcli bucket alias "$WB" "www.$WB.example"
  expect_eq "status / by alias" "$(http_get "www.$WB.example" / "$OUT/w8")" "200"
  cmp "$OUT/index.html" "$OUT/w8"
  gcli bucket website --deny "$WB"
  expect_eq "status after --deny" "$(http_get "$WEB_HOST" / "$OUT/w9")" "404"
}
t_website_s3() {
  # The same setting through S3 (PutBucketWebsite / GetBucketWebsite / DeleteBucketWebsite).
  awsc s3 website "s3://$WB" --index-document index.html --error-document error.html
  expect_eq "get-bucket-website" \
    "$(awsc s3api get-bucket-website --bucket "$WB" --query '[IndexDocument.Suffix, ErrorDocument.Key]' --output text)" \
    "index.html	error.html"
  expect_eq "status / after aws s3 website" "$(http_get "$WEB_HOST" / "$OUT/w10")" "200"
  cmp "$OUT/index.html" "$OUT/w10"
  expect_eq "status of a missing page" "$(http_get "$WEB_HOST" /missing "$OUT/w11")" "404"
  cmp "$OUT/error.html" "$OUT/w11"
  awsc s3api delete-bucket-website --bucket "$WB"
  expect_eq "status after delete-bucket-website" "$(http_get "$WEB_HOST" / "$OUT/w12")" "404"
}
check "website: bucket with index and error document, garage bucket website --allow" t_website_setup
check "website: index served (/, port in Host, sub-folder)" t_website_index
check "website: unknown path is 404 with the error document; unknown bucket 404" t_website_404
check "website: global alias as domain name; --deny" t_website_alias_domain
check "website: aws s3 website, get-bucket-website, delete-bucket-website" t_website_s3

# ---------------------------------------------------------------------------------------------
echo "== dev cluster (script/dev-cluster.sh, 3 nodes) and script/dev-env-*.sh"
export GARAGE_DEV_DIR=$WORK/dev
t_dev_cluster_start() {
  bash script/dev-cluster.sh start 3 > "$WORK/dev-cluster.log" 2>&1 || { cat "$WORK/dev-cluster.log"; return 1; }
  has "$(cat "$WORK/dev-cluster.log")" 'Secret key:'
  local st
  st=$(bash script/dev-cluster.sh status)
  echo "$st"
  for z in dc1 dc2 dc3; do has "$st" " $z "; done
}
t_dev_env_aws() {
  . script/dev-env-aws.sh
  echo "through node 1" > "$OUT/dev.txt"
  aws --endpoint-url "$GARAGE_S3_ENDPOINT" s3 cp "$OUT/dev.txt" "s3://$GARAGE_BUCKET/dev.txt"
  # Read it back through every node.
  local ep
  for ep in $GARAGE_S3_ENDPOINTS; do
    aws --endpoint-url "$ep" s3 cp "s3://$GARAGE_BUCKET/dev.txt" "$OUT/dev-back.txt"
    cmp "$OUT/dev.txt" "$OUT/dev-back.txt"
  done
}
t_dev_env_rclone() {
  . script/dev-env-rclone.sh
  has "$(rcl lsf "garage:$GARAGE_BUCKET")" '^dev.txt$'
}
t_dev_env_s3cmd() {
  . script/dev-env-s3cmd.sh
  has "$(s3cmd ls "s3://$GARAGE_BUCKET")" "s3://$GARAGE_BUCKET/dev.txt\$"
}
# The other clients through other nodes of the cluster: boto3 (node 3), restic (node 2).
t_dev_boto3() {
  . script/dev-env-aws.sh
  local ep3
  ep3=$(echo "$GARAGE_S3_ENDPOINTS" | awk '{print $3}')
  python3 - "$ep3" "$GARAGE_REGION" "$GARAGE_KEY_ID" "$GARAGE_SECRET" "$GARAGE_BUCKET" \
    "$DATA/big.bin" "$OUT/dev-boto3.bin" <<'PYEOF'
import sys, filecmp, boto3
from boto3.s3.transfer import TransferConfig
ep, region, key, secret, bucket, src, dst = sys.argv[1:]
s3 = boto3.client("s3", endpoint_url=ep, region_name=region, aws_access_key_id=key,
                  aws_secret_access_key=secret)
cfg = TransferConfig(multipart_threshold=8 << 20, multipart_chunksize=5 << 20)
s3.upload_file(src, bucket, "dev/boto3-big.bin", Config=cfg)
s3.download_file(bucket, "dev/boto3-big.bin", dst, Config=cfg)
assert filecmp.cmp(src, dst, shallow=False), "boto3 round trip through node 3"
PYEOF
}
t_dev_restic() {
  . script/dev-env-aws.sh
  local ep2
  ep2=$(echo "$GARAGE_S3_ENDPOINTS" | awk '{print $2}')
  drst() {
    env -u AWS_CA_BUNDLE RESTIC_REPOSITORY="s3:$ep2/$GARAGE_BUCKET/restic" \
      RESTIC_PASSWORD=smoke-test-password restic --no-cache -o s3.region="$GARAGE_REGION" "$@"
  }
  drst init
  drst backup "$RTREE"
  drst check --read-data
  drst restore latest --target "$OUT/dev-restic"
  diff -r --no-dereference "$RTREE" "$OUT/dev-restic$RTREE"
}
t_dev_cluster_restart() {
  bash script/dev-cluster.sh stop
  bash script/dev-cluster.sh start > /dev/null
  . script/dev-env-aws.sh
  local i
  # The restarted nodes need a moment to reconnect before a quorum read succeeds.
  for i in $(seq 1 60); do
    aws --endpoint-url "$GARAGE_S3_ENDPOINT" s3 cp "s3://$GARAGE_BUCKET/dev.txt" "$OUT/dev-restart.txt" 2> /dev/null && break
    sleep 0.5
  done
  cmp "$OUT/dev.txt" "$OUT/dev-restart.txt"
}
check "dev-cluster.sh start 3: zones dc1..dc3, key and bucket" t_dev_cluster_start
check "dev-env-aws.sh: put through node 1, get through every node" t_dev_env_aws
check "dev-env-rclone.sh: rclone lsf garage:" t_dev_env_rclone
check "dev-env-s3cmd.sh: s3cmd ls" t_dev_env_s3cmd
check "dev cluster: boto3 multipart upload and download through node 3" t_dev_boto3
check "dev cluster: restic init, backup, check --read-data, restore through node 2" t_dev_restic
check "dev-cluster.sh stop, start again: data kept" t_dev_cluster_restart

# ---------------------------------------------------------------------------------------------
echo "== server still running"
check "the server is alive and logged no panic" bash -c \
  "kill -0 $GARAGE_PID && ! grep -qi 'panicked' '$WORK/server/stderr'"
if [ -d "$WORK/dev" ]; then
  check "no dev cluster node logged a panic" bash -c "! grep -qi 'panicked' '$WORK'/dev/node*/log"
fi

echo
if [ "$FAIL" -gt 0 ]; then
  echo "Failed checks:"
  for f in "${FAILED[@]}"; do echo "  - $f"; done
fi
[ "$SKIP" -gt 0 ] && echo "$SKIP check(s) SKIPPED"
echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
