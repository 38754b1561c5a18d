#!/usr/bin/env bash
# Builds StepHub with AddressSanitizer + UndefinedBehaviorSanitizer into
# build-asan/ and runs the whole test suite there. Exits non-zero on any
# failure or sanitizer report.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/tools/setup.sh" --test
BUILD_DIR="${STEPHUB_ASAN_BUILD_DIR:-$ROOT/build-asan}"
cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DSTEPHUB_SANITIZE=ON >/dev/null
cmake --build "$BUILD_DIR" -j "${STEPHUB_JOBS:-$(nproc)}"
# Debian's libraries are not instrumented: a std::vector filled inside them
# looks overflowed to ASan's container checks, so those are off. Leaks are
# checked; gRPC's process-lifetime singletons are not ours to free.
export ASAN_OPTIONS="detect_container_overflow=0:abort_on_error=1:detect_leaks=1"
export LSAN_OPTIONS="suppressions=$ROOT/tools/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
ctest --test-dir "$BUILD_DIR" --output-on-failure -j "${STEPHUB_JOBS:-2}" --timeout 600
