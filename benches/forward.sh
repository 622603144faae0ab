#!/usr/bin/env bash
# What forwarding costs (issue 16, contract §7): the same requests sent by wrk, side by side in
# one run, straight to a FHIR server and to the gateway in front of it (`--upstream`), with the
# consult store off and on (a fresh SQLite file), at 1 and 16 connections, all on loopback
# (Debian: apt-get install wrk). The FHIR server is the one the tests use: Medplum's FHIR router
# over its in-memory repository (tests/support/fhir-upstream, Node >= 20.19; `npm ci` there).
#
# Requests (an accepted ServiceRequest, examples/xr/xr04-query-zygoma-fracture-accepted.json,
# with a placer identifier):
#   POST resent  every request the same order with `If-None-Exist` on its placer identifier:
#                the server finds the order it already has (200), so each request costs the
#                server the same (a search, no write) however many were sent;
#   POST new     each request a new placer identifier, `If-None-Exist` on it: a new order each
#                time (201); the server's repository grows during a row, so each row gets a
#                fresh server (and gateway);
#   GET read     GET /ServiceRequest/{id} of one order.
# wrk sends the very same requests (headers and body) to both; the gateway makes its own
# conditional create from the caller's If-None-Exist. For scale, the gateway without an
# upstream deciding the same POST (200, its decision) is the last row.
#   benches/forward.sh                     # release build
#   BIN=path/to/referral-gateway DURATION=10 benches/forward.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)"; exit 2; }
command -v node >/dev/null || { echo "node is not installed (Node >= 20.19 runs the FHIR server)"; exit 2; }
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet
  BIN=${CARGO_TARGET_DIR:-target}/release/referral-gateway
fi
support=tests/support/fhir-upstream
[ -d "$support/node_modules/@medplum/fhir-router" ] || (cd "$support" && npm ci --no-audit --no-fund >/dev/null)
duration=${DURATION:-8}
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
system=https://gp.example.org/orders

# The order: the accepted example with a placer identifier (a placeholder for "new").
python3 - "$tmp" "$system" <<'EOF'
import json, sys
tmp, system = sys.argv[1], sys.argv[2]
sr = json.load(open("examples/xr/xr04-query-zygoma-fracture-accepted.json"))
sr.pop("id", None)
def placed(value):
    s = dict(sr)
    s["identifier"] = [{"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "PLAC"}]},
                        "system": system, "value": value}]
    return s
json.dump(placed("BENCH-RESENT"), open(f"{tmp}/resent.json", "w"))
json.dump(placed("__PLACER__"), open(f"{tmp}/new.json", "w"))
EOF
condition="identifier=$system|BENCH-RESENT"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_listening() { # file
  for _ in $(seq 3000); do grep -q listening "$1" 2>/dev/null && return 0; sleep 0.01; done
  echo "did not start: $(cat "$1")"; exit 1
}

upstream=
start_upstream() { # sets $upstream
  local out="$tmp/up-$RANDOM"
  (cd "$support" && exec node server.js 0) > "$out" 2> "$out.err" &
  pids+=($!); up_pid=$!
  wait_listening "$out"
  upstream="http://$(sed -n 's/^listening on //p' "$out")"
}

gateway=
start_gateway() { # label store [serve flags...]; sets $gateway
  local label=$1 store=$2 port; shift 2
  port=$(free_port)
  "$BIN" serve --listen "127.0.0.1:$port" --store "$store" "$@" > "$tmp/gw-$label.out" 2> "$tmp/gw-$label.log" &
  pids+=($!); gw_pid=$!
  wait_listening "$tmp/gw-$label.out"
  gateway="http://127.0.0.1:$port"
}

stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

declare -A p50_of
# One row: label request conns url [env...]
row() {
  local target=$1 request=$2 c=$3 url=$4; shift 4
  local threads=2 line rps p50 p99 p999 diff=""
  [ "$c" -lt 2 ] && threads=1
  env RUN=warm-$RANDOM "$@" wrk -t"$threads" -c"$c" -d1s -s benches/forward.lua "$url" > /dev/null
  line=$(env RUN=main-$RANDOM "$@" wrk -t"$threads" -c"$c" -d"${duration}s" --latency -s benches/forward.lua "$url" | grep RESULT)
  rps=$(sed -n 's/.*rps=\([0-9]*\).*/\1/p' <<< "$line")
  p50=$(sed -n 's/.* p50=\([0-9.]*\).*/\1/p' <<< "$line")
  p99=$(sed -n 's/.* p99=\([0-9.]*\).*/\1/p' <<< "$line")
  p999=$(sed -n 's/.* p999=\([0-9.]*\).*/\1/p' <<< "$line")
  grep -q 'status400plus=0 connect=0 read=0 write=0 timeout=0' <<< "$line" || echo "errors: $line"
  if [ "$target" = server ]; then
    p50_of["$request/$c"]=$p50
  elif [ -n "${p50_of["$request/$c"]:-}" ]; then
    diff=$(python3 -c "print(f'{$p50 - ${p50_of["$request/$c"]}:+.2f}')")
  fi
  printf "%-13s %-18s %4s %8s %8s %8s %8s %9s\n" "$request" "$target" "$c" "$rps" "$p50" "$p99" "$p999" "$diff"
}

status_of() { # curl args...: the status of one request
  curl -s -o /dev/null -w '%{http_code}' "$@"
}

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo); $(uname -sr); $(date -u +%FT%TZ); load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "binary: $BIN; node $(node --version); ${duration} s a row after a 1 s warm-up; wrk 1 thread at 1 connection, 2 at 16"
printf "%-13s %-18s %4s %8s %8s %8s %8s %9s\n" request target conn req/s p50_ms p99_ms p999_ms Δp50_ms

# Resent orders and reads: one server, the order on it, two gateways in front.
start_upstream
shared_up=$up_pid
post=(-X POST -H 'Content-Type: application/fhir+json' -H "If-None-Exist: $condition" --data-binary "@$tmp/resent.json")
first=$(status_of "${post[@]}" "$upstream/ServiceRequest")
id=$(curl -s "$upstream/ServiceRequest?identifier=$system|BENCH-RESENT" | python3 -c 'import json,sys; print(json.load(sys.stdin)["entry"][0]["resource"]["id"])')
start_gateway none none --upstream "$upstream"; gw_none=$gateway; gw_none_pid=$gw_pid
start_gateway sqlite "sqlite:$tmp/store.sqlite" --upstream "$upstream"; gw_sqlite=$gateway; gw_sqlite_pid=$gw_pid
echo "  the order created once on the server: $first; resent straight: $(status_of "${post[@]}" "$upstream/ServiceRequest"), through the gateway: $(status_of "${post[@]}" "$gw_none/ServiceRequest") (store none), $(status_of "${post[@]}" "$gw_sqlite/ServiceRequest") (SQLite); GET straight $(status_of "$upstream/ServiceRequest/$id"), through the gateway $(status_of "$gw_none/ServiceRequest/$id")"
for c in 1 16; do
  row server "POST resent" "$c" "$upstream/ServiceRequest" METHOD=POST BODY="$tmp/resent.json" PLACER=fixed CONDITION="$condition"
  row "gateway, no store" "POST resent" "$c" "$gw_none/ServiceRequest" METHOD=POST BODY="$tmp/resent.json" PLACER=fixed CONDITION="$condition"
  row "gateway, SQLite" "POST resent" "$c" "$gw_sqlite/ServiceRequest" METHOD=POST BODY="$tmp/resent.json" PLACER=fixed CONDITION="$condition"
done
for c in 1 16; do
  row server "GET read" "$c" "$upstream/ServiceRequest/$id" METHOD=GET
  row "gateway, no store" "GET read" "$c" "$gw_none/ServiceRequest/$id" METHOD=GET
  row "gateway, SQLite" "GET read" "$c" "$gw_sqlite/ServiceRequest/$id" METHOD=GET
done
held=$(curl -s "$upstream/ServiceRequest?_count=1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])')
echo "  the server holds $held ServiceRequest(s) after the resent rows"
stop "$gw_none_pid"; stop "$gw_sqlite_pid"; stop "$shared_up"

# New orders: a fresh server (and gateway) per row.
for c in 1 16; do
  for target in server none sqlite; do
    start_upstream
    url="$upstream/ServiceRequest"
    label=server
    if [ "$target" != server ]; then
      store=none; label="gateway, no store"
      [ "$target" = sqlite ] && store="sqlite:$tmp/new-$c.sqlite" && label="gateway, SQLite"
      start_gateway "new-$target-$c" "$store" --upstream "$upstream"
      url="$gateway/ServiceRequest"
    fi
    row "$label" "POST new" "$c" "$url" METHOD=POST BODY="$tmp/new.json" PLACER=fresh
    held=$(curl -s "$upstream/ServiceRequest?_count=1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])')
    echo "  ($held orders created on its server, warm-up included)"
    [ "$target" != server ] && stop "$gw_pid"
    stop "$up_pid"
  done
done

# The gateway alone (no upstream): the decision the forwarding comes on top of.
start_gateway alone none
echo "  without an upstream the same POST is answered $(status_of "${post[@]}" "$gateway/ServiceRequest") (the decision)"
for c in 1 16; do
  row "gateway alone" "POST decide" "$c" "$gateway/ServiceRequest" METHOD=POST BODY="$tmp/resent.json" PLACER=fixed CONDITION="$condition"
done
stop "$gw_pid"
echo "done: $(date -u +%FT%TZ); load average $(cut -d' ' -f1-3 /proc/loadavg)"
