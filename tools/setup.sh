#!/usr/bin/env bash
# Installs what StepHub needs to build, test and run: Debian 12 packages,
# and the dashboard's front-end packages from the npm registry (pinned by
# hub/web/package-lock.json). --test also installs what the tests need:
# Debian's Chromium and ChromeDriver (the dashboard's browser test) and
# poppler-utils (reading PDF reports back), and clang with libFuzzer and
# the sanitizer runtimes (fuzzing and the sanitizer run of the suite).
# Idempotent: only calls apt-get or npm when something is missing. Works as
# root or via sudo.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

PACKAGES=(
  g++ cmake ninja-build pkg-config
  libgrpc++-dev libgrpc-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev libboost-dev libgtest-dev libgmock-dev libsqlite3-dev libbenchmark-dev
  nlohmann-json3-dev zlib1g-dev libcairo2-dev fonts-dejavu-core
  libssl-dev
)
# libssl-dev: libcrypto makes the clinic's certificates (stephub certs) and
# hashes staff passwords (scrypt) and session tokens, and
# libssl serves the dashboard over HTTPS; no openssl command is needed.
# What the tests need beyond the build: a browser for the dashboard's test,
# poppler's tools to read the PDF reports back.
# clang 14 with its runtime libraries (libclang_rt.fuzzer, ASan, UBSan):
# the fuzz targets and the sanitizer run of the suite (tools/fuzz.sh).
if [ "${1:-}" = "--test" ]; then
  PACKAGES+=(chromium chromium-driver poppler-utils clang libclang-rt-14-dev)
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
# npm may come from Debian (npm, with nodejs) or with another Node.js build.
if ! command -v npm >/dev/null 2>&1; then
  missing+=(nodejs npm)
fi

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#PACKAGES[@]} packages present"
else
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
      echo "setup: need root or sudo to install: ${missing[*]}" >&2; exit 1
    fi
  fi
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The dashboard's charting library, exactly as the lockfile pins it.
WEB="$ROOT/hub/web"
if [ ! -f "$WEB/node_modules/.package-lock.json" ] ||
   [ "$WEB/package-lock.json" -nt "$WEB/node_modules/.package-lock.json" ]; then
  echo "setup: npm ci in hub/web"
  (cd "$WEB" && npm ci --no-audit --no-fund --loglevel=error)
fi
