#!/usr/bin/env bash
# The batch half of the chaos test (issue 14; docs/fault-tolerance.md, "Batch jobs: lineage
# recovery"): a batch job with BLOCKING shuffles — orders joined with their customers, then
# aggregated per customer — runs on a cluster of 3 agents on loopback, N times; each time one
# agent, chosen at random, is killed with SIGKILL at a random moment while the job runs. The job
# must finish every time (the driver re-runs the lost agent's work) with output equal to an
# independent computation of the same query by DuckDB over the same Parquet inputs; the killed
# agent is replaced by a new agent process before the next run.
#
# Usage: scripts/chaos-batch.sh [N]   (N: kills, default $CHAOS_KILLS or 10; CHAOS_SEED=S repeats
#                                       a run's choices of agents and moments)
#   SABOT=path/to/sabot PYTHON=path/to/python override the release build's binary and .venv's
#   python. Prints one line per kill (the agent, when, which tasks ran again) and a summary;
#   exits 0 when every run's output equals the reference, 1 otherwise.
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
kills="${1:-${CHAOS_KILLS:-10}}"
sabot="${SABOT:-$root/build/release/src/sabot/tools/sabot}"
python="${PYTHON:-$root/.venv/bin/python}"
seed="${CHAOS_SEED:-$RANDOM}"
RANDOM="$seed"
if [ ! -x "$sabot" ]; then
  echo "chaos-batch: no sabot binary at $sabot (scripts/build.sh release, or SABOT=...)" >&2
  exit 2
fi
source "$root/tests/cluster_lib.sh"
echo "chaos-batch: $kills kills, seed $seed (CHAOS_SEED=$seed repeats it), work dir $work"

# --- the inputs and the reference ---------------------------------------------------------------
# orders (CHAOS_FILES files of 250,000 rows, 48 by default: 12 million): order_id, customer_id
# (0..19,999; about 1% null), amount (a double with two decimals); customers (18,000 rows:
# every 10th id missing): customer_id, country.
"$python" - "$work/data" "${CHAOS_FILES:-48}" 250000 <<'EOF' || { echo "chaos-batch: no inputs" >&2; exit 2; }
import os, sys
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
out, files, per_file = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
os.makedirs(f"{out}/orders"); os.makedirs(f"{out}/customers")
# Arithmetic, not a random generator: the same rows on every machine, written fast.
ids = pa.array([i for i in range(20000) if i % 10 != 7], pa.int64())
countries = pa.array(["CH", "DE", "FR", "IT", "NL", "PL", "SE", "US"])
pq.write_table(pa.table({"customer_id": ids,
                         "country": pc.take(countries, pc.remainder(pc.multiply(ids, 31), 8))}),
               f"{out}/customers/customers.parquet")
for f in range(files):
    order = pa.array(range(f * per_file, (f + 1) * per_file), pa.int64())
    customer = pc.remainder(pc.multiply(order, 7919), 20000)
    customer = pc.if_else(pc.equal(pc.remainder(order, 97), 0), pa.scalar(None, pa.int64()),
                          customer)
    amount = pc.divide(pc.cast(pc.add(pc.remainder(pc.multiply(order, 104729), 99999), 1),
                               pa.float64()), 100.0)
    pq.write_table(pa.table({"order_id": order, "customer_id": customer, "amount": amount}),
                   f"{out}/orders/orders-{f}.parquet", row_group_size=50000)
EOF
"$python" - "$work/data" "$work/reference" <<'EOF' || { echo "chaos-batch: DuckDB reference failed" >&2; exit 2; }
import os, sys
import duckdb
data, out = sys.argv[1], sys.argv[2]
os.makedirs(out)
duckdb.sql(f"""
  COPY (SELECT o.customer_id, c.country, count(*) AS orders, sum(o.amount) AS total
        FROM '{data}/orders/*.parquet' o JOIN '{data}/customers/*.parquet' c
          ON o.customer_id = c.customer_id
        GROUP BY o.customer_id, c.country)
  TO '{out}/part-0.parquet' (FORMAT parquet)""")
EOF

# The job: every edge BLOCKING (lineage recovery applies), 3 tasks per operator.
job() {  # job FILE OUT
  cat >"$1" <<EOF
job: chaos-batch
options:
  shuffle_mode: blocking
  lineage_recovery: true
operators:
  - name: orders
    parquet_source: $work/data/orders
    parallelism: 3
  - name: customers
    parquet_source: $work/data/customers
    parallelism: 3
  - name: joined
    join: {on: [customer_id], how: inner}
    left: orders
    right: customers
    parallelism: 3
  - name: per_customer
    project: {columns: [customer_id, country, amount]}
  - key_by: [customer_id, country]
  - name: totals
    aggregate: [count(*) as orders, sum(amount) as total]
    parallelism: 3
  - name: write
    parquet_sink: $2
EOF
}

# --- the cluster --------------------------------------------------------------------------------
start_coordinator coordinator --agent-timeout 3s
if [ -z "$coordinator_uri" ]; then
  fail "the coordinator starts" "$work/coordinator.err"; finish; exit
fi
c=(--coordinator "$coordinator_uri")
agent_count=0
declare -A agent_pids  # agent name -> pid
add_agent() {
  agent_count=$((agent_count + 1))
  start_agent "agent$agent_count" "${c[@]}" --slots 3
  agent_pids["agent$agent_count"]=$agent_pid
}
for _ in 1 2 3; do add_agent; done
wait_agents 3 "${c[@]}" || { fail "three agents register" "$work/agent1.err"; finish; exit; }

# wait_running JOB : up to 30 s until `sabot jobs` shows JOB running (or ended).
wait_running() {
  for _ in $(seq 300); do
    "$sabot" jobs "${c[@]}" 2>/dev/null |
      awk -v j="$1" '$1 == j && ($3 == "running" || $3 == "finished" || $3 == "failed") { f = 1 } END { exit !f }' &&
      return 0
    sleep 0.1
  done
  return 1
}

# A failure-free run first: its output must equal the reference too, and how long it runs (from
# the moment `sabot jobs` shows it running to its end) bounds when the kills happen.
job "$work/job-0.yaml" "$work/out-0"
"$sabot" submit "$work/job-0.yaml" "${c[@]}" --wait --quiet >"$work/run-0.out" 2>"$work/run-0.err" &
submit_pid=$!
for _ in $(seq 100); do [ -s "$work/run-0.out" ] && break; sleep 0.05; done
wait_running "$(head -1 "$work/run-0.out")"
start_ns=$(date +%s%N)
if wait "$submit_pid"; then
  ok "the failure-free run finishes"
else
  fail "the failure-free run finishes" "$work/run-0.err" "$work/coordinator.err"; finish; exit
fi
run_ms=$(( ($(date +%s%N) - start_ns) / 1000000 ))
same_rows "the failure-free run's output equals DuckDB's" "$work/out-0" "$work/reference"
echo "chaos-batch: a failure-free run runs for $run_ms ms"

recovered=0
for k in $(seq "$kills"); do
  out="$work/out-$k"
  job "$work/job-$k.yaml" "$out"
  recoveries_before=$(grep -c "lineage recovery [0-9]" "$work/coordinator.err")
  "$sabot" submit "$work/job-$k.yaml" "${c[@]}" --wait --quiet >"$work/run-$k.out" \
    2>"$work/run-$k.err" &
  submit_pid=$!
  for _ in $(seq 100); do [ -s "$work/run-$k.out" ] && break; sleep 0.05; done
  job_id="$(head -1 "$work/run-$k.out")"
  wait_running "$job_id" || fail "kill $k: job $job_id runs" "$work/run-$k.err"
  running_ns=$(date +%s%N)
  # A random moment within the failure-free run's time, and a random live agent.
  delay_ms=$(( RANDOM % (run_ms > 100 ? run_ms : 100) ))
  sleep "$(printf '%d.%03d' $((delay_ms / 1000)) $((delay_ms % 1000)))"
  names=("${!agent_pids[@]}")
  victim="${names[$((RANDOM % ${#names[@]}))]}"
  kill -KILL "${agent_pids[$victim]}" 2>/dev/null
  wait "${agent_pids[$victim]}" 2>/dev/null
  unset "agent_pids[$victim]"
  wait "$submit_pid"
  status=$?
  elapsed_ms=$(( ($(date +%s%N) - running_ns) / 1000000 ))
  # The driver's lines for this job: "lineage recovery k of at most m in d ms: running n tasks
  # again: task ... (attempt a) on agent i ('id'); ...".
  recoveries=$(( $(grep -c "lineage recovery [0-9]" "$work/coordinator.err") - recoveries_before ))
  if [ "$recoveries" -gt 0 ]; then
    recovered=$((recovered + 1))
    # What the loss cost: this run's time running over the failure-free run's.
    echo $((elapsed_ms - run_ms)) >>"$work/extra-ms"
  fi
  echo "chaos-batch: kill $k: $victim at ${delay_ms} ms; job $job_id exit $status after" \
       "${elapsed_ms} ms running; $recoveries recoveries"
  grep "lineage recovery [0-9]" "$work/coordinator.err" | tail -n "$recoveries" |
    sed -e 's/^.*: running /    ran /' -e 's/; task /\n      task /g' -e 's/again: task/again:\n      task/'
  if [ "$status" -eq 0 ]; then
    same_rows "kill $k: the output equals DuckDB's" "$out" "$work/reference"
  else
    fail "kill $k: the job finishes (exit $status)" "$work/run-$k.err" "$work/coordinator.err"
  fi
  # The killed agent is replaced once the coordinator has seen it lost.
  for _ in $(seq 100); do
    [ "$(live_agents "${c[@]}")" -le 2 ] && break
    sleep 0.1
  done
  add_agent
  wait_agents 3 "${c[@]}" || fail "kill $k: a new agent replaces $victim" "$work/agent$agent_count.err"
  rm -rf "$out"
done
# Sanitizer builds run this too: no process may have reported an error.
if grep -l -e "ERROR: AddressSanitizer" -e "runtime error:" -e "ERROR: LeakSanitizer" \
     "$work"/*.err >/dev/null 2>&1; then
  fail "no sanitizer report" $(grep -l -e "ERROR: AddressSanitizer" -e "runtime error:" \
                                -e "ERROR: LeakSanitizer" "$work"/*.err)
fi
echo "chaos-batch: $kills kills, $recovered while the job ran (its lost work ran again), seed $seed"
if [ -s "$work/extra-ms" ]; then
  # The time a recovered run ran longer than the failure-free run: the agent timeout (3 s), the
  # restart delay (0.5 s) and the lost work done again.
  sort -n "$work/extra-ms" | awk '{ v[NR] = $1 } END {
    p50 = v[int((NR + 1) / 2)]; p99 = v[int(NR * 0.99) > 0 ? int(NR * 0.99) : 1]
    if (NR * 0.99 > int(NR * 0.99)) p99 = v[int(NR * 0.99) + 1]
    printf "chaos-batch: recovered runs ran %d ms longer than the failure-free run (median), %d ms (p99), %d ms (max), over %d runs\n", p50, p99, v[NR], NR }'
fi
finish
