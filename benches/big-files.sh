#!/usr/bin/env bash
# `check` on big batch Bundles, as a test harness runs it: wall time, time per entry and peak
# RSS of the whole command (read, decide, write the answer), beside CPython's C json module
# loading and dumping the same file (issue 19, target 3). Not a test: prints a table.
#
#   BIN=target/release/referral-gateway benches/big-files.sh [10 100 1000 10000 100000]
#
# The Bundles are those of benches/common (batch_with_patients): half the entries
# ServiceRequests (examples/xr/xr08-low-back-pain-loinc.json), each with its own Patient.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-target/release/referral-gateway}
SIZES=${*:-10 100 1000 10000 100000}
RUNS=${RUNS:-3}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

gen() {
  python3 - "$1" "$2" <<'PY'
import json, sys
n, out = int(sys.argv[1]), sys.argv[2]
sr = json.load(open("examples/xr/xr08-low-back-pain-loinc.json"))
patient = sr.pop("contained")[0]
entries = []
for i in range(n // 2):
    pu = f"urn:uuid:00000000-0000-4000-8000-{2 * i + 1:012}"
    s = dict(sr, id=f"sr-{i}", subject={"reference": pu})
    entries.append({"fullUrl": f"urn:uuid:00000000-0000-4000-8000-{2 * i:012}", "resource": s,
                    "request": {"method": "POST", "url": "ServiceRequest"}})
    entries.append({"fullUrl": pu, "resource": dict(patient, id=f"pat-{i}"),
                    "request": {"method": "POST", "url": "Patient"}})
json.dump({"resourceType": "Bundle", "type": "batch", "entry": entries}, open(out, "w"),
          separators=(",", ":"))
PY
}

# best wall seconds and the peak RSS (KB) of that run, of RUNS runs of "$@"
best_of() {
  local best="" rss=""
  for _ in $(seq "$RUNS"); do
    # check exits 1 for a rejection; time(1) then writes a line before its own
    /usr/bin/time -f '%e %M' -o "$dir/time" "$@" > /dev/null 2>&1 || true
    read -r t m < <(tail -1 "$dir/time")
    if [ -z "$best" ] || awk "BEGIN{exit !($t < $best)}"; then best=$t; rss=$m; fi
  done
  echo "$best $rss"
}

printf '%8s %12s %10s %12s %10s %14s %12s %10s\n' entries bytes check "per entry" "peak RSS" "4x size+50MB" "py load+dump" "ratio"
for n in $SIZES; do
  f="$dir/bundle-$n.json"
  gen "$n" "$f"
  bytes=$(stat -c %s "$f")
  read -r t rss <<< "$(best_of "$BIN" check "$f")"
  read -r p _ <<< "$(best_of python3 -c "import json,sys; json.dump(json.load(open(sys.argv[1])), open('/dev/null','w'))" "$f")"
  awk -v n="$n" -v b="$bytes" -v t="$t" -v r="$rss" -v p="$p" 'BEGIN{
    printf "%8d %12d %9.3fs %10.1fµs %8.1fMB %12.1fMB %11.3fs %9.2fx\n",
      n, b, t, t*1e6/n, r/1024, (4*b)/1048576+50, p, (p>0 ? t/p : 0) }'
  rm -f "$f"
done
echo "($RUNS runs each, best; check includes process start and loading the rules: about 0.1 s)"
