#!/usr/bin/env bash
# End-to-end tests of `sabot shuffle`: real processes (the command and, with --agents, the agent
# processes it starts on loopback). Each case checks the exit status and what the summary says;
# the command itself verifies every row against an independent computation.
# Usage: shuffle_command_test.sh path/to/sabot
set -uo pipefail
sabot="$1"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
passed=0
failed=0

# expect_ok NAME ARGS... : exit 0 and the summary reports every row verified.
expect_ok() {
  local name="$1"; shift
  if timeout 300 "$sabot" shuffle "$@" >"$work/out" 2>"$work/err" \
     && grep -q "verified (every row exactly once, right partition)" "$work/out"; then
    passed=$((passed + 1)); echo "ok   $name"
  else
    failed=$((failed + 1)); echo "FAIL $name"; cat "$work/out" "$work/err"
  fi
}

# expect_error NAME STATUS PATTERN ARGS... : exits with STATUS and stderr matches PATTERN.
expect_error() {
  local name="$1" status="$2" pattern="$3"; shift 3
  timeout 60 "$sabot" shuffle "$@" >"$work/out" 2>"$work/err"
  local got=$?
  if [ "$got" -eq "$status" ] && grep -q -- "$pattern" "$work/err"; then
    passed=$((passed + 1)); echo "ok   $name"
  else
    failed=$((failed + 1)); echo "FAIL $name (exit $got, wanted $status and '$pattern')"
    cat "$work/err"
  fi
}

small=(--rows 200000 --batch-rows 4096)
expect_ok "local pipelined hash 4x4" "${small[@]}"
expect_ok "local blocking range 10x5 skewed" "${small[@]}" --mode blocking --edge range \
  --writers 10 --partitions 5 --keys skewed
expect_ok "local pipelined broadcast 4x3 lz4" "${small[@]}" --edge broadcast --partitions 3 \
  --compression lz4
expect_ok "2 agents pipelined hash 4x4" "${small[@]}" --agents 2
expect_ok "3 agents blocking hash 10x5 zstd" "${small[@]}" --agents 3 --mode blocking \
  --writers 10 --partitions 5 --compression zstd
expect_ok "2 agents pipelined rebalance 16x16" "${small[@]}" --agents 2 --edge rebalance \
  --writers 16 --partitions 16 --block-kib 16
# The example of docs/shuffle-service.md: a blocking shuffle of 16 times its budget spills
# (writers and readers that find the budget full spill or wait) instead of running out of memory.
expect_ok "local blocking under an 8 MiB budget spills" --rows 1000000 --mode blocking \
  --memory-budget-mib 8 --no-ceiling

# Same-run ceilings: memcpy of the same bytes (both modes), a plain Flight stream (agents);
# --no-ceiling skips them.
expect_lines() {
  local name="$1" present="$2" absent="$3"; shift 3
  if timeout 300 "$sabot" shuffle "$@" >"$work/out" 2>"$work/err" \
     && { [ -z "$present" ] || grep -q -- "$present" "$work/out"; } \
     && { [ -z "$absent" ] || ! grep -q -- "$absent" "$work/out"; }; then
    passed=$((passed + 1)); echo "ok   $name"
  else
    failed=$((failed + 1)); echo "FAIL $name"; cat "$work/out" "$work/err"
  fi
}
expect_lines "local ceiling: memcpy" "ceiling    memcpy of the same bytes, 2 threads: .* of it" \
  "Flight DoGet" "${small[@]}" --writers 2
expect_lines "distributed ceiling: Flight" "plain Arrow Flight DoGet of the same bytes .* of it" "" \
  "${small[@]}" --agents 2
expect_lines "--no-ceiling" "" "ceiling" "${small[@]}" --no-ceiling

# --bench: only the N x M shuffle timed (input generated before, output checked after), every
# row still verified, and the ratio to the same-run memcpy ceiling printed.
bench_lines=("bench      only the shuffle timed: input generated before the clock" \
  "time       .* s (the NxM shuffle alone; .* s of CPU in this process, [0-9]* page faults)" \
  "ceiling    memcpy of the same bytes, .* of it")
expect_bench() {
  local name="$1"; shift
  if timeout 300 "$sabot" shuffle --bench "$@" >"$work/out" 2>"$work/err" \
     && grep -q "verified (every row exactly once, right partition)" "$work/out" \
     && grep -q -- "${bench_lines[0]}" "$work/out" && grep -q -- "${bench_lines[1]}" "$work/out" \
     && grep -q -- "${bench_lines[2]}" "$work/out"; then
    passed=$((passed + 1)); echo "ok   $name"
  else
    failed=$((failed + 1)); echo "FAIL $name"; cat "$work/out" "$work/err"
  fi
}
expect_bench "--bench local pipelined hash 4x4" "${small[@]}"
expect_bench "--bench default table (4M rows)"
expect_bench "--bench local blocking range 10x5 skewed" "${small[@]}" --mode blocking \
  --edge range --writers 10 --partitions 5 --keys skewed
expect_bench "--bench local pipelined broadcast 4x3" "${small[@]}" --edge broadcast --partitions 3
expect_bench "--bench local pipelined forward 3x3" "${small[@]}" --edge forward --writers 3 \
  --partitions 3
expect_bench "--bench local pipelined rebalance 16x16, small blocks" "${small[@]}" \
  --edge rebalance --writers 16 --partitions 16 --block-kib 16
expect_bench "--bench empty writers" --rows 0

# The N x M sizes of the correctness matrix, across agent processes, in both shuffle modes.
for mode in pipelined blocking; do
  expect_ok "1 agent $mode 1x1" "${small[@]}" --agents 1 --mode "$mode" --writers 1 --partitions 1
  expect_ok "2 agents $mode 4x4 skewed" "${small[@]}" --agents 2 --mode "$mode" --keys skewed
  expect_ok "3 agents $mode 10x5" "${small[@]}" --agents 3 --mode "$mode" --writers 10 \
    --partitions 5
  expect_ok "2 agents $mode 16x16 range" "${small[@]}" --agents 2 --mode "$mode" --writers 16 \
    --partitions 16 --edge range --block-kib 16
  expect_ok "2 agents $mode empty partitions" "${small[@]}" --agents 2 --mode "$mode" \
    --partitions 16 --key-cardinality 3
  expect_ok "2 agents $mode empty writers" --rows 0 --agents 2 --mode "$mode"
done

# A budget so small that the blocking shuffle must spill, in both modes of the engine.
for agents in 0 2; do
  if timeout 300 "$sabot" shuffle "${small[@]}" --mode blocking --memory-budget-mib 2 \
       --block-kib 4 --agents "$agents" --spill-dir "$work" >"$work/out" 2>"$work/err" \
     && grep -q "verified" "$work/out" && ! grep -q "spilled    0.00 B" "$work/out"; then
    passed=$((passed + 1)); echo "ok   tiny budget spills (agents=$agents)"
  else
    failed=$((failed + 1)); echo "FAIL tiny budget spills (agents=$agents)"; cat "$work/out" "$work/err"
  fi
done
# Issue 9: more writers than the budget holds the working sets of (8 writers, each holding
# about 2 MiB it cannot spill, at 8 MiB; 16 writers with 64 KiB blocks, whose 512 KiB batches
# grow their admissions): later writers wait for admission instead of all starting and starving
# each other until the 30 s allocation wait fails them.
expect_ok "blocking 8 writers x 2 partitions under an 8 MiB budget" --mode blocking \
  --memory-budget-mib 8 --writers 8 --partitions 2 --no-ceiling --rows 1000000 --spill-dir "$work"
expect_ok "blocking 16 writers x 2 partitions under an 8 MiB budget" --mode blocking \
  --memory-budget-mib 8 --writers 16 --partitions 2 --block-kib 64 --no-ceiling --rows 1000000 \
  --spill-dir "$work"
# ... and with 256 KiB blocks, where the 2 readers' 32 inputs each read back a spilled block:
# a blocking read runs a few inputs at a time.
expect_ok "blocking 16 writers x 2 partitions, 256 KiB blocks, under an 8 MiB budget" \
  --mode blocking --memory-budget-mib 8 --writers 16 --partitions 2 --no-ceiling --rows 2000000 \
  --spill-dir "$work"
if [ -z "$(ls -A "$work" | grep -v '^out$\|^err$')" ]; then
  passed=$((passed + 1)); echo "ok   no spill files left behind"
else
  failed=$((failed + 1)); echo "FAIL spill files left behind:"; ls -R "$work"
fi

expect_error "zero partitions" 2 "partitions" --partitions 0
expect_error "unknown edge" 2 "--edge must be" --edge diagonal
expect_error "unknown mode" 2 "shuffle mode" --mode sideways
expect_error "unknown compression" 2 "compression" --compression rar
expect_error "too many agents" 2 "agents" --agents 1000
expect_error "--bench with agents" 2 "--bench) runs in local mode only" --bench --agents 2
expect_error "--bench without the ceiling" 2 "cannot be combined with --no-ceiling" --bench \
  --no-ceiling
expect_error "--bench output beyond the budget" 2 "keeps every batch the readers receive" \
  --bench --rows 4000000 --memory-budget-mib 64
expect_error "--bench beyond its memory limit" 2 "more than the limit of 1 MiB" --bench \
  --rows 200000 --bench-memory-mib 1
expect_error "--bench-memory-mib without --bench" 2 "applies to --bench only" \
  --bench-memory-mib 100
expect_error "budget too small for pipelined" 1 "memory budget" --rows 1000 --partitions 64 \
  --memory-budget-mib 1
# Writers that cannot open on one agent end the readers on every agent at once (the job manager
# cancels the shuffle), well inside this test's 60 s limit and the shuffle's 120 s timeout.
expect_error "budget too small, 2 agents" 1 "memory budget" --agents 2 --rows 1000 \
  --partitions 64 --memory-budget-mib 1
expect_error "budget too small, 2 agents, blocking" 1 "memory budget" --agents 2 --rows 1000 \
  --partitions 64 --memory-budget-mib 1 --mode blocking

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
