#!/usr/bin/env bash
# Resident memory of `sabot shuffle` stays within its budget plus a fixed overhead, whatever the
# number of rows (docs/shuffle-service.md, "What memory a shuffle uses"). For local mode and for
# two agents, pipelined and blocking, it runs the same shuffle at 4M and 16M rows under a 32 MiB
# budget and reads the peak RSS (VmHWM) the command reports for each process that held shuffle
# data: each must be at most budget + 80 MiB, and 16M rows may not take more than 24 MiB over
# 4M rows (a margin for the spread between runs and agents, which is up to ~13 MiB; a check
# that kept per-row state would grow by far more). The command verifies every row itself.
# Usage: shuffle_memory_test.sh path/to/sabot
set -uo pipefail
sabot="$1"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
budget_mib=32
overhead_mib=80
growth_mib=24

# (ldd's output is captured first: with pipefail, grep -q closing the pipe early would fail it.)
libs="$(ldd "$sabot")"
if grep -q libasan <<<"$libs"; then
  # The sanitizer's shadow memory and quarantine dwarf the figures measured here.
  echo "skipped: resident memory is not meaningful under AddressSanitizer"
  exit 0
fi

passed=0
failed=0

# peak_rss ROWS ARGS... : prints the largest peak RSS (MiB, integer) the command reports.
peak_rss() {
  local rows="$1"; shift
  if ! timeout 300 "$sabot" shuffle --rows "$rows" --memory-budget-mib "$budget_mib" \
       --no-ceiling "$@" >"$work/out" 2>"$work/err" \
     || ! grep -q "verified (every row exactly once, right partition)" "$work/out"; then
    cat "$work/out" "$work/err" >&2
    echo "-1"
    return
  fi
  grep -E '^  rss ' "$work/out" >&2
  awk '/^  rss /{ for (i = 1; i <= NF; ++i) if ($i == "RSS") { v = $(i + 1) + 0; if (v > m) m = v } }
       END { printf "%d\n", m + 0.999 }' "$work/out"
}

check() {
  local name="$1"; shift
  local small big
  small="$(peak_rss 4000000 "$@")"
  big="$(peak_rss 16000000 "$@")"
  local limit=$((budget_mib + overhead_mib))
  if [ "$small" -gt 0 ] && [ "$big" -gt 0 ] && [ "$small" -le "$limit" ] \
     && [ "$big" -le "$limit" ] && [ "$big" -le $((small + growth_mib)) ]; then
    passed=$((passed + 1))
    echo "ok   $name: peak RSS ${small} MiB at 4M rows, ${big} MiB at 16M rows (limit ${limit})"
  else
    failed=$((failed + 1))
    echo "FAIL $name: peak RSS ${small} MiB at 4M rows, ${big} MiB at 16M rows (limit ${limit}," \
         "growth at most ${growth_mib})"
  fi
}

check "local pipelined" --mode pipelined
check "local blocking" --mode blocking
check "local blocking broadcast 4x3" --mode blocking --edge broadcast --partitions 3
check "2 agents pipelined" --mode pipelined --agents 2
check "2 agents blocking" --mode blocking --agents 2

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
