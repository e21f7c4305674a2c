#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs and builds what is needed, runs every
# test in the optimized build, then builds again under AddressSanitizer + UndefinedBehaviorSanitizer
# and runs every test there too, then builds the libFuzzer targets (clang, ASan + UBSan) and runs
# each for a bounded time (about 20 s each, 2 at a time). Set SABOT_SKIP_SANITIZERS=1 to run
# only the first part.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs="$(nproc)"

scripts/build.sh release
(cd build/release && ctest --output-on-failure -j "$jobs" --timeout 600)
# The Python package's tests (scripts/setup.sh installed the package into .venv; docs/python.md).
.venv/bin/python -m pytest -q tests/python/package

if [ "${SABOT_SKIP_SANITIZERS:-0}" != "1" ]; then
  scripts/build.sh asan
  (cd build/asan && ctest --output-on-failure -j "$jobs" --timeout 900)
  scripts/build.sh fuzz
  (cd build/fuzz && ctest --output-on-failure -j "$jobs" --timeout 300 -L fuzz)
fi
