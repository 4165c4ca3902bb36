#!/usr/bin/env bash
# Runs every fuzz target (cargo-fuzz, libFuzzer, no sanitizer: it builds on the stable toolchain)
# on its saved corpus for SECONDS each, and prints one line per target: executions and the
# outcome. Exits non-zero when a target crashes (the input is left in fuzz/artifacts/TARGET/).
# New inputs that fuzzing finds are kept in a scratch corpus, not in fuzz/corpus (merge them with
# `cargo fuzz cmin` after a long run).
#
#   bash fuzz/run.sh [SECONDS] [TARGET...]      (default: 3 seconds, every target)
#   RUNS=10000000 bash fuzz/run.sh 3600        (a long run: until 10 million executions, or an hour)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-3}
shift || true
command -v cargo-fuzz >/dev/null || cargo install --locked --quiet cargo-fuzz
# The targets build with other flags than hisp's tests: a target directory of their own.
export CARGO_TARGET_DIR="$PWD/fuzz/target"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^hisp-fuzz$')
fi
cargo fuzz build -s none 2>&1 | grep -Ev '^\s*(Compiling|Finished)' || true
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
failed=0
for target in "${targets[@]}"; do
  mkdir -p "$scratch/$target"
  log="$scratch/$target.log"
  # The saved corpus first (every input once), then SECONDS of fuzzing; 2 GiB of memory at most.
  if cargo fuzz run -s none "$target" "$scratch/$target" "fuzz/corpus/$target" -- ${RUNS:+-runs=$RUNS} \
      -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 >"$log" 2>&1; then
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    took=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)
    printf '%-18s %12s executions in %ss, 0 crashes\n' "$target" "${runs:-?}" "${took:-$seconds}"
  else
    failed=1
    printf '%-18s CRASHED:\n' "$target"
    grep -E 'panicked|ERROR|SUMMARY|Test unit written' "$log" | head -5
  fi
done
exit $failed
