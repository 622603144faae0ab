#!/usr/bin/env bash
# Load test on loopback: requests per second and latency percentiles of the release build.
# Needs wrk (Debian: apt-get install wrk). Bounded: 10 s per run, 2 threads, 32 connections.
#   scripts/load-test.sh            # single ServiceRequest, then a 100-entry batch Bundle
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)"; exit 2; }
cargo build --release --quiet
bin=${CARGO_TARGET_DIR:-target}/release/referral-gateway
port=${PORT:-18080}
tmp=$(mktemp -d)
"$bin" serve --listen "127.0.0.1:$port" > "$tmp/out" 2> "$tmp/log" &
pid=$!
trap 'kill "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
for _ in $(seq 50); do grep -q listening "$tmp/out" && break; sleep 0.1; done

python3 - "$tmp/batch100.json" <<'PY'
import json, sys
sr = json.load(open("examples/xr/xr08-low-back-pain-loinc.json"))
entries = [{"fullUrl": "urn:uuid:00000000-0000-4000-8000-%012d" % i, "resource": sr,
            "request": {"method": "POST", "url": "ServiceRequest"}} for i in range(100)]
json.dump({"resourceType": "Bundle", "type": "batch", "entry": entries}, open(sys.argv[1], "w"))
PY

echo "== single ServiceRequest (examples/xr/xr08-low-back-pain-loinc.json, answered 422)"
BODY=examples/xr/xr08-low-back-pain-loinc.json wrk -t2 -c32 -d10s --latency -s scripts/load/post.lua "http://127.0.0.1:$port/ServiceRequest"
echo "== 100-entry batch Bundle"
BODY="$tmp/batch100.json" wrk -t2 -c32 -d10s --latency -s scripts/load/post.lua "http://127.0.0.1:$port/"
