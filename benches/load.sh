#!/usr/bin/env bash
# HTTP load on loopback against the release server, with wrk (Debian: apt-get install wrk).
# For a single ServiceRequest and a 100-entry batch Bundle, at 1, 16 and 64 connections:
# requests per second, p50 / p99 / p99.9 latency, then the server's peak RSS and its start-up
# time. Bounded: DURATION seconds per run (default 8), 2 wrk threads. The consult store is a
# fresh SQLite file unless STORE says otherwise (STORE=none, STORE=postgres://...).
#   benches/load.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)"; exit 2; }
# BIN: a release binary built elsewhere (e.g. with the project's build wrapper); else built here.
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet
fi
bin=${BIN:-${CARGO_TARGET_DIR:-target}/release/referral-gateway}
port=${PORT:-18081}
duration=${DURATION:-8}
tmp=$(mktemp -d)
start=$(date +%s%N)
"$bin" serve --listen "127.0.0.1:$port" --store "${STORE:-sqlite:$tmp/store.sqlite}" > "$tmp/out" 2> "$tmp/log" &
pid=$!
trap 'kill "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
for _ in $(seq 500); do grep -q listening "$tmp/out" && break; sleep 0.01; done
ready=$(date +%s%N)
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo); $(uname -sr)"
echo "start-up to 'listening': $(( (ready - start) / 1000000 )) ms (includes process start and rule/profile load)"
echo "RSS after start-up: $(awk '/VmRSS/ {print $2/1024 " MB"}' /proc/$pid/status)"

python3 - "$tmp/batch100.json" <<'PY'
import json, sys
sr = json.load(open("examples/xr/xr08-low-back-pain-loinc.json"))
entries = [{"fullUrl": "urn:uuid:00000000-0000-4000-8000-%012d" % i, "resource": sr,
            "request": {"method": "POST", "url": "ServiceRequest"}} for i in range(100)]
json.dump({"resourceType": "Bundle", "type": "batch", "entry": entries}, open(sys.argv[1], "w"))
PY

run() { # name body path connections
  local threads=2; [ "$4" -lt 2 ] && threads=1
  printf "%-28s c=%-3s " "$1" "$4"
  BODY="$2" wrk -t"$threads" -c"$4" -d"${duration}s" --latency -s scripts/load/post.lua \
    "http://127.0.0.1:$port$3" | grep RESULT
}
for c in 1 16 64; do
  run "single ServiceRequest (422)" examples/xr/xr08-low-back-pain-loinc.json /ServiceRequest "$c"
done
for c in 1 16 64; do
  run "100-entry batch Bundle" "$tmp/batch100.json" / "$c"
done
echo "server peak RSS: $(awk '/VmHWM/ {print $2/1024 " MB"}' /proc/$pid/status)"
