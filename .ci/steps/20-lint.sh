#!/usr/bin/env bash
# Formatting and lints: no warning lands.
set -euo pipefail
cargo fmt --all -- --check
cargo clippy --all-targets -- -D warnings
