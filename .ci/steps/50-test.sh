#!/usr/bin/env bash
# The README's test command: all of tests/ (hostile input, nothing-lost properties included);
# fuzzing and scripts/load-reload.sh are run by hand (ROBUSTNESS.md).
set -euo pipefail
cargo test
