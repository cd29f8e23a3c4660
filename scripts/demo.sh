#!/usr/bin/env bash
# Run the example job (four runs: ok, labelled, panicking, cancelled) on the embedded default
# journal, then show what runlog kept.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet -p runlog-cli
cargo build --quiet -p runlog --example demo_job
./target/debug/examples/demo_job || true
echo
echo '$ runlog list-runs demo-job'
./target/debug/runlog list-runs demo-job
echo
echo '$ runlog logs demo-job -2      # the run for user bar (labelled)'
./target/debug/runlog logs demo-job -2
echo
echo '$ runlog logs demo-job last    # the run that panicked: message, location, backtrace'
./target/debug/runlog logs demo-job last | head -30
