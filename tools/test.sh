#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test (unit, integration,
# end to end); then, unless STEPHUB_QUICK=1, the hardening checks of
# docs/SECURITY.md: the whole suite again under AddressSanitizer +
# UndefinedBehaviorSanitizer (clang, in build-fuzz/, the build the fuzz
# targets share) and a short run of every fuzz target
# (STEPHUB_FUZZ_SECONDS each, default 60). Exits non-zero if any test
# fails, a sanitizer reports or a fuzz target crashes.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/tools/setup.sh" --test
"$ROOT/tools/build.sh"
BUILD_DIR="${STEPHUB_BUILD_DIR:-$ROOT/build}"
ctest --test-dir "$BUILD_DIR" --output-on-failure -j 2 --timeout 300
if [ "${STEPHUB_QUICK:-0}" = "1" ]; then
  exit 0
fi

# One extra build for both: fuzz.sh configures build-fuzz/ (clang, -O1,
# ASan + UBSan on everything) and builds the fuzz targets; the suite's
# tests are then built in the same directory.
FUZZ_DIR="${STEPHUB_FUZZ_BUILD_DIR:-$ROOT/build-fuzz}"
export STEPHUB_FUZZ_BUILD_DIR="$FUZZ_DIR"
start=$(date +%s)
"$ROOT/tools/fuzz.sh" "${STEPHUB_FUZZ_SECONDS:-60}"
cmake --build "$FUZZ_DIR" -j "${STEPHUB_JOBS:-$(nproc)}"
echo "test: fuzz run and sanitizer build took $(( $(date +%s) - start )) s"
"$ROOT/tools/sanitize.sh" --run "$FUZZ_DIR"
echo "test: with the sanitizer suite, $(( $(date +%s) - start )) s"
