#!/usr/bin/env bash
# The stateful operators' benchmarks (docs/performance.md, "Stateful operators"): builds the
# release plan_benchmark, then runs scripts/bench_stateful.py with it, passing every argument on
# (--queries window,join, --runs N, --rows N, --data-dir DIR to keep the generated tables, ...).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -f build/release/build.ninja ]; then scripts/build.sh release; fi
cmake --build build/release -j "$(nproc)" --target plan_benchmark
exec .venv/bin/python scripts/bench_stateful.py \
  --plan-benchmark build/release/src/sabot/dataflow/plan_benchmark "$@"
