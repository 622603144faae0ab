#!/usr/bin/env bash
# Runs the gateway's answers through the four independent FHIR R4 checkers in
# ../shared/tools/fhir-checkers, and every issue.expression through HL7's FHIRPath engine
# against the input it is about. Inputs: every example, the 40 real files, the bad-input samples.
set -euo pipefail
cd "$(dirname "$0")/.."
checkers=$(cd ../shared/tools/fhir-checkers && pwd)
bash "$checkers/setup.sh" >/dev/null
cargo build --quiet
bin=target/debug/referral-gateway
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

mapfile -t inputs < <(ls examples/*/*.json ../shared/fhir-examples/*/*.json tests/data/bad/*.json)
n=0; bad_paths=0
for input in "${inputs[@]}"; do
  n=$((n + 1))
  "$bin" check "$input" > "$out/answer-$n.json" || true
  "$bin" check --validate "$input" > "$out/outcome-$n.json" || true
  # Expressions are checked against inputs that are JSON at all.
  if python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$input" 2>/dev/null; then
    if ! bash "$checkers/check.sh" --oo "$out/outcome-$n.json" "$input" > "$out/paths-$n.txt" 2>&1; then
      echo "FHIRPath problems in the answer for $input:"; grep -vE 'RESOLVES|EMPTY' "$out/paths-$n.txt" | head -20
      bad_paths=$((bad_paths + 1))
    fi
  fi
done
echo "checked $n inputs; $bad_paths with unresolvable expressions"
bash "$checkers/check.sh" profiles/*.json "$out"/answer-*.json "$out"/outcome-*.json > "$out/verdicts.txt" || {
  grep -v '^PASS   PASS   PASS   PASS' "$out/verdicts.txt"; exit 1; }
tail -1 "$out/verdicts.txt"
[ "$bad_paths" -eq 0 ]
