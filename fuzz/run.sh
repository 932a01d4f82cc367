#!/usr/bin/env bash
# Fuzzes the CSR intake, seeded with the CSR corpus.
#   fuzz/run.sh [SECONDS]     (default 600)
# cargo-fuzz needs nightly features; on a stable toolchain RUSTC_BOOTSTRAP
# unlocks them. Install it with `cargo install cargo-fuzz`.
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-600}"
mkdir -p corpus/csr_intake
find ../testdata/csr -type f \( -name '*.pem' -o -name '*.der' -o -name '*.csr' -o -name '*.req' -o -name '*.txt' \) \
    -exec cp {} corpus/csr_intake/ \;
RUSTC_BOOTSTRAP=1 cargo fuzz run csr_intake corpus/csr_intake -- -max_total_time="$secs" -max_len=70000
