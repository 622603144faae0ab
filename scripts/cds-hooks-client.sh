#!/usr/bin/env bash
# A small CDS Hooks client: drives the gateway's order-select and order-sign services with FHIR
# files (e.g. examples/), the way an EHR would call them.
#
#   scripts/cds-hooks-client.sh [--base URL] [--hook order-sign|order-select|both]
#                               [--without-prefetch KEY]... [--json] FILE...
#
# Each FILE (a ServiceRequest, or a Bundle with its context) becomes one CDS Hooks request: the
# ServiceRequests (and Observations) are context.draftOrders; the Patient, the Practitioner, and
# the PractitionerRole with its Organization (as a search Bundle) are the prefetch the discovery
# document asks for, referred to as Type/id. --without-prefetch leaves a key out, as a client
# that did not prefetch it. Prints one line per card (indicator, rule, summary, suggestion), or
# the whole answer with --json. Needs curl and jq; the gateway must be running
# (cargo run --release -- serve).
set -euo pipefail

base=http://127.0.0.1:8080
hooks=(order-select order-sign)
without='[]'
raw=false
files=()
while [ $# -gt 0 ]; do
  case "$1" in
    --base) base=$2; shift 2 ;;
    --hook) if [ "$2" = both ]; then hooks=(order-select order-sign); else hooks=("$2"); fi; shift 2 ;;
    --without-prefetch) without=$(jq -c --arg k "$2" '. + [$k]' <<<"$without"); shift 2 ;;
    --json) raw=true; shift ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) files+=("$1"); shift ;;
  esac
done
[ ${#files[@]} -gt 0 ] || { echo "usage: $0 [--base URL] [--hook H] [--without-prefetch KEY] [--json] FILE..." >&2; exit 2; }

# FHIR file -> CDS Hooks request body.
to_request='
def type_id: "\(.resourceType)/\(.id)";
(if .resourceType == "Bundle" then [.entry[] | {url: .fullUrl, r: .resource}] else [{url: null, r: .}] end) as $raw
| ($raw | map(select(.url != null) | {key: .url, value: (.r | type_id)}) | from_entries) as $refs
# References as Type/id, as an EHR FHIR server would return them.
| ($raw | map(.r |= walk(if type == "object" and (.reference | type) == "string" and ($refs[.reference] != null)
                          then .reference = $refs[.reference] else . end))
  # A draft order has an id in the EHR (order-select names the selected ones by it).
  | to_entries | map(if .value.r.resourceType == "ServiceRequest" and .value.r.id == null
                     then .value.r.id = "draft-order-\(.key)" else . end) | map(.value)) as $res
| (any($res[]; .r.resourceType == "PractitionerRole")) as $has_role
| def in_prefetch: (.resourceType == "Patient" or .resourceType == "Practitioner")
    or ($has_role and (.resourceType == "PractitionerRole" or .resourceType == "Organization"));
  def first_of($t): [$res[] | .r | select(.resourceType == $t)] | first;
  ({}
   | if first_of("Patient") then .patient = first_of("Patient") else . end
   | if first_of("Practitioner") then .practitioner = first_of("Practitioner") else . end
   | if $has_role then .practitionerRole = {resourceType: "Bundle", type: "searchset",
       entry: [$res[] | .r | select(.resourceType == "PractitionerRole" or .resourceType == "Organization") | {resource: .}]}
     else . end
   | with_entries(select(.key as $k | $without | index($k) | not))) as $prefetch
| {
    hook: $hook,
    hookInstance: $instance,
    context: ({
      userId: (first_of("PractitionerRole") | if . then type_id else "PractitionerRole/cds-client-gp" end),
      patientId: (first_of("Patient").id // "cds-client-patient"),
      draftOrders: {resourceType: "Bundle", type: "collection", entry: [
        $res[] | .r | select(in_prefetch | not) | {resource: .}]}
    }
    # order-select: context.selections is required; every draft order is selected.
    + (if $hook == "order-select"
       then {selections: [$res[] | .r | select(.resourceType == "ServiceRequest") | type_id]}
       else {} end))
  }
| if ($prefetch | length) > 0 then .prefetch = $prefetch else . end
'

new_uuid() { cat /proc/sys/kernel/random/uuid 2>/dev/null || uuidgen; }

for file in "${files[@]}"; do
  for hook in "${hooks[@]}"; do
    body=$(jq -c --arg hook "$hook" --arg instance "$(new_uuid)" --argjson without "$without" "$to_request" "$file")
    answer=$(curl -sS -X POST -H 'Content-Type: application/json' --data-binary "$body" \
      -w '\n%{http_code}' "$base/cds-services/imaging-referral-$hook")
    status=${answer##*$'\n'}
    answer=${answer%$'\n'*}
    if $raw; then
      jq . <<<"$answer"
      continue
    fi
    if [ "$status" != 200 ]; then
      echo "$file $hook: HTTP $status $(jq -c . <<<"$answer")"
      continue
    fi
    cards=$(jq '.cards | length' <<<"$answer")
    echo "$file $hook: $cards card(s)"
    jq -r '.cards[] | "  \(.indicator)\t\(.source.topic.code // "-")\t\(.summary)"
      + (if .suggestions then "\n    suggestion: \(.suggestions[0].label) [\(.suggestions[0].actions | map(.type) | join(" + "))]" else "" end)' <<<"$answer"
  done
done
