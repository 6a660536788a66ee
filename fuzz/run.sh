#!/usr/bin/env bash
# Runs each fuzz target (or those named) for a while: `fuzz/run.sh [SECONDS] [TARGET...]`.
# Discovered inputs go to fuzz/corpus/<target> (ignored by git); the committed seeds in
# fuzz/seeds/<target> are read but never written. Crashes land in fuzz/artifacts/<target>.
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo +nightly fuzz list 2>/dev/null || cargo fuzz list)
toolchain=+nightly
cargo +nightly --version >/dev/null 2>&1 || { toolchain=; export RUSTC_BOOTSTRAP=1; }
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t" "seeds/$t"
  echo "== fuzzing $t for ${seconds}s"
  cargo $toolchain fuzz run "$t" "corpus/$t" "seeds/$t" -- -max_total_time="$seconds"
done
