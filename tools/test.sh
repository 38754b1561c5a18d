#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test (unit, integration,
# end to end). Exits non-zero if any test fails.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/tools/setup.sh" --test
"$ROOT/tools/build.sh"
BUILD_DIR="${STEPHUB_BUILD_DIR:-$ROOT/build}"
ctest --test-dir "$BUILD_DIR" --output-on-failure -j 2 --timeout 300
