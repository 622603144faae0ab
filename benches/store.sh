#!/usr/bin/env bash
# What the consult record costs (issue 15): single-request throughput and latency with the
# store off, on SQLite and on PostgreSQL, side by side in one run, at 16 and 64 connections,
# with wrk on loopback (Debian: apt-get install wrk). Each store is fresh: a new SQLite file, a
# new PostgreSQL database (dropped afterwards) on 127.0.0.1:5432 (or $PG_ADMIN_URL's server;
# psql must reach it). Every request is a new consult (no placer identifier, so no retries).
# Afterwards each store's consult count is printed.
#   benches/store.sh                      # release build
#   BIN=path/to/referral-gateway DURATION=10 benches/store.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)"; exit 2; }
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet
  BIN=${CARGO_TARGET_DIR:-target}/release/referral-gateway
fi
duration=${DURATION:-8}
pg_admin=${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
tmp=$(mktemp -d)
db="rg_bench_$$"
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null
  psql "$pg_admin" -qAtc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
body=examples/xr/xr08-low-back-pain-loinc.json

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo); $(uname -sr); $(date -u +%FT%TZ)"
echo "request: POST /ServiceRequest $body (rejected, 422); ${duration} s per run, 2 wrk threads"
printf "%-12s %-4s %10s %9s %9s %9s\n" store conn req/s p50_ms p99_ms p999_ms

run_store() { # label store-url
  local label=$1 store=$2 port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  rm -f "$tmp/out"
  "$BIN" serve --listen "127.0.0.1:$port" --store "$store" > "$tmp/out" 2> "$tmp/log-$label" &
  pid=$!
  for _ in $(seq 500); do grep -q listening "$tmp/out" 2>/dev/null && break; sleep 0.01; done
  # Warm-up: connections, the rule set's row, the first pages.
  BODY=$body wrk -t2 -c16 -d1s -s scripts/load/post.lua "http://127.0.0.1:$port/ServiceRequest" > /dev/null
  for c in 16 64; do
    local line rps p50 p99 p999
    line=$(BODY=$body wrk -t2 -c"$c" -d"${duration}s" --latency -s scripts/load/post.lua \
      "http://127.0.0.1:$port/ServiceRequest" | grep RESULT)
    rps=$(sed -n 's/.*rps=\([0-9]*\).*/\1/p' <<< "$line")
    p50=$(sed -n 's/.* p50=\([0-9.]*\).*/\1/p' <<< "$line")
    p99=$(sed -n 's/.* p99=\([0-9.]*\).*/\1/p' <<< "$line")
    p999=$(sed -n 's/.* p999=\([0-9.]*\).*/\1/p' <<< "$line")
    if grep -q 'connect=0 read=0 write=0 timeout=0' <<< "$line"; then :; else
      echo "socket errors or timeouts: $line"; fi
    printf "%-12s %-4s %10s %9s %9s %9s\n" "$label" "$c" "$rps" "$p50" "$p99" "$p999"
  done
  # The commit latency the requests waited for, from the gateway's own histogram.
  local metrics
  metrics=$(python3 -c 'import sys,urllib.request; print(urllib.request.urlopen(sys.argv[1]).read().decode())' \
    "http://127.0.0.1:$port/metrics")
  local commits sum
  commits=$(awk '/^referral_gateway_consult_commit_seconds_count/ {print $2}' <<< "$metrics")
  sum=$(awk '/^referral_gateway_consult_commit_seconds_sum/ {print $2}' <<< "$metrics")
  if [ -n "$commits" ] && [ "$commits" != 0 ]; then
    echo "  $label: $(awk '/^referral_gateway_consult_commit_failures_total/ {print $2}' <<< "$metrics") failed commits; mean wait for a commit $(python3 -c "print(round($sum/$commits*1000, 3))") ms over $commits requests"
  fi
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
}

run_store none none
run_store sqlite "sqlite:$tmp/store.sqlite"
sqlite3_count=$(python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("select count(*) from consults").fetchone()[0])' "$tmp/store.sqlite")
echo "  sqlite: $sqlite3_count consults recorded"
if psql "$pg_admin" -qAtc "CREATE DATABASE $db" >/dev/null 2>&1; then
  pg_url="${pg_admin%/*}/$db"
  run_store postgres "$pg_url"
  echo "  postgres: $(psql "$pg_url" -qAtc 'SELECT count(*) FROM consults') consults recorded"
else
  echo "postgres: skipped (no PostgreSQL at $pg_admin)"
fi
