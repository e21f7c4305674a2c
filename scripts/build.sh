#!/usr/bin/env bash
# Configures and builds Sabot. Usage: scripts/build.sh [release|asan]
#   release -> build/release  (optimized, with debug info)
#   asan    -> build/asan     (AddressSanitizer + UndefinedBehaviorSanitizer)
# Runs scripts/setup.sh first, so a fresh machine needs nothing else.
set -euo pipefail
cd "$(dirname "$0")/.."
flavor="${1:-release}"
scripts/setup.sh

case "$flavor" in
  release) build_type=RelWithDebInfo; sanitize=OFF ;;
  asan)    build_type=Debug;          sanitize=ON ;;
  *) echo "build.sh: unknown flavor '$flavor' (expected release or asan)" >&2; exit 2 ;;
esac

dir="build/$flavor"
if [ ! -f "$dir/build.ninja" ]; then
  cmake -S . -B "$dir" -G Ninja \
    -DCMAKE_BUILD_TYPE="$build_type" \
    -DSABOT_SANITIZE="$sanitize" \
    -DSABOT_PYTHON="$PWD/.venv/bin/python"
fi
cmake --build "$dir" -j "$(nproc)"
