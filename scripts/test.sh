#!/usr/bin/env bash
# All the tests: the same command CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cargo >/dev/null; then
    echo "cargo not found: install Rust with rustup (https://rustup.rs), then re-run" >&2
    exit 1
fi
# mkfs.btrfs, losetup and mount live in sbin, which a non-root PATH may lack.
export PATH="$PATH:/usr/sbin:/sbin"
for tool in script prlimit redis-server redis-cli openssl mkfs.btrfs useradd groupadd setpriv python3; do
    if ! command -v "$tool" >/dev/null; then
        echo "$tool not found: the end-to-end tests need it; install util-linux, bsdutils, redis-server, redis-tools, openssl, btrfs-progs, passwd and python3 (Debian: apt-get install ...)" >&2
        exit 1
    fi
done
# End-to-end tests drive the real binaries: build them first.
cargo build --workspace --all-targets
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --workspace 2>&1 | tee "$log" || status=$?
# One closing line for the whole workspace (cargo prints one per test binary).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
