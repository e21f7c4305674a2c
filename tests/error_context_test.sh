#!/usr/bin/env bash
# Errors of `sabot shuffle` say what failed and where, as real processes see them:
#   - a full disk under the spill directory names the cause ("No space left on device"), the
#     spill file, how many bytes were being written, and the shuffle, partition and writer;
#   - an agent killed in the middle of a run names the shuffle, the agent and the tasks
#     (writer tasks or partitions) that were lost with it.
# The disk-full cases mount a 1 MiB tmpfs and are skipped (said so) where mounting is not
# allowed. Usage: error_context_test.sh path/to/sabot
set -uo pipefail
sabot="$1"
work="$(mktemp -d)"
full="$work/full"
mounted=0
cleanup() {
  pkill -KILL -f -- "--spill-dir $work/run-" 2>/dev/null
  [ "$mounted" -eq 1 ] && umount "$full" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
[ -n "${SABOT_TEST_VERBOSE:-}" ] && set -x
passed=0
failed=0
skipped=0

pass() { passed=$((passed + 1)); echo "ok   $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1"; cat "$work/err"; }

# has_all FILE PATTERN... : every (fixed-string) pattern occurs in FILE.
has_all() {
  local file="$1"; shift
  for pattern in "$@"; do
    grep -qF -- "$pattern" "$file" || { echo "  missing: '$pattern'"; return 1; }
  done
}

mkdir -p "$full"
if mount -t tmpfs -o size=1m tmpfs "$full" 2>/dev/null; then
  mounted=1
  for agents in 0 2; do
    name="disk full while spilling (agents=$agents)"
    timeout 120 "$sabot" shuffle --mode blocking --memory-budget-mib 32 --agents "$agents" \
      --spill-dir "$full" --no-ceiling >"$work/out" 2>"$work/err"
    status=$?
    if [ "$status" -eq 1 ] && has_all "$work/err" "No space left on device" "$full/sabot-spill-" \
         ".arrows" " bytes at offset " "shuffle 'shuffle" "partition " "writer "; then
      pass "$name"
    else
      echo "  exit $status"; fail "$name"
    fi
  done
else
  for agents in 0 2; do
    skipped=$((skipped + 1)); echo "skip disk full while spilling (agents=$agents): cannot mount a tmpfs here"
  done
fi

# An agent killed mid-run. The run is long enough (minutes, of many small batches) that the kill
# always lands while its tasks run; the job must then fail within seconds, naming what was lost.
for mode in pipelined blocking; do
  name="agent killed mid-run names job, agent and tasks ($mode)"
  mkdir -p "$work/run-$mode"
  timeout 120 "$sabot" shuffle --rows 300000000 --batch-rows 512 --block-kib 16 --agents 3 \
    --mode "$mode" --no-ceiling --spill-dir "$work/run-$mode" >"$work/out" 2>"$work/err" &
  job=$!
  # Strike once all three agents run and hold their spill folders (registered, tasks started).
  victim=""
  for _ in $(seq 200); do
    if [ "$(pgrep -f -- "agent --host .*--spill-dir $work/run-$mode( |$)" | wc -l)" -eq 3 ] \
       && [ "$(ls -d "$work/run-$mode"/sabot-spill-* 2>/dev/null | wc -l)" -eq 3 ]; then
      victim="$(pgrep -f -- "--agent-id agent-1 .*--spill-dir $work/run-$mode( |$)" | head -1)"
      break
    fi
    sleep 0.1
  done
  sleep 1
  [ -n "$victim" ] && kill -KILL "$victim"
  started=$SECONDS
  wait "$job"
  status=$?
  took=$((SECONDS - started))
  if [ -n "$victim" ] && [ "$status" -eq 1 ] && [ "$took" -le 30 ] \
     && has_all "$work/err" "job 'shuffle' failed" "agent 'agent-1' (grpc+tcp://127.0.0.1:" \
     && grep -qE "task [0-9]+ of '(generate|verify)'" "$work/err"; then
    pass "$name"
  else
    echo "  exit $status after ${took}s (victim '$victim')"; fail "$name"
  fi
  pkill -KILL -f -- "--spill-dir $work/run-$mode( |$)" 2>/dev/null
done

echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
