#!/usr/bin/env bash
# All the tests: the same command CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cargo >/dev/null; then
    echo "cargo not found: install Rust with rustup (https://rustup.rs), then re-run" >&2
    exit 1
fi
# End-to-end tests drive the real binaries: build them first.
cargo build --workspace --all-targets
cargo test --workspace
