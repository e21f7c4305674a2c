#!/usr/bin/env bash
# Process lifecycle of `sabot shuffle --agents K` and `sabot agent`, as real processes: whatever
# ends the job manager (SIGKILL, SIGTERM, SIGINT) or one of its agents (SIGKILL), no agent
# process and no spill folder is left behind, within seconds. Each case points the spill
# directory at its own fresh folder, which also names its processes for pgrep.
# Usage: process_lifecycle_test.sh path/to/sabot
set -uo pipefail
sabot="$1"
work="$(mktemp -d)"
passed=0
failed=0

cleanup() {
  # Whatever a failed case left running (found by its unique spill folder), then the files.
  pkill -KILL -f -- "--spill-dir $work/" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

ok() { passed=$((passed + 1)); echo "ok   $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1"; shift; for f in "$@"; do cat "$f"; done; }

# agents DIR: the pids of the agent processes spilling into DIR.
agents() { pgrep -f -- "agent --host 127.0.0.1 .*--spill-dir $1( |$)"; }

# wait_for SECONDS COMMAND...: polls COMMAND every 0.1 s until it succeeds; fails at the limit.
wait_for() {
  local limit=$(( $1 * 10 )); shift
  for ((i = 0; i < limit; i++)); do
    if "$@"; then return 0; fi
    sleep 0.1
  done
  return 1
}
three_agents_spilling() {
  [ "$(agents "$1" | wc -l)" -eq 3 ] && [ "$(ls -d "$1"/sabot-spill-* 2>/dev/null | wc -l)" -eq 3 ]
}
# started DIR: the job's three agents run and have their spill folders; a second more and their
# tasks run too (the job is mid-run when the case strikes).
started() { wait_for 20 three_agents_spilling "$1" && sleep 1; }
nothing_left() { [ -z "$(agents "$1")" ] && [ -z "$(ls -A "$1")" ]; }

# start_job DIR ARGS...: starts a job far too long to finish within a case (about a minute
# alone on two cores: many small batches; few rows, so its verification state stays small), in
# the background; its pid in $job.
start_job() {
  local dir="$1"; shift
  mkdir -p "$dir"
  "$sabot" shuffle --agents 3 --rows 300000000 --batch-rows 512 --block-kib 16 --no-ceiling \
    --spill-dir "$dir" "$@" \
    >"$dir.out" 2>"$dir.err" &
  job=$!
}

# 1. SIGKILL of the job manager: its agents see their lifeline close and stop by themselves,
#    deleting their spill folders.
dir="$work/kill-manager"
start_job "$dir"
if ! started "$dir"; then
  fail "SIGKILL of the job manager: the job did not start" "$dir.err"
else
  kill -KILL "$job"; wait "$job" 2>/dev/null
  if wait_for 10 nothing_left "$dir"; then
    ok "SIGKILL of the job manager: every agent exits, every spill folder is removed"
  else
    fail "SIGKILL of the job manager left processes or files behind" "$dir.err"
    agents "$dir"; ls -R "$dir"
  fi
fi

# 2, 3. SIGTERM and SIGINT of the job manager: the job is cancelled, the agents stopped, their
#    folders removed; the command says so and exits with 128 + the signal.
for signal in TERM INT; do
  dir="$work/sig$signal"
  start_job "$dir"
  if ! started "$dir"; then
    fail "SIG$signal of the job manager: the job did not start" "$dir.err"
    continue
  fi
  kill "-$signal" "$job"
  wait "$job"
  status=$?
  want=$([ "$signal" = TERM ] && echo 143 || echo 130)
  if [ "$status" -eq "$want" ] && grep -q "stopped by SIG$signal: the job was cancelled" "$dir.err" \
     && nothing_left "$dir"; then
    ok "SIG$signal of the job manager: exit $want, a clear message, nothing left behind"
  else
    fail "SIG$signal of the job manager (exit $status, wanted $want)" "$dir.err"
    agents "$dir"; ls -R "$dir"
  fi
done

# SIGTERM in local mode: the job is cancelled, the command's own spill folder removed.
dir="$work/local-term"
mkdir -p "$dir"
"$sabot" shuffle --rows 300000000 --batch-rows 512 --block-kib 16 --no-ceiling \
  --spill-dir "$dir" >"$dir.out" 2>"$dir.err" &
job=$!
if wait_for 20 bash -c "ls -d '$dir'/sabot-spill-* >/dev/null 2>&1" && sleep 1; then
  kill -TERM "$job"; wait "$job"; status=$?
  if [ "$status" -eq 143 ] && grep -q "stopped by SIGTERM: the job was cancelled" "$dir.err" \
     && [ -z "$(ls -A "$dir")" ]; then
    ok "SIGTERM in local mode: exit 143, a clear message, no spill folder left"
  else
    fail "SIGTERM in local mode (exit $status)" "$dir.err"; ls -R "$dir"
  fi
else
  kill -KILL "$job"; fail "SIGTERM in local mode: the job did not start" "$dir.err"
fi

# 4. SIGKILL of one agent mid-run: the job fails at once (the other agents cancel their tasks),
#    and the job manager removes the dead agent's spill folder, which it could not remove itself.
dir="$work/kill-agent"
start_job "$dir"
if ! started "$dir"; then
  fail "SIGKILL of an agent: the job did not start" "$dir.err"
else
  victim=$(pgrep -f -- "--agent-id agent-1 .*--spill-dir $dir( |$)")
  kill -KILL "$victim"
  if wait_for 15 bash -c "! kill -0 $job 2>/dev/null"; then
    wait "$job"; status=$?
    if [ "$status" -eq 1 ] && grep -q "removed the spill folder .*sabot-spill-$victim-" "$dir.err" \
       && nothing_left "$dir"; then
      ok "SIGKILL of an agent: the job fails promptly, the dead agent's folder is removed"
    else
      fail "SIGKILL of an agent (exit $status)" "$dir.err"; agents "$dir"; ls -R "$dir"
    fi
  else
    fail "SIGKILL of an agent: the job did not end" "$dir.err"
  fi
fi

# A stuck agent (SIGSTOP) does not hold up SIGTERM: the job manager gives the cancelled task
# calls 10 s, then stops the agents (the stuck one by SIGKILL) and removes its folder.
dir="$work/stuck-agent"
start_job "$dir"
if ! started "$dir"; then
  fail "SIGTERM with a stuck agent: the job did not start" "$dir.err"
else
  stuck=$(pgrep -f -- "--agent-id agent-2 .*--spill-dir $dir( |$)")
  kill -STOP "$stuck"
  kill -TERM "$job"
  if wait_for 30 bash -c "! kill -0 $job 2>/dev/null"; then
    wait "$job"; status=$?
    if [ "$status" -eq 143 ] && grep -q "removed the spill folder .*sabot-spill-$stuck-" "$dir.err" \
       && nothing_left "$dir"; then
      ok "SIGTERM with a stuck agent: exit 143 within seconds, nothing left behind"
    else
      fail "SIGTERM with a stuck agent (exit $status)" "$dir.err"; agents "$dir"; ls -R "$dir"
    fi
  else
    kill -CONT "$stuck"; fail "SIGTERM with a stuck agent: the job did not end" "$dir.err"
  fi
fi

# 5. An agent whose lifeline closes (its parent is gone) stops cleanly, exit 1.
dir="$work/lifeline"
mkdir -p "$dir"
"$sabot" agent --port 0 --spill-dir "$dir" --lifeline-fd 3 3< <(sleep 1) >"$dir.out" 2>"$dir.err" &
agent=$!
if wait_for 15 bash -c "! kill -0 $agent 2>/dev/null"; then
  wait "$agent"; status=$?
  if [ "$status" -eq 1 ] && grep -q "lifeline pipe closed" "$dir.err" && [ -z "$(ls -A "$dir")" ]; then
    ok "an agent whose lifeline closes stops, removing its spill folder"
  else
    fail "lifeline (exit $status)" "$dir.err"; ls -R "$dir"
  fi
else
  kill -KILL "$agent"; fail "an agent whose lifeline closed kept running" "$dir.err"
fi

# 6. An agent that hears nothing from its job manager for --control-timeout-s stops, exit 1.
dir="$work/heartbeat"
mkdir -p "$dir"
"$sabot" agent --port 0 --spill-dir "$dir" --control-timeout-s 1 >"$dir.out" 2>"$dir.err" &
agent=$!
if wait_for 15 bash -c "! kill -0 $agent 2>/dev/null"; then
  wait "$agent"; status=$?
  if [ "$status" -eq 1 ] && grep -q "heard nothing from its job manager for 1 s" "$dir.err" \
     && [ -z "$(ls -A "$dir")" ]; then
    ok "an agent without a heartbeat stops, removing its spill folder"
  else
    fail "heartbeat (exit $status)" "$dir.err"; ls -R "$dir"
  fi
else
  kill -KILL "$agent"; fail "an agent without a heartbeat kept running" "$dir.err"
fi

# 7. An agent at start removes the spill folders of killed processes (their lock is free) and
#    keeps everything else.
dir="$work/sweep"
mkdir -p "$dir/sabot-spill-999999999-0/job" "$dir/unrelated"
: >"$dir/sabot-spill-999999999-0/lock"
: >"$dir/sabot-spill-999999999-0/job/p0-w0-a0.arrows"
"$sabot" agent --port 0 --spill-dir "$dir" --control-timeout-s 1 >"$dir.out" 2>"$dir.err"
if grep -q "removed the stale spill folder $dir/sabot-spill-999999999-0" "$dir.err" \
   && [ ! -e "$dir/sabot-spill-999999999-0" ] && [ -d "$dir/unrelated" ]; then
  ok "an agent at start removes stale spill folders"
else
  fail "stale spill folders at agent start" "$dir.err"; ls -R "$dir"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
