#!/usr/bin/env bash
# A cluster started by hand — `sabot coordinator` and three `sabot agent --coordinator` — runs
# three example jobs submitted at once, and each one's output equals the local `sabot run` of the
# same job (compared through pyarrow as sorted rows); `sabot run --agents 3` equals the local run
# too and leaves no process behind; `sabot jobs` and `sabot cancel` report and act on what ran;
# bad jobs are refused (exit 2) or fail (exit 1) with errors naming the operator and its line.
# Usage: cluster_jobs_test.sh path/to/sabot path/to/examples path/to/python
set -uo pipefail
sabot="$1"
examples="$2"
python="$3"
source "$(dirname "$0")/cluster_lib.sh"

jobs=(seed-pipeline sessionization orders-customers-join)
summary_head="^job [a-z-]+ finished in [0-9.]+ s; peak memory .* budget$"

# The examples, copied three times: their outputs (out/, relative to the job file) must not
# meet. The join's inputs are written in each copy by its seeded generator.
for copy in local cluster embedded; do
  mkdir -p "$work/$copy"
  cp "$examples"/*.yaml "$work/$copy/"
  "$python" "$examples/make-orders-customers.py" --out "$work/$copy/data" >/dev/null
done
sink_of() {  # the sink directory of example $1 in copy $2
  case "$1" in
    seed-pipeline) echo "$2/out/seed-pipeline" ;;
    sessionization) echo "$2/out/sessions" ;;
    orders-customers-join) echo "$2/out/orders-customers" ;;
  esac
}

# --- the local runs: the reference ---------------------------------------------------------------
for job in "${jobs[@]}"; do
  if timeout 300 "$sabot" run "$work/local/$job.yaml" --quiet >"$work/local-$job.out" 2>&1; then
    ok "local $job"
  else
    fail "local $job" "$work/local-$job.out"
  fi
done

# --- a cluster started by hand -----------------------------------------------------------------
start_coordinator coordinator --agent-timeout 5s
if [ -z "$coordinator_uri" ]; then
  fail "the coordinator did not start" "$work/coordinator.err"
  finish; exit
fi
c=(--coordinator "$coordinator_uri")
declare -A agent_pids
for i in 1 2 3; do
  start_agent "agent$i" "${c[@]}" --slots 4
  agent_pids[$i]=$agent_pid
done
if wait_agents 3 "${c[@]}"; then ok "three agents registered"; else
  fail "three agents registered" "$work/agent1.err" "$work/coordinator.err"; fi

# Three jobs at once (5 + 4 + 3 slots of the 12).
declare -A submitted
for job in "${jobs[@]}"; do
  timeout 300 "$sabot" submit "$work/cluster/$job.yaml" "${c[@]}" --wait --quiet \
    >"$work/submit-$job.out" 2>"$work/submit-$job.err" &
  submitted[$job]=$!
done
for job in "${jobs[@]}"; do
  wait "${submitted[$job]}"
  status=$?
  if [ "$status" -eq 0 ] && grep -qE "^job-[0-9]+$" "$work/submit-$job.out" &&
     grep -qE "$summary_head" "$work/submit-$job.out"; then
    ok "submit --wait $job (id, summary, exit 0)"
  else
    fail "submit --wait $job (exit $status)" "$work/submit-$job.out" "$work/submit-$job.err"
  fi
  same_rows "$job on the cluster equals local" "$(sink_of "$job" "$work/local")" \
    "$(sink_of "$job" "$work/cluster")"
done
"$sabot" jobs "${c[@]}" >"$work/jobs.out" 2>&1
if [ "$(grep -cE '^job-[0-9]+ +[a-z-]+ +finished ' "$work/jobs.out")" -eq 3 ] &&
   head -1 "$work/jobs.out" | grep -qE '^ID +NAME +STATE +TASKS +ELAPSED +ERROR'; then
  ok "sabot jobs lists the three finished jobs"
else
  fail "sabot jobs lists the three finished jobs" "$work/jobs.out"
fi
if [ "$(live_agents "${c[@]}")" -eq 3 ] &&
   "$sabot" jobs --agents "${c[@]}" | awk 'NR > 1 && $5 != 0 { bad = 1 } END { exit bad }'; then
  ok "agents live, every slot free again"
else
  fail "agents live, every slot free again"
fi

# --- bad jobs ------------------------------------------------------------------------------------
# A plan whose JSON names an unknown parameter: refused by the coordinator, naming the operator.
"$sabot" run "$work/cluster/seed-pipeline.yaml" --plan-json | sed 's/"key_cardinality"/"key_cardinalty"/' \
  >"$work/bad-plan.json"
"$sabot" submit "$work/bad-plan.json" "${c[@]}" >"$work/bad.out" 2>"$work/bad.err"
status=$?
if [ "$status" -eq 2 ] && grep -q "operator 'transactions'" "$work/bad.err" &&
   grep -q "key_cardinalty" "$work/bad.err"; then
  ok "a bad plan is refused naming its operator (exit 2)"
else
  fail "a bad plan is refused (exit $status)" "$work/bad.err"
fi
# More slots than the cluster has: refused at once with the operator's line.
cat >"$work/cluster/too-wide.yaml" <<'EOF'
operators:
  - name: wide
    generator_source: {table: transactions, rows: 1000}
    parallelism: 40
  - parquet_sink: out/too-wide
EOF
"$sabot" submit "$work/cluster/too-wide.yaml" "${c[@]}" >"$work/wide.out" 2>"$work/wide.err"
status=$?
if [ "$status" -eq 2 ] && grep -q "too-wide.yaml:3:5: .*needs 40 slots (operator 'wide'" "$work/wide.err" &&
   grep -q "12 slots on 3 live agents" "$work/wide.err"; then
  ok "a job wider than the cluster is refused (exit 2)"
else
  fail "a job wider than the cluster is refused (exit $status)" "$work/wide.err"
fi
# A job that fails on the agents (an unknown column): exit 1, the operator and its line, and no
# output.
cat >"$work/cluster/bad-column.yaml" <<'EOF'
operators:
  - name: source
    generator_source: {table: transactions, rows: 10000}
    parallelism: 2
  - name: only_big
    filter: "amount_in_euros > 5"
  - parquet_sink: out/bad-column
EOF
timeout 120 "$sabot" submit "$work/cluster/bad-column.yaml" "${c[@]}" --wait --quiet \
  >"$work/badcol.out" 2>"$work/badcol.err"
status=$?
if [ "$status" -eq 1 ] && grep -q "bad-column.yaml:[0-9]*:[0-9]*: .*operator 'only_big'" "$work/badcol.err" &&
   [ -z "$(find "$work/cluster/out/bad-column" -name 'part-*' 2>/dev/null)" ]; then
  ok "a job failing on the agents names the operator and its line (exit 1), no output"
else
  fail "a job failing on the agents (exit $status)" "$work/badcol.err"
fi
# Unknown ids and an unreachable coordinator.
"$sabot" cancel job-999 "${c[@]}" >"$work/cancel.out" 2>"$work/cancel.err"
status=$?
if [ "$status" -eq 2 ] && grep -q "no job 'job-999'" "$work/cancel.err"; then
  ok "cancel of an unknown job (exit 2)"
else
  fail "cancel of an unknown job (exit $status)" "$work/cancel.err"
fi
# Ports out of range are refused (exit 2), not ignored for the default or for no HTTP API.
for option in "--port -5" "--port 0 --http-port -5" "--port 0 --http-port 70000"; do
  bad="$(echo "$option" | grep -o -- '--[a-z-]* [0-9-]*$' | cut -d' ' -f1)"  # the refused option
  # shellcheck disable=SC2086
  timeout 5 "$sabot" coordinator $option >"$work/badport.out" 2>"$work/badport.err"
  status=$?
  if [ "$status" -eq 2 ] && grep -q -- "$bad" "$work/badport.err"; then
    ok "coordinator $option is refused (exit 2)"
  else
    fail "coordinator $option is refused (exit $status)" "$work/badport.out" "$work/badport.err"
  fi
done
"$sabot" jobs --coordinator grpc+tcp://127.0.0.1:1 >"$work/unreach.out" 2>"$work/unreach.err"
status=$?
if [ "$status" -eq 1 ] && grep -q "coordinator at grpc+tcp://127.0.0.1:1" "$work/unreach.err"; then
  ok "an unreachable coordinator (exit 1)"
else
  fail "an unreachable coordinator (exit $status)" "$work/unreach.err"
fi

# --- the embedded path: sabot run --agents 3 -----------------------------------------------------
mkdir -p "$work/embedded-spill"
timeout 300 "$sabot" run "$work/embedded/seed-pipeline.yaml" --agents 3 --quiet \
  --spill-dir "$work/embedded-spill" >"$work/embedded.out" 2>"$work/embedded.err"
status=$?
if [ "$status" -eq 0 ] && grep -qE "$summary_head" "$work/embedded.out" &&
   grep -qE "^  to_usd -> window  hash 4x5  900,000 rows" "$work/embedded.out"; then
  ok "run --agents 3: exit 0 and the local run's summary"
else
  fail "run --agents 3 (exit $status)" "$work/embedded.out" "$work/embedded.err"
fi
same_rows "run --agents 3 equals local" "$(sink_of seed-pipeline "$work/local")" \
  "$(sink_of seed-pipeline "$work/embedded")"
left="$(ps -eo pid=,args= | grep -F -- "$work/embedded-spill" | grep -v grep)"
if [ -z "$left" ]; then ok "run --agents 3 left no process"; else fail "processes left: $left"; fi

for i in 1 2 3; do stops_cleanly "agent$i" "${agent_pids[$i]}"; done
stops_cleanly coordinator "$coordinator_pid"
finish
