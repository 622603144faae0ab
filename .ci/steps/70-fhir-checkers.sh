#!/usr/bin/env bash
# The gateway's answers through the independent FHIR checkers, when their runtime is present.
set -euo pipefail
if command -v node >/dev/null && command -v npm >/dev/null && command -v python3 >/dev/null \
   && [ -d ../shared/tools/fhir-checkers ]; then
  scripts/check-answers.sh
else
  echo "FHIR checkers skipped: node/npm/python3 or ../shared/tools/fhir-checkers not present"
fi
