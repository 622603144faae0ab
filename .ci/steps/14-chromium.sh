#!/usr/bin/env bash
# The console's browser tests (tests/browser.rs) drive Debian's headless Chromium through
# playwright-core: install chromium, chromium-driver and node/npm when absent, and the pinned npm
# packages of tests/support/browser (no browser is downloaded: playwright-core is the driver
# only, pointed at /usr/bin/chromium).
set -euo pipefail
cd "$(dirname "$0")/../.."
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
if [ "${#need[@]}" -gt 0 ]; then
  echo "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi
chromium --version
(cd tests/support/browser && npm ci --no-audit --no-fund)
