#!/usr/bin/env bash
# The rules' own lint and their pass/fail examples, as a department would run them.
set -euo pipefail
cargo run --quiet -- rules lint
cargo run --quiet -- rules test
