#!/usr/bin/env bash
# The gateway's `check` beside two FHIR libraries on the same ServiceRequests, in one run
# (issue 19, target 2): FHIR.js (npm `fhir`, structure validation against the R4 definitions)
# and fhir.resources (PyPI, pydantic models). Each reads, parses and validates every file; the
# gateway also runs the profile checks and the guidance rules and writes its answer.
# Prints microseconds per ServiceRequest and the ratios. Installs the peers from the package
# registries on first use (benches/peers/node_modules, a venv in $PEERS_VENV).
#
#   benches/peers/run.sh [COPIES]     COPIES: how often each example is repeated (default 100)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
copies=${1:-100}
bin=${REFERRAL_GATEWAY_BIN:-$repo/target/release/referral-gateway}
venv=${PEERS_VENV:-${TMPDIR:-/tmp}/referral-gateway-peers-venv}

if [ ! -x "$bin" ]; then
  (cd "$repo" && cargo build --release --quiet)
  bin=$repo/target/release/referral-gateway
fi
[ -d "$here/node_modules/fhir" ] || (cd "$here" && npm ci --no-audit --no-fund --silent)
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet 'fhir.resources==8.3.0'
fi

# Every example that is a single ServiceRequest, each named `copies` times.
list=$(mktemp)
trap 'rm -f "$list"' EXIT
singles=$(grep -l '"resourceType": *"ServiceRequest"' "$repo"/examples/*/*.json |
  xargs grep -L '"resourceType": *"Bundle"')
for _ in $(seq "$copies"); do printf '%s\n' $singles; done > "$list"
n=$(wc -l < "$list")
echo "$(printf '%s\n' $singles | wc -l) ServiceRequest examples, $n files a round"

now() { date +%s%N; }
# The gateway: one process for all files; its start (loading the rules) is measured on one
# file and taken off. Best of 3.
best=""
for _ in 1 2 3; do
  t0=$(now); "$bin" check $(head -1 "$list") > /dev/null || true; t1=$(now)
  "$bin" check $(cat "$list") > /dev/null || true; t2=$(now)
  us=$(( ( (t2 - t1) - (t1 - t0) ) / 1000 / n ))
  if [ -z "$best" ] || [ "$us" -lt "$best" ]; then best=$us; fi
done
echo "{\"peer\": \"referral-gateway check\", \"us_per_file\": $best}"
js=$(node "$here/fhirjs.js" 3 < "$list"); echo "$js"
py=$("$venv/bin/python" "$here/fhir_resources.py" 3 < "$list"); echo "$py"
python3 - "$best" "$js" "$py" <<'PY'
import json, sys
gw = float(sys.argv[1])
for line in sys.argv[2:]:
    p = json.loads(line)
    print(f"{p['peer']}: {p['us_per_file']:.1f} us per ServiceRequest; the gateway ({gw:.1f} us) is {p['us_per_file'] / gw:.2f}x as fast")
PY
