#!/usr/bin/env bash
# Runs the fuzz targets of fuzz/ (DESIGN.md testing tier 5), each for a bounded time, and fails
# on any crash, assertion failure, timeout (-timeout=10) or out-of-memory (-rss_limit_mb=2048).
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     default: 30 s, every target
#
# CI (scripts/test.sh) runs `scripts/fuzz.sh 20`; run longer with e.g. `scripts/fuzz.sh 3600`
# or `scripts/fuzz.sh 3600 frame_sequence`.
#
# The stable toolchain builds the targets: RUSTC_BOOTSTRAP=1 lets cargo-fuzz pass its -Z flags
# (sanitizer coverage, AddressSanitizer, whose runtime ships with stable's rust-std).
# TOLQIN_FUZZ_SANITIZER=none builds without AddressSanitizer (about twice as fast; the code
# under test has no unsafe). TOLQIN_FUZZ_NICE sets the niceness (default 10).
#
# Each target starts from its seed corpus in fuzz/corpus/<target>/ (kept in the repository) and
# writes the inputs it finds to fuzz/target/corpus/<target>/ (not kept), so later runs on the
# same machine resume from them. A crashing input is saved in fuzz/artifacts/<target>/; replay
# it with `RUSTC_BOOTSTRAP=1 cargo fuzz run --sanitizer address <target> <file>` in fuzz/, and
# minimize it with `cargo fuzz tmin` the same way.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_FUZZ_VERSION=0.13.2
seconds="${1:-30}"
shift || true
sanitizer="${TOLQIN_FUZZ_SANITIZER:-address}"
niceness="${TOLQIN_FUZZ_NICE:-10}"

if ! cargo fuzz --version 2>/dev/null | grep -qF "$CARGO_FUZZ_VERSION"; then
  echo "== installing cargo-fuzz $CARGO_FUZZ_VERSION"
  cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
fi
export RUSTC_BOOTSTRAP=1

cd fuzz
if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo fuzz list)
fi

# The longest input worth trying for each target.
max_len() {
  case "$1" in
    frame_header) echo 32 ;;
    extensions_header | utf8) echo 1024 ;;
    deflate_negotiation) echo 2048 ;;
    handshake_request | handshake_response) echo 4096 ;;
    *) echo 8192 ;;
  esac
}

echo "== building ${#targets[@]} fuzz targets (sanitizer: $sanitizer)"
nice -n "$niceness" cargo fuzz build --sanitizer "$sanitizer"

failed=()
for target in "${targets[@]}"; do
  echo "== fuzzing $target for ${seconds}s"
  work="target/corpus/$target"
  mkdir -p "$work" "corpus/$target" "artifacts/$target"
  log="$(mktemp)"
  start=$SECONDS
  if nice -n "$niceness" cargo fuzz run --sanitizer "$sanitizer" "$target" "$work" "corpus/$target" -- \
      -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len="$(max_len "$target")" \
      -print_final_stats=1 >"$log" 2>&1; then
    runs="$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}')"
    cov="$(grep -oE 'cov: [0-9]+' "$log" | tail -n 1)"
    echo "   ok: ${runs:-?} executions in $((SECONDS - start))s, ${cov:-cov: ?} edges," \
      "corpus $(find "$work" -type f | wc -l) inputs"
  else
    tail -n 60 "$log"
    crash="$(grep -oE 'Test unit written to [^ ]+' "$log" | tail -n 1 | sed 's/^Test unit written to //')"
    echo "!! $target FAILED; crash input: ${crash:-fuzz/artifacts/$target/ (see the log above)}"
    failed+=("$target")
  fi
  rm -f "$log"
done

if [ "${#failed[@]}" -gt 0 ]; then
  echo "!! fuzz targets failed: ${failed[*]}"
  exit 1
fi
echo "== all ${#targets[@]} fuzz targets ran ${seconds}s each without a crash"
