#!/usr/bin/env bash
# The streaming chaos test (docs/fault-tolerance.md, "Distributed recovery"): the seeds' pipeline
# (transactions -> key_by user_id -> 5-minute tumbling window -> sum(amount), count) with
# checkpoints every second and an exactly-once Parquet sink, run on 3 agents on loopback
# (`sabot run --agents 3`), while agent processes are killed with SIGKILL at random moments —
# N kills in all, one or two per run (the second often the replacement the run started for the
# first). Every run must finish, and its committed output must equal, as a multiset of
# (user_id, window_start, count, sum(amount)) rows, the windowed sums DuckDB computes from the
# same generated transactions (written to Parquet by a local run of the same source).
# Also measured, and printed: the time to recover (median, p99; from the failure seen by the
# driver to every task redeployed) and the checkpoints' cost in throughput (the same unthrottled
# job on the same 3 agents with checkpoints off and on).
#
# Usage: scripts/chaos.sh [N]        N kills (default: $CHAOS_N, else 10)
#   SABOT=path/to/sabot (default build/release/src/sabot/tools/sabot),
#   PYTHON=path/to/python with pyarrow and duckdb (default .venv/bin/python),
#   CHAOS_ROWS (default 600000), CHAOS_RATE rows per second (default 100000),
#   CHAOS_BENCH_ROWS rows of the throughput runs (default 30000000; 0 skips them),
#   CHAOS_KEEP=1 keeps the work folder. Exit status 0 when every run matched.
set -uo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
sabot="${SABOT:-$root/build/release/src/sabot/tools/sabot}"
python="${PYTHON:-$root/.venv/bin/python}"
kills_wanted="${1:-${CHAOS_N:-10}}"
rows="${CHAOS_ROWS:-600000}"
rate="${CHAOS_RATE:-100000}"
bench_rows="${CHAOS_BENCH_ROWS:-30000000}"
source "$root/scripts/chaos-lib.sh"
chaos_init

# chaos_job FILE OUT ROWS RATE CHECKPOINT_DIR : the pipeline; CHECKPOINT_DIR "" = checkpoints off.
chaos_job() {
  local file="$1" out="$2" job_rows="$3" job_rate="$4" checkpoints="$5"
  {
    echo "job: chaos-seed"
    if [ -n "$checkpoints" ]; then
      cat <<YAML
options:
  checkpoint:
    interval: 1s
    directory: $checkpoints
    max_restarts: 8
    restart_delay: 200ms
    restart_backoff: 1.5
    max_restart_delay: 2s
YAML
    fi
    cat <<YAML
operators:
  - name: transactions
    generator_source:
      table: transactions
      rows: $job_rows
      batch_rows: 4096
      key_cardinality: 1000
      seed: 11
      rows_per_second: $job_rate
      event_time: {column: event_time, max_out_of_orderness: 2s}
    parallelism: 4
  - key_by: [user_id]
  - name: window
    window: {size: 5m}
  - name: sum
    aggregate: [sum(amount), count(*)]
    parallelism: 5
  - name: write
    parquet_sink: $out
YAML
  } >"$file"
}

# The same transactions, to Parquet, by a local run of the same source (the reference's input).
cat >"$chaos_work/reference.yaml" <<YAML
job: chaos-reference
operators:
  - name: transactions
    generator_source:
      table: transactions
      rows: $rows
      batch_rows: 4096
      key_cardinality: 1000
      seed: 11
    parallelism: 4
  - name: write
    parquet_sink: $chaos_work/transactions
YAML
if ! "$sabot" run "$chaos_work/reference.yaml" >"$chaos_work/reference.out" \
     2>"$chaos_work/reference.err"; then
  chaos_fail "the reference data could not be generated" "$chaos_work/reference.err"
  exit 1
fi

# check_output NAME DIR : DIR holds exactly DuckDB's windowed sums of the reference data.
check_output() {
  local name="$1" dir="$2" verdict
  verdict="$("$python" - "$chaos_work/transactions" "$dir" <<'PY' 2>&1
import os, sys
import duckdb
ref_dir, out_dir = sys.argv[1], sys.argv[2]
names = sorted(os.listdir(out_dir)) if os.path.isdir(out_dir) else []
stray = [n for n in names if not n.endswith(".parquet")]
if stray:
    print(f"files that are not committed parts: {stray[:5]}"); sys.exit(1)
if not names:
    print("no output"); sys.exit(1)
con = duckdb.connect()
expected = con.execute(f"""
    SELECT user_id, (epoch_ms(event_time) // 300000) * 300000 AS w, count(*) AS n,
           sum(amount) AS s
    FROM read_parquet('{ref_dir}/*.parquet') GROUP BY ALL""").fetchall()
got = con.execute(f"""
    SELECT user_id, epoch_ms(window_start) AS w, "count" AS n, sum_amount AS s
    FROM read_parquet('{out_dir}/*.parquet')""").fetchall()
want = {(u, w): (n, s) for u, w, n, s in expected}
seen = {}
for u, w, n, s in got:
    if (u, w) in seen:
        print(f"duplicate row for user {u}, window {w}"); sys.exit(1)
    seen[(u, w)] = (n, s)
missing = [k for k in want if k not in seen]
extra = [k for k in seen if k not in want]
wrong = [k for k in want if k in seen and (seen[k][0] != want[k][0] or
         abs(seen[k][1] - want[k][1]) > 1e-6 * max(1.0, abs(want[k][1])))]
if missing or extra or wrong:
    print(f"{len(missing)} missing, {len(extra)} unexpected, {len(wrong)} wrong rows of "
          f"{len(want)}; e.g. missing {missing[:2]} extra {extra[:2]} wrong "
          f"{[(k, seen[k], want[k]) for k in wrong[:2]]}")
    sys.exit(1)
print(f"{len(got)} rows equal to DuckDB's")
PY
)"
  if [ $? -eq 0 ]; then
    chaos_log "$name: ok ($verdict)"
  else
    chaos_fail "$name: output differs from DuckDB's windowed sums: $verdict" \
      "$chaos_work/$name.err"
  fi
}

# 1. A failure-free run, checked the same way.
chaos_job "$chaos_work/clean.yaml" "$chaos_work/out-clean" "$rows" "$rate" "$chaos_work/chk-clean"
chaos_run clean "$chaos_work/clean.yaml" 0 0 0
if [ "$chaos_rc" -ne 0 ]; then
  chaos_fail "the failure-free run exited $chaos_rc" "$chaos_work/clean.err"
  exit 1
fi
check_output clean "$chaos_work/out-clean"
run_ms="$("$python" -c "print(int($chaos_wall * 1000))")"
chaos_log "failure-free run: $chaos_wall s"

# 2. Runs with kills until N agents were killed.
run=0
while [ "$chaos_kills" -lt "$kills_wanted" ]; do
  run=$((run + 1))
  left=$((kills_wanted - chaos_kills))
  kills=1
  if [ "$left" -ge 2 ] && [ $((RANDOM % 3)) -eq 0 ]; then kills=2; fi
  name="run$run"
  chaos_job "$chaos_work/$name.yaml" "$chaos_work/out-$name" "$rows" "$rate" \
    "$chaos_work/chk-$name"
  before=$chaos_kills
  # The first kill somewhere in the run (after the agents came up), at a random moment.
  chaos_run "$name" "$chaos_work/$name.yaml" "$kills" 700 $((run_ms * 3 / 4))
  if [ "$chaos_kills" -eq "$before" ]; then
    chaos_log "$name: ended before a kill; again"
  fi
  if [ "$chaos_rc" -ne 0 ]; then
    chaos_fail "$name: the run exited $chaos_rc after $((chaos_kills - before)) kills" \
      "$chaos_work/$name.err"
    continue
  fi
  check_output "$name" "$chaos_work/out-$name"
  rm -rf "$chaos_work/chk-$name"
  if [ "$run" -gt $((kills_wanted * 3 + 5)) ]; then
    chaos_fail "too many runs ended before their kill"
    break
  fi
done

# 3. What checkpoints cost: the same job unthrottled on 3 agents, checkpoints off, then on.
overhead="not measured"
if [ "$bench_rows" -gt 0 ]; then
  chaos_job "$chaos_work/bench-off.yaml" "$chaos_work/out-bench-off" "$bench_rows" 0 ""
  chaos_job "$chaos_work/bench-on.yaml" "$chaos_work/out-bench-on" "$bench_rows" 0 \
    "$chaos_work/chk-bench"
  chaos_run bench-off "$chaos_work/bench-off.yaml" 0 0 0
  off_rc=$chaos_rc; off_wall=$chaos_job_wall
  chaos_run bench-on "$chaos_work/bench-on.yaml" 0 0 0
  on_rc=$chaos_rc; on_wall=$chaos_job_wall
  if [ "$off_rc" -eq 0 ] && [ "$on_rc" -eq 0 ] && [ -n "$off_wall" ] && [ -n "$on_wall" ]; then
    overhead="$("$python" -c "
off, on, rows = $off_wall, $on_wall, $bench_rows
print(f'{rows / off / 1e6:.2f} M rows/s with checkpoints off, {rows / on / 1e6:.2f} M rows/s '
      f'with checkpoints every 1 s: ratio {off / on:.3f} (job time from its summary, '
      f'sabot run --agents 3, {rows} rows)')")"
  else
    chaos_fail "the throughput runs failed ($off_rc, $on_rc)" "$chaos_work/bench-on.err"
  fi
fi

chaos_log "$chaos_kills agent processes killed in $run runs; $chaos_failures failures"
chaos_log "time to recover: $(chaos_percentiles "$chaos_recovery_file")"
chaos_log "throughput: $overhead"
[ "$chaos_failures" -eq 0 ]
