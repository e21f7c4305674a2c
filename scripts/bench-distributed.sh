#!/usr/bin/env bash
# The distributed benchmark of issue 12 (docs/performance.md, "Distributed shuffle edge (issue
# 12)"), all in one run on this machine:
#   1. `sabot shuffle` (HASH 4x4, 4M rows, pipelined) locally and with --agents 2, each run
#      followed by its same-run ceilings (memcpy; with agents, a plain Arrow Flight DoGet stream
#      of the same bytes over loopback), printed as ratios; plus the CPU time of each mode
#      (user + system of the command and its agents, from a run without the ceilings); with
#      agents also the job's fixed cost (a 16,384-row job's time) and the ratio without it,
#      labelled as such.
#   2. The distributed shuffle edge alone (sabot_distributed_bench --edge): the same table's
#      batches, pre-encoded, through 2 pipelined Flight channels of Sabot's transport, against a
#      plain Arrow Flight DoGet of the same bytes, alternating, in this process.
#   3. The seed pipeline (examples/seed-pipeline.yaml) locally and on 2 agent processes through
#      RunDistributedJob (sabot_distributed_bench), medians of wall and CPU time, and the ratio.
# Medians over RUNS runs (default 5). The machine's load average is printed with the figures:
# on a shared machine single runs vary by tens of percent.
#
#   scripts/bench-distributed.sh [RUNS]       # BUILD=build/release by default
#   SEED_ROWS=N scripts/bench-distributed.sh   # the seed pipeline's rows (20,000,000: about 1 s)
#   MODE=blocking scripts/bench-distributed.sh  # the shuffle's mode (pipelined by default)
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-5}"
build="${BUILD:-build/release}"
mode="${MODE:-pipelined}"
sabot="$build/src/sabot/tools/sabot"
bench="$build/src/sabot/runtime/sabot_distributed_bench"
for binary in "$sabot" "$bench"; do
  if [ ! -x "$binary" ]; then
    echo "bench-distributed.sh: $binary is missing; build it first:" >&2
    echo "  cmake --build $build -j2 --target sabot_cli sabot_distributed_bench" >&2
    exit 2
  fi
done
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

median() { sort -g | awk '{v[NR] = $1} END {if (NR == 0) print "n/a";
  else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.4g\n", (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

echo "== $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== 1. sabot shuffle, HASH 4x4, 4M rows, $mode: local and --agents 2, $runs runs each"
for agents in 0 2; do
  label=$([ "$agents" = 0 ] && echo local || echo "agents=$agents")
  : > "$scratch/$label.time"; : > "$scratch/$label.cpu"; : > "$scratch/$label.memcpy"
  : > "$scratch/$label.flight"; : > "$scratch/$label.flight_rate"
  : > "$scratch/$label.fixed"; : > "$scratch/$label.net"
  for run in $(seq "$runs"); do
    out="$scratch/out"
    "$sabot" shuffle --agents "$agents" --mode "$mode" > "$out"
    time_s=$(awk '$1 == "time" {print $2; exit}' "$out")
    memcpy=$(awk '/memcpy of the same bytes/ {print $(NF - 2); exit}' "$out")
    flight=$(awk '/plain Arrow Flight/ {print $(NF - 2); exit}' "$out")
    flight_rate=$(awk '/plain Arrow Flight/ {for (i = 1; i <= NF; ++i) if ($i ~ /\/s;$/) {
      print $(i - 1), $i; exit}}' "$out")
    # CPU of the job alone (this command and its agent processes, which it reaps): a second run
    # without the ceilings, timed by bash (getrusage of the waited-for children).
    TIMEFORMAT='%U %S'
    cpu=$( { time "$sabot" shuffle --agents "$agents" --mode "$mode" --no-ceiling > /dev/null; } \
      2>&1 | awk '{print $1 + $2}')
    if [ "$agents" != 0 ]; then
      # The job's fixed cost on agents (deploy, status polls, the commit phases), estimated as
      # the time of the same command moving 16,384 rows: subtracted for the ratio labelled
      # "without the fixed per-job cost" (not the goal's figure).
      "$sabot" shuffle --agents "$agents" --mode "$mode" --rows 16384 --no-ceiling > "$scratch/tiny"
      awk '$1 == "time" {print $2; exit}' "$scratch/tiny" >> "$scratch/$label.fixed"
      bytes=$(awk '$1 == "bytes" {print $2 * 1e6; exit}' "$out")
      flight_bps=$(awk '/plain Arrow Flight/ {for (i = 1; i <= NF; ++i) if ($i ~ /\/s;$/) {
        v = $(i - 1); u = $i; print (u ~ /^GB/ ? v * 1e9 : v * 1e6); exit}}' "$out")
      fixed=$(tail -n 1 "$scratch/$label.fixed")
      awk -v b="$bytes" -v t="$time_s" -v f="$fixed" -v r="$flight_bps" 'BEGIN {
        if (t > f && r > 0) printf "%.3f\n", b / (t - f) / r}' >> "$scratch/$label.net"
    fi
    echo "$time_s" >> "$scratch/$label.time"
    echo "$cpu" >> "$scratch/$label.cpu"
    echo "$memcpy" >> "$scratch/$label.memcpy"
    [ -n "$flight" ] && echo "$flight" >> "$scratch/$label.flight"
    printf '  %-9s run %d: %s s; of memcpy %s%s; CPU %s s (with process start); load %s\n' \
      "$label" "$run" "$time_s" "$memcpy" \
      "$([ -n "$flight" ] && echo "; plain Flight $flight_rate this shuffle $flight of it")" \
      "$cpu" "$(cut -d' ' -f1 /proc/loadavg)"
  done
done
local_time=$(median < "$scratch/local.time")
agents_time=$(median < "$scratch/agents=2.time")
echo "result shuffle local:    $local_time s (median), CPU $(median < "$scratch/local.cpu") s," \
     "of memcpy $(median < "$scratch/local.memcpy")"
echo "result shuffle 2 agents: $agents_time s (median), CPU $(median < "$scratch/agents=2.cpu") s," \
     "of plain Flight $(median < "$scratch/agents=2.flight") (goal >= 0.8)," \
     "$(awk -v l="$local_time" -v a="$agents_time" 'BEGIN {printf "%.2f", l / a}') of local speed"
echo "result shuffle 2 agents without the fixed per-job cost (deploy, polls, commit; median" \
     "$(median < "$scratch/agents=2.fixed") s, the time of a 16,384-row job):" \
     "$(median < "$scratch/agents=2.net") of plain Flight (not the goal's figure, which includes it)"

echo "== 2. the distributed shuffle edge alone against plain Flight, $runs runs"
"$bench" --edge --runs "$runs"

rows="${SEED_ROWS:-20000000}"
echo "== 3. seed pipeline (examples/seed-pipeline.yaml, rows: $rows): local and 2 agent processes," \
     "$runs runs each"
"$bench" examples/seed-pipeline.yaml --agents 2 --runs "$runs" --rows "$rows" --sabot "$sabot" \
  2> >(grep -v -e 'received SIGTERM' -e 'lost its job manager' >&2)
echo "== done, load average $(cut -d' ' -f1-3 /proc/loadavg)"
