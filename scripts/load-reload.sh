#!/usr/bin/env bash
# Load and reload (issue 8): steady load on loopback for DURATION seconds (default 60) while
# the rules are reloaded (SIGHUP) every RELOAD_EVERY seconds (default 3), alternately a good
# change (rule US05 switched between reject and warn) and a broken rule file. Checks zero 5xx,
# zero dropped connections, every response a FHIR resource, every decision consistent with the
# rules in force, and RSS stable. Bounded: CONNECTIONS (default 8) keep-alive connections,
# at most MAX_REQUESTS (default 2,000,000) requests, DURATION seconds.
#   scripts/load-reload.sh                    # release build
#   BIN=target/debug/referral-gateway scripts/load-reload.sh
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet
  BIN=${CARGO_TARGET_DIR:-target}/release/referral-gateway
fi
tmp=$(mktemp -d)
cp -r rules "$tmp/rules"
"$BIN" serve --listen 127.0.0.1:0 --store "sqlite:$tmp/store.sqlite" --rules "$tmp/rules" --log-format json > "$tmp/out" 2> "$tmp/log" &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$tmp"' EXIT
for _ in $(seq 100); do grep -q listening "$tmp/out" && break; sleep 0.1; done
addr=$(sed -n 's/^listening on //p' "$tmp/out")
[ -n "$addr" ] || { echo "the gateway did not start"; cat "$tmp/log"; exit 2; }
status=0
python3 scripts/load/reload_driver.py --addr "$addr" --pid "$pid" --rules "$tmp/rules" \
  --duration "${DURATION:-60}" --reload-every "${RELOAD_EVERY:-3}" \
  --connections "${CONNECTIONS:-8}" --max-requests "${MAX_REQUESTS:-2000000}" || status=$?
echo "server log: $(wc -l < "$tmp/log") lines, $(grep -c 'rule file error' "$tmp/log" || true) rule file errors reported, $(grep -c '"rules reloaded"' "$tmp/log" || true) reloads logged"
exit $status
