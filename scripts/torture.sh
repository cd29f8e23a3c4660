#!/usr/bin/env bash
# The torture suite (issue 5): crashes, power loss, corruption, outages, full disks, hostile
# input. Prints one line per scenario: iterations, failures found, records lost.
# RUNLOG_TORTURE=long runs the larger counts; RUNLOG_TORTURE_SEED=<n> replays a random one.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --workspace --all-targets
report=$(mktemp)
trap 'rm -f "$report"' EXIT
status=0
RUNLOG_TORTURE_REPORT="$report" cargo test --workspace -- torture_ || status=$?
echo
echo "scenario | iterations | failures found | records lost"
echo "---|---:|---:|---:"
sed -E 's/^torture: (.*): iterations ([0-9]+), failures found ([0-9]+), records lost ([0-9]+)$/\1 | \2 | \3 | \4/' "$report"
exit "$status"
