#!/usr/bin/env bash
# The authentication tests (tests/auth.rs, tests/cds_auth.rs) run a real OpenID Connect provider
# (oidc-provider, tests/support/oidc) on Node: install Node when it is missing, and the
# provider's packages from its lock file. With CI=true the tests fail rather than skip without it.
set -euo pipefail
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm
fi
node --version
(cd tests/support/oidc && npm ci --no-audit --no-fund)
