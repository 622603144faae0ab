#!/usr/bin/env bash
# What authentication costs (issue 17): single-request throughput and latency with the bearer
# token check off and on, side by side in one run, at 16 and 64 connections, with wrk on
# loopback (Debian: apt-get install wrk). "On" is `--auth-issuer` with an `--auth-jwks` file
# (an RSA key made here with openssl) and every request carrying the same RS256 token, as a
# SMART Backend Services client reuses its token until it expires: after the first request
# each check is a lookup in the cache of verified tokens. No consult store (`--store none`), so
# that only the authentication differs.
#   benches/auth.sh                       # release build
#   BIN=path/to/referral-gateway DURATION=10 benches/auth.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)"; exit 2; }
command -v openssl >/dev/null || { echo "openssl is not installed"; exit 2; }
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet
  BIN=${CARGO_TARGET_DIR:-target}/release/referral-gateway
fi
duration=${DURATION:-8}
tmp=$(mktemp -d)
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
body=examples/xr/xr08-low-back-pain-loinc.json
issuer=https://idp.bench.test
audience=https://gateway.bench.test/fhir

# The issuer's key, its JWKS, and one access token signed with it (RS256).
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$tmp/key.pem" 2>/dev/null
modulus=$(openssl rsa -in "$tmp/key.pem" -noout -modulus | cut -d= -f2)
b64url() { python3 -c 'import base64,sys; print(base64.urlsafe_b64encode(sys.stdin.buffer.read()).rstrip(b"=").decode())'; }
n=$(printf '%s' "$modulus" | python3 -c 'import sys; sys.stdout.buffer.write(bytes.fromhex(sys.stdin.read().strip()))' | b64url)
printf '{"keys":[{"kty":"RSA","kid":"bench-1","alg":"RS256","use":"sig","n":"%s","e":"AQAB"}]}' "$n" > "$tmp/jwks.json"
now=$(date +%s)
header=$(printf '{"alg":"RS256","typ":"JWT","kid":"bench-1"}' | b64url)
claims=$(printf '{"iss":"%s","aud":"%s","sub":"bench-client","client_id":"bench-client","scope":"system/ServiceRequest.c","iat":%d,"exp":%d}' \
  "$issuer" "$audience" "$now" "$((now + 3600))" | b64url)
signature=$(printf '%s.%s' "$header" "$claims" | openssl dgst -sha256 -sign "$tmp/key.pem" -binary | b64url)
token="$header.$claims.$signature"

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo); $(uname -sr); $(date -u +%FT%TZ); load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "request: POST /ServiceRequest $body (rejected, 422); ${duration} s per run, 2 wrk threads"
printf "%-5s %-4s %10s %9s %9s %9s\n" auth conn req/s p50_ms p99_ms p999_ms

run() { # label [serve flags...] -- [wrk flags...]
  local label=$1; shift
  local serve=() wrkargs=() port
  while [ $# -gt 0 ] && [ "$1" != -- ]; do serve+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  wrkargs=("$@")
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  rm -f "$tmp/out"
  "$BIN" serve --listen "127.0.0.1:$port" --store none "${serve[@]}" > "$tmp/out" 2> "$tmp/log-$label" &
  pid=$!
  for _ in $(seq 500); do grep -q listening "$tmp/out" 2>/dev/null && break; sleep 0.01; done
  # The token is checked: without it 401, with it the rule's 422.
  local url="http://127.0.0.1:$port/ServiceRequest" status
  status=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/fhir+json' \
    "${wrkargs[@]}" --data-binary "@$body" "$url")
  echo "  $label: a request as wrk sends it is answered $status"
  if [ ${#wrkargs[@]} -gt 0 ]; then
    status=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/fhir+json' \
      --data-binary "@$body" "$url")
    echo "  $label: the same without the token is answered $status"
  fi
  BODY=$body wrk -t2 -c16 -d1s "${wrkargs[@]}" -s scripts/load/post.lua "$url" > /dev/null
  for c in 16 64; do
    local line rps p50 p99 p999
    line=$(BODY=$body wrk -t2 -c"$c" -d"${duration}s" --latency "${wrkargs[@]}" -s scripts/load/post.lua "$url" | grep RESULT)
    rps=$(sed -n 's/.*rps=\([0-9]*\).*/\1/p' <<< "$line")
    p50=$(sed -n 's/.* p50=\([0-9.]*\).*/\1/p' <<< "$line")
    p99=$(sed -n 's/.* p99=\([0-9.]*\).*/\1/p' <<< "$line")
    p999=$(sed -n 's/.* p999=\([0-9.]*\).*/\1/p' <<< "$line")
    grep -q 'connect=0 read=0 write=0 timeout=0' <<< "$line" || echo "socket errors or timeouts: $line"
    printf "%-5s %-4s %10s %9s %9s %9s\n" "$label" "$c" "$rps" "$p50" "$p99" "$p999"
  done
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
}

run off --
run on --auth-issuer "$issuer" --auth-jwks "$tmp/jwks.json" --auth-audience "$audience" -- \
  -H "Authorization: Bearer $token"
