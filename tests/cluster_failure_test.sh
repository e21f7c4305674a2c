#!/usr/bin/env bash
# Failures of a cluster, as processes: an agent killed (SIGKILL) in the middle of a job fails
# the job within the agent timeout, with an error naming the agent, and leaves no output; the
# other agents keep serving and run the next job; a cancelled job ends cancelled without output;
# agents register again with a coordinator that restarted; `sabot run --agents 2` stopped by
# SIGINT exits 130 and leaves no process and no output behind.
# Usage: cluster_failure_test.sh path/to/sabot path/to/python
set -uo pipefail
sabot="$1"
python="$2"
source "$(dirname "$0")/cluster_lib.sh"

# A job that runs for a while: its generator is throttled (rows_per_second per task).
slow_job() {  # slow_job FILE OUT
  cat >"$1" <<EOF
operators:
  - name: slow_source
    generator_source: {table: transactions, rows: 400000, key_cardinality: 1000,
                       rows_per_second: 10000}
    parallelism: 2
  - key_by: [user_id]
  - name: write
    parquet_sink: $2
    parallelism: 2
EOF
}
no_output() {  # no_output NAME DIR : no file in DIR (no part, and no temporary file)
  local files
  files="$(find "$2" -type f 2>/dev/null)"
  if [ -z "$files" ]; then ok "$1"; else fail "$1: files left: $files"; fi
}
# wait_state JOB STATE ARGS... : waits up to 60 s until `sabot jobs` shows JOB in STATE.
wait_state() {
  local job="$1" state="$2"; shift 2
  for _ in $(seq 600); do
    "$sabot" jobs "$@" 2>/dev/null | awk -v j="$job" -v s="$state" '$1 == j && $3 == s { f = 1 } END { exit !f }' &&
      return 0
    sleep 0.1
  done
  return 1
}

start_coordinator coordinator --agent-timeout 3s
if [ -z "$coordinator_uri" ]; then
  fail "the coordinator did not start" "$work/coordinator.err"
  finish; exit
fi
c=(--coordinator "$coordinator_uri")
main_coordinator_pid=$coordinator_pid
for i in 1 2 3; do
  start_agent "agent$i" "${c[@]}" --slots 1
  eval "agent${i}_pid=$agent_pid"
done
wait_agents 3 "${c[@]}" || fail "three agents registered" "$work/agent1.err"

# --- an agent killed mid-job -------------------------------------------------------------------
slow_job "$work/slow.yaml" "$work/out/slow"
timeout 120 "$sabot" submit "$work/slow.yaml" "${c[@]}" --wait --quiet >"$work/slow.out" \
  2>"$work/slow.err" &
submit_pid=$!
for _ in $(seq 100); do [ -s "$work/slow.out" ] && break; sleep 0.1; done
job="$(head -1 "$work/slow.out")"
if wait_state "$job" running "${c[@]}"; then ok "the slow job runs ($job)"; else
  fail "the slow job runs" "$work/slow.err"; fi
sleep 1
# The agent to kill: one the job placed a task on.
victim_location="$("$sabot" jobs --agents "${c[@]}" | awk 'NR > 1 && $5 > 0 { print $2; exit }')"
victim_id="$("$sabot" jobs --agents "${c[@]}" | awk -v l="$victim_location" '$2 == l { print $1 }')"
victim_pid=""
for i in 1 2 3; do
  if grep -qF "listening on $victim_location" "$work/agent$i.out"; then eval "victim_pid=\$agent${i}_pid"; fi
done
if [ -z "$victim_pid" ]; then
  fail "found the agent to kill ($victim_location)"
else
  kill -KILL "$victim_pid"
  wait "$submit_pid"
  status=$?
  if [ "$status" -eq 1 ] && grep -qF "$victim_id" "$work/slow.err" &&
     grep -qF "$victim_location" "$work/slow.err" && grep -qF "'$job'" "$work/slow.err"; then
    ok "killing $victim_id mid-job fails the job naming it (exit 1)"
  else
    fail "killing an agent mid-job (exit $status)" "$work/slow.err" "$work/coordinator.err"
  fi
  no_output "the failed job left no output" "$work/out/slow"
  # The coordinator declares it lost once it missed its heartbeats for the agent timeout (3 s).
  lost=""
  for _ in $(seq 100); do
    if "$sabot" jobs --agents "${c[@]}" | awk -v v="$victim_id" '$1 == v && $3 == "lost" { f = 1 } END { exit !f }'; then
      lost=yes; break
    fi
    sleep 0.1
  done
  if [ -n "$lost" ]; then ok "$victim_id is listed lost"; else fail "$victim_id is listed lost"; fi
fi
# The two others run the next job.
cat >"$work/small.yaml" <<EOF
operators:
  - generator_source: {table: transactions, rows: 20000}
    parallelism: 2
  - key_by: [user_id]
  - parquet_sink: $work/out/small
EOF
if timeout 120 "$sabot" submit "$work/small.yaml" "${c[@]}" --wait --quiet >"$work/small.out" 2>&1 &&
   [ "$(find "$work/out/small" -name 'part-*.parquet' | wc -l)" -eq 2 ]; then
  ok "the surviving agents run the next job"
else
  fail "the surviving agents run the next job" "$work/small.out"
fi

# --- cancel --------------------------------------------------------------------------------------
slow_job "$work/cancel.yaml" "$work/out/cancelled"
job="$("$sabot" submit "$work/cancel.yaml" "${c[@]}" 2>"$work/cancel.err")"
wait_state "$job" running "${c[@]}" || fail "the job to cancel runs" "$work/cancel.err"
"$sabot" cancel "$job" "${c[@]}" >"$work/cancel.out" 2>&1
status=$?
if [ "$status" -eq 0 ] && wait_state "$job" cancelled "${c[@]}"; then
  ok "sabot cancel ends the job cancelled"
else
  fail "sabot cancel (exit $status)" "$work/cancel.out"
fi
no_output "the cancelled job left no output" "$work/out/cancelled"

# The agents that were not killed, and the coordinator, stop cleanly.
for i in 1 2 3; do
  eval "pid=\$agent${i}_pid"
  [ "$pid" != "$victim_pid" ] && stops_cleanly "agent$i" "$pid"
done
stops_cleanly coordinator "$main_coordinator_pid"

# --- a coordinator that restarts -----------------------------------------------------------------
port="$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
start_coordinator restart1 --port "$port"
first_pid=$coordinator_pid
r=(--coordinator "grpc+tcp://127.0.0.1:$port")
start_agent faithful "${r[@]}" --slots 1
wait_agents 1 "${r[@]}" || fail "the agent registered" "$work/faithful.err"
kill -KILL "$first_pid"
wait "$first_pid" 2>/dev/null
start_coordinator restart2 --port "$port"
if [ -n "$coordinator_uri" ] && wait_agents 1 "${r[@]}" &&
   grep -q "registering again" "$work/faithful.err"; then
  ok "the agent registers again with the restarted coordinator"
else
  fail "the agent registers again with the restarted coordinator" "$work/faithful.err" \
    "$work/restart2.err"
fi

# --- sabot run --agents 2, stopped by SIGINT -----------------------------------------------------
slow_job "$work/interrupted.yaml" "$work/out/interrupted"
mkdir -p "$work/run-spill"
"$sabot" run "$work/interrupted.yaml" --agents 2 --quiet --spill-dir "$work/run-spill" \
  >"$work/interrupted.out" 2>"$work/interrupted.err" &
run_pid=$!
# Running once its agents exist and a second has passed.
for _ in $(seq 300); do
  [ "$(ps -eo args= | grep -F -- "$work/run-spill" | grep -c -- ' agent ')" -ge 2 ] && break
  sleep 0.1
done
sleep 2
kill -INT "$run_pid"
wait "$run_pid"
status=$?
left="$(ps -eo pid=,args= | grep -F -- "$work/run-spill" | grep -v grep)"
if [ "$status" -eq 130 ] && [ -z "$left" ] && grep -q "stopped by SIGINT" "$work/interrupted.err"; then
  ok "run --agents 2 stopped by SIGINT: exit 130, no process left"
else
  fail "run --agents 2 stopped by SIGINT (exit $status; left: $left)" "$work/interrupted.err"
fi
no_output "the interrupted run left no output" "$work/out/interrupted"
finish
