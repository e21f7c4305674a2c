#!/usr/bin/env bash
# Configures and builds Sabot. Usage: scripts/build.sh [release|asan|fuzz]
#   release -> build/release  (optimized, with debug info)
#   asan    -> build/asan     (AddressSanitizer + UndefinedBehaviorSanitizer)
#   fuzz    -> build/fuzz     (clang; the libFuzzer targets of src/sabot/fuzz under ASan + UBSan,
#                              and nothing else; `ctest --test-dir build/fuzz` runs each briefly)
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
  fuzz)     build_type=Debug;          sanitize=OFF; benchmarks=OFF ;;
  *) echo "build.sh: unknown flavor '$flavor' (expected release, asan or fuzz)" >&2; exit 2 ;;
esac
extra=()
target=()
if [ "$flavor" = fuzz ]; then
  extra=(-DCMAKE_CXX_COMPILER=clang++ -DSABOT_FUZZ=ON -DSABOT_BUILD_TESTS=OFF)
  target=(--target sabot_fuzz_targets)
fi

# ccache: key objects by paths relative to the checkout, so every clone shares one cache.
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=true

dir="build/$flavor"
if [ ! -f "$dir/build.ninja" ]; then
  cmake -S . -B "$dir" -G Ninja \
    -DCMAKE_BUILD_TYPE="$build_type" \
    -DSABOT_SANITIZE="$sanitize" \
    -DSABOT_BUILD_BENCHMARKS="$benchmarks" \
    -DCMAKE_CXX_FLAGS_DEBUG="-g -O1" \
    -DSABOT_PYTHON="$PWD/.venv/bin/python" "${extra[@]}"
fi
cmake --build "$dir" -j "$(nproc)" "${target[@]}"
