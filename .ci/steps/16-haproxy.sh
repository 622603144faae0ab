#!/usr/bin/env bash
# The replica test (tests/replicas.rs) runs three gateways behind a real HAProxy on loopback:
# install it from Debian's packages when absent. The package starts a service of its own; the
# test runs its own haproxy in the foreground, so the service is stopped.
set -euo pipefail
if ! command -v haproxy >/dev/null 2>&1; then
  echo "installing haproxy"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq haproxy >/dev/null
  (service haproxy stop || true) >/dev/null 2>&1
fi
# sed reads the whole output: `head -1` closed the pipe early, and under pipefail haproxy's
# SIGPIPE (exit 141) failed the CI run of stop 31.
haproxy -v | sed -n 1p
