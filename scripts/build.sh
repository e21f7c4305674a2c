#!/usr/bin/env bash
# Configures and builds Sabot. Usage: scripts/build.sh [release|asan]
#   release -> build/release  (optimized, with debug info)
#   asan    -> build/asan     (AddressSanitizer + UndefinedBehaviorSanitizer)
# Runs scripts/setup.sh first, so a fresh machine needs nothing else.
set -euo pipefail
cd "$(dirname "$0")/.."
flavor="${1:-release}"
scripts/setup.sh

# Benchmarks are built (and smoke-run) in the release build only; the sanitizer build uses -O1,
# which keeps stack traces exact and runs the tests several times faster than -O0.
case "$flavor" in
  release) build_type=RelWithDebInfo; sanitize=OFF; benchmarks=ON ;;
  asan)    build_type=Debug;          sanitize=ON;  benchmarks=OFF ;;
  *) echo "build.sh: unknown flavor '$flavor' (expected release or asan)" >&2; exit 2 ;;
esac

# ccache: key objects by paths relative to the checkout, so every clone shares one cache.
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=true

dir="build/$flavor"
if [ ! -f "$dir/build.ninja" ]; then
  cmake -S . -B "$dir" -G Ninja \
    -DCMAKE_BUILD_TYPE="$build_type" \
    -DSABOT_SANITIZE="$sanitize" \
    -DSABOT_BUILD_BENCHMARKS="$benchmarks" \
    -DCMAKE_CXX_FLAGS_DEBUG="-g -O1" \
    -DSABOT_PYTHON="$PWD/.venv/bin/python"
fi
cmake --build "$dir" -j "$(nproc)"
