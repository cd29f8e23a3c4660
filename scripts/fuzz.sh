#!/usr/bin/env bash
# Fuzz the decoders (issue 5, "Torture suite", item 4): the frame and payload decoder, the
# segment scanner with the reader and recovery, and the Redis chunk decoder (fuzz/fuzz_targets/).
# Each target runs for FUZZ_SECONDS (default 60) under AddressSanitizer with bounded memory;
# prints per target the inputs run and the crashes found, and copies each crash into
# fuzz/regressions/<target>/, which `cargo test` (tests/tests/fuzz_corpus.rs) replays.
#
#   FUZZ_SECONDS=600 scripts/fuzz.sh            # longer
#   FUZZ_TARGETS="segment" scripts/fuzz.sh      # one target
#   FUZZ_RSS_MB / FUZZ_MALLOC_MB                # memory limits (512 / 128)
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds=${FUZZ_SECONDS:-60}
targets=${FUZZ_TARGETS:-"frame segment redis_chunk"}
rss_mb=${FUZZ_RSS_MB:-512}
malloc_mb=${FUZZ_MALLOC_MB:-128}

command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
# Only a stable toolchain is needed: cargo fuzz passes -Zsanitizer=address, which stable rustc
# accepts with RUSTC_BOOTSTRAP=1 (its ASan runtime ships with the standard library).
export RUSTC_BOOTSTRAP=1
# A glibc thread-exit allocation LeakSanitizer sometimes reports (see fuzz/lsan.supp).
export LSAN_OPTIONS="suppressions=$PWD/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
flags=(-O -a)   # optimized, with debug assertions and overflow checks
cargo fuzz build "${flags[@]}"

summary=()
status=0
for t in $targets; do
  mkdir -p "corpus/$t" "artifacts/$t" "regressions/$t"
  before=$(mktemp)
  ls "artifacts/$t" | sort > "$before"
  log="artifacts/$t.log"
  # corpus/<t> (not committed) grows; seeds/ and regressions/ are read only.
  cargo fuzz run "${flags[@]}" "$t" "corpus/$t" "seeds/$t" "regressions/$t" -- \
    -max_total_time="$seconds" -rss_limit_mb="$rss_mb" -malloc_limit_mb="$malloc_mb" \
    -timeout=10 -print_final_stats=1 > "$log" 2>&1 || status=1
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  [ -n "$runs" ] || runs=$(grep -o '^#[0-9]*' "$log" | tail -1 | tr -d '#')
  crashes=0
  for a in $(ls "artifacts/$t" | sort | comm -13 "$before" -); do
    cp "artifacts/$t/$a" "regressions/$t/$a"
    echo "$t: crash saved as fuzz/regressions/$t/$a"
    crashes=$((crashes + 1))
  done
  rm -f "$before"
  if [ "$crashes" -gt 0 ]; then
    grep -m1 -A15 -E "panicked|ERROR: libFuzzer|ERROR: AddressSanitizer" "$log" || true
  fi
  summary+=("$t | $seconds | ${runs:-?} | $crashes")
done
echo
echo "target | seconds | runs | crashes"
echo "---|---:|---:|---:"
printf '%s\n' "${summary[@]}"
echo "(logs: fuzz/artifacts/<target>.log)"
exit "$status"
