#!/usr/bin/env bash
# The real FHIR server the inline-gateway tests forward to, and the CDS Hooks prefetch
# fallback fetches from (tests/upstream.rs, tests/cds_prefetch.rs; tests/support/fhir-upstream:
# Medplum's FHIR router, in memory). Needs Node >= 20.19 and npm; installs them from Debian apt
# when missing, then its locked npm packages. The tests start one server per test themselves;
# with CI=true they fail, not skip, when Node is missing.
set -euo pipefail
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm
fi
node -e 'const [a,b]=process.versions.node.split(".").map(Number); if (a<20||(a===20&&b<19)) { console.error("Node "+process.versions.node+" is older than 20.19, which @medplum/fhir-router 4.5 needs"); process.exit(1) }'
cd tests/support/fhir-upstream
npm ci --no-audit --no-fund
node -e 'require("@medplum/fhir-router"); console.log("fhir-upstream: @medplum/fhir-router", require("@medplum/fhir-router/package.json").version)' 2>/dev/null \
  || node -e 'require("@medplum/fhir-router"); console.log("fhir-upstream: @medplum/fhir-router installed")'
