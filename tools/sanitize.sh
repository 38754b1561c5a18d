#!/usr/bin/env bash
# Runs the whole test suite under AddressSanitizer + UndefinedBehaviorSanitizer.
#   tools/sanitize.sh              builds with g++ into build-asan/
#                                  (CMake option STEPHUB_SANITIZE), then runs
#   tools/sanitize.sh --run DIR    runs the tests of an already built
#                                  sanitizer build (CI: build-fuzz/, clang)
# Exits non-zero on any failure or sanitizer report.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ "${1:-}" = "--run" ]; then
  BUILD_DIR="$2"
else
  "$ROOT/tools/setup.sh" --test
  BUILD_DIR="${STEPHUB_ASAN_BUILD_DIR:-$ROOT/build-asan}"
  cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DSTEPHUB_SANITIZE=ON >/dev/null
  cmake --build "$BUILD_DIR" -j "${STEPHUB_JOBS:-$(nproc)}"
fi
source "$ROOT/tools/sanitizer_env.sh"
ctest --test-dir "$BUILD_DIR" --output-on-failure -j "${STEPHUB_JOBS:-2}" --timeout 600
