#!/usr/bin/env bash
# Runs the gateway's answers through the four independent FHIR R4 checkers in
# ../shared/tools/fhir-checkers, every issue.expression through HL7's FHIRPath engine
# against the input it is about, and the invariants none of those checkers evaluates (bdl-*,
# cpb-*, dom-*: scripts/fhir-invariants.js, fhirpath.js with its R4 model). Inputs: every
# example, the 40 real files, the bad-input samples; and the HTTP answers `check` cannot give
# (the CapabilityStatement, searchsets, batch-responses of collections, 405 entries).
set -euo pipefail
cd "$(dirname "$0")/.."
checkers=$(cd ../shared/tools/fhir-checkers && pwd)
bash "$checkers/setup.sh" >/dev/null
cargo build --quiet
bin="${CARGO_TARGET_DIR:-target}/debug/referral-gateway"
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

# Answers only the HTTP front end gives, from a gateway started for this.
"$bin" serve --listen 127.0.0.1:0 --store "sqlite:$out/store.sqlite" > "$out/serve.out" 2> "$out/serve.log" &
serve_pid=$!
trap 'kill "$serve_pid" 2>/dev/null; rm -rf "$out"' EXIT
for _ in $(seq 100); do grep -q '^listening on ' "$out/serve.out" 2>/dev/null && break; sleep 0.1; done
base="http://$(sed -n 's/^listening on //p' "$out/serve.out")"
# python3 (already needed here) rather than curl: the answer body whatever the status.
http() {
  python3 - "$@" <<'PY'
import sys, urllib.request, urllib.error
url, out = sys.argv[1], sys.argv[2]
data = open(sys.argv[3], "rb").read() if len(sys.argv) > 3 else None
req = urllib.request.Request(url, data=data, headers={
    "Accept": "application/fhir+json", "Content-Type": "application/fhir+json"})
try:
    body = urllib.request.urlopen(req).read()
except urllib.error.HTTPError as e:
    body = e.read()
open(out, "wb").write(body)
PY
}
get() { http "$base$1" "$out/http-$2.json"; }
post() { http "$base/" "$out/http-$2.json" "$1"; }
get /metadata metadata
get /CodeSystem codesystems
get '/CodeSystem?_id=guidance-rule' codesystem-by-id
get '/ValueSet?_id=no-such-id' empty-search
get /OperationDefinition/validate operation-definition
post examples/us/us14-haematuria-age-45-bundle.json collection
python3 - "$out/mixed-batch.json" <<'PY'
import json, sys
sr = json.load(open("examples/general/gen01-cxr-with-clinical-question.json"))
json.dump({"resourceType": "Bundle", "type": "batch", "entry": [
    {"fullUrl": "urn:uuid:00000000-0000-4000-8000-000000000001", "resource": sr,
     "request": {"method": "POST", "url": "ServiceRequest"}},
    {"fullUrl": "urn:uuid:00000000-0000-4000-8000-000000000002", "resource": sr,
     "request": {"method": "PUT", "url": "ServiceRequest/1"}},
    {"request": {"method": "GET", "url": "ServiceRequest/1"}}]}, open(sys.argv[1], "w"))
PY
post "$out/mixed-batch.json" mixed-batch
# The consult record (contract §6): a redirected order (its consult identifier), then the
# record read back: an AuditEvent, a searchset of them, the redirect's Provenance, $stats.
http "$base/ServiceRequest" "$out/http-redirected.json" examples/us/us13-calf-swelling-query-dvt.json
http "$base/ServiceRequest" "$out/http-rejected.json" examples/us/us05-neck-pain-only-coded.json
consult=$(python3 -c 'import json,sys; print([e["valueIdentifier"]["value"] for e in json.load(open(sys.argv[1]))["extension"] if e["url"].endswith("/consult-id")][0])' "$out/http-rejected.json")
redirected=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$out/http-redirected.json")
get "/AuditEvent/$consult" audit-event
get '/AuditEvent?_count=1' audit-search
get "/Provenance?target=ServiceRequest/$redirected" provenance
get '/$stats' stats

# The schema checker's fhir.schema.json is that of R4 4.0.0: its fhirVersion list stops at
# 4.0.0, and the contract's CapabilityStatement says 4.0.1. The four checkers read a copy that
# says 4.0.0; the invariants below read the answer itself.
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); d["fhirVersion"]="4.0.0"; json.dump(d, open(sys.argv[2],"w"))' \
  "$out/http-metadata.json" "$out/metadata-for-schema-4.0.0.json"
bash "$checkers/check.sh" profiles/*.json "$out"/answer-*.json "$out"/outcome-*.json \
  "$out"/metadata-for-schema-4.0.0.json $(ls "$out"/http-*.json | grep -v http-metadata.json) > "$out/verdicts.txt" || {
  grep -v '^PASS   PASS   PASS   PASS' "$out/verdicts.txt"; exit 1; }
tail -1 "$out/verdicts.txt"
export NODE_PATH="${FHIR_CHECKERS_HOME:-$HOME/.cache/fhir-checkers}/node_modules"
# The invariant checker must be able to fail: a collection with entry.response (bdl-4), a
# CapabilityStatement of kind instance without implementation (cpb-14), an unreferenced
# contained resource (dom-3).
echo '{"resourceType":"Bundle","type":"collection","entry":[{"response":{"status":"200"}}]}' > "$out/bad-bdl.json"
echo '{"resourceType":"CapabilityStatement","status":"active","date":"2026","kind":"instance","software":{"name":"x"},"fhirVersion":"4.0.1","format":["json"],"rest":[{"mode":"server"}]}' > "$out/bad-cpb.json"
echo '{"resourceType":"ServiceRequest","contained":[{"resourceType":"Patient","id":"p"}],"status":"active","intent":"order","subject":{"reference":"Patient/1"}}' > "$out/bad-dom.json"
for bad in bdl cpb dom; do
  if node scripts/fhir-invariants.js "$out/bad-$bad.json" > /dev/null; then
    echo "scripts/fhir-invariants.js passed a $bad-* violation"; exit 1
  fi
done
node scripts/fhir-invariants.js profiles/*.json "$out"/answer-*.json "$out"/outcome-*.json "$out"/http-*.json \
  > "$out/invariants.txt" || { grep -v '^PASS ' "$out/invariants.txt"; exit 1; }
tail -1 "$out/invariants.txt"
[ "$bad_paths" -eq 0 ]
