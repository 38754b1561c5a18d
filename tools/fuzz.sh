#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/) with clang, ASan and UBSan into
# build-fuzz/ and runs each for SECONDS (default 60), one after another,
# starting from the checked-in seeds (fuzz/corpus/<target>). Prints each
# target's figures (runs, runs/s, coverage) and exits non-zero if any
# target crashed, leaked or tripped a sanitizer; the input that did it is
# kept in build-fuzz/fuzz-artifacts/<target>/.
#   tools/fuzz.sh [SECONDS] [TARGET...]
# STEPHUB_FUZZ_BUILD_DIR overrides build-fuzz/; STEPHUB_JOBS the build's -j.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SECONDS_EACH="${1:-60}"
shift || true
TARGETS=("$@")
if [ ${#TARGETS[@]} -eq 0 ]; then
  TARGETS=(station_message_fuzzer recording_reader_fuzzer
           station_config_fuzzer http_request_fuzzer)
fi
BUILD_DIR="${STEPHUB_FUZZ_BUILD_DIR:-$ROOT/build-fuzz}"
# -O1 and line tables only: a sanitizer build twice as fast to compile as
# RelWithDebInfo's -O2 -g, with stacks that still name file and line.
CC=clang CXX=clang++ cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only" \
  -DSTEPHUB_FUZZ=ON >/dev/null
cmake --build "$BUILD_DIR" -j "${STEPHUB_JOBS:-$(nproc)}" --target "${TARGETS[@]}"

source "$ROOT/tools/sanitizer_env.sh"

# The largest input worth trying per target: a batch of a full station is
# ~10-40 KiB; a dashboard request, a config or a recording's files fit in
# far less.
max_len() {
  case "$1" in
    station_message_fuzzer) echo 65536 ;;
    recording_reader_fuzzer) echo 16384 ;;
    *) echo 8192 ;;
  esac
}

failed=()
printf '%-26s %10s %9s %8s %8s %s\n' target runs runs/s cov ft result
for target in "${TARGETS[@]}"; do
  name="${target%_fuzzer}"
  work="$BUILD_DIR/fuzz-corpus/$name"
  artifacts="$BUILD_DIR/fuzz-artifacts/$name/"
  log="$BUILD_DIR/fuzz-logs/$name.log"
  mkdir -p "$work" "$artifacts" "$(dirname "$log")"
  args=(-max_total_time="$SECONDS_EACH" -print_final_stats=1
        -max_len="$(max_len "$target")" -timeout=10 -rss_limit_mb=2048
        -artifact_prefix="$artifacts")
  dict="$ROOT/fuzz/dict/$name.dict"
  [ -f "$dict" ] && args+=(-dict="$dict")
  result=ok
  # New inputs go to the work corpus; the seeds stay as checked in.
  if ! "$BUILD_DIR/fuzz/$target" "${args[@]}" "$work" "$ROOT/fuzz/corpus/$name" \
      >"$log" 2>&1; then
    result="FAILED (see $log)"
    failed+=("$target")
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
  ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
  printf '%-26s %10s %9s %8s %8s %s\n' "$target" "${runs:--}" "${rate:--}" \
    "${cov:--}" "${ft:--}" "$result"
done
if [ ${#failed[@]} -ne 0 ]; then
  echo "fuzz: ${failed[*]} failed; the inputs are in $BUILD_DIR/fuzz-artifacts/" >&2
  exit 1
fi
