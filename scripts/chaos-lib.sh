# The chaos tests' shared shell library (sourced, not run): used by scripts/chaos.sh (streaming
# jobs with checkpoints) and meant for scripts/chaos-batch.sh (batch jobs, lineage recovery).
# It starts `sabot run JOB --agents K` in the background, kills (SIGKILL) a random agent process
# of that run at a random moment (and, sometimes, the replacement the run starts for it), and
# records what happened; every process it started is stopped when the sourcing script exits.
#
# The sourcing script sets `sabot` (the binary) and `python` (a Python with pyarrow and duckdb,
# the repository's .venv) first, then calls chaos_init.

chaos_init() {
  chaos_work="$(mktemp -d "${TMPDIR:-/tmp}/sabot-chaos-XXXXXX")"
  chaos_pids=()
  chaos_kills=0
  chaos_failures=0
  chaos_recovery_file="$chaos_work/recovery-seconds.txt"
  : >"$chaos_recovery_file"
  trap chaos_cleanup EXIT
}

chaos_cleanup() {
  local pid
  for pid in "${chaos_pids[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  for pid in "${chaos_pids[@]}"; do
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  if [ "${CHAOS_KEEP:-0}" = 1 ]; then
    echo "chaos: kept $chaos_work"
  else
    rm -rf "$chaos_work"
  fi
}

chaos_log() { echo "chaos: $*"; }
chaos_fail() {
  chaos_failures=$((chaos_failures + 1))
  echo "chaos: FAIL $1"
  local f
  for f in "${@:2}"; do echo "--- $f"; tail -n 40 "$f"; done
}

# A random integer in [lo, hi] (milliseconds, counts).
chaos_random() { echo $(( $1 + RANDOM % ($2 - $1 + 1) )); }
chaos_sleep_ms() { sleep "$(printf '%d.%03d' $(( $1 / 1000 )) $(( $1 % 1000 )))"; }

# The agent processes of run PID: its children (`sabot run --agents` starts only agents).
chaos_agents_of() { pgrep -P "$1" 2>/dev/null || true; }

# chaos_kill_random_agent PID [newest] : SIGKILL to one random live agent of run PID (with
# `newest`: the youngest, i.e. the replacement started last); prints its pid, nothing when it has
# none (the run ended).
chaos_kill_random_agent() {
  local agents=() pid
  mapfile -t agents < <(chaos_agents_of "$1")
  [ "${#agents[@]}" -gt 0 ] || return 1
  pid="${agents[$((RANDOM % ${#agents[@]}))]}"
  if [ "${2:-}" = newest ]; then pid="$(pgrep -n -P "$1" 2>/dev/null || echo "$pid")"; fi
  kill -KILL "$pid" 2>/dev/null || return 1
  echo "$pid"
}

# chaos_run NAME JOB KILLS FIRST_MS LAST_MS : runs JOB on 3 agents (`sabot run --agents 3`),
# kills KILLS agents one after the other, the first at a random moment in [FIRST_MS, LAST_MS]
# after the start and each next one 0.5 to 2 s after the previous (then a replacement may be the
# victim: the run starts one for every killed agent); waits for the run's end. Sets chaos_rc
# (its exit status) and chaos_wall (its seconds); stdout/stderr in $chaos_work/NAME.{out,err};
# the recovery times it printed are appended to $chaos_recovery_file.
chaos_run() {
  local name="$1" job="$2" kills="$3" first="$4" last="$5"
  local start end pid k victim
  start="$(date +%s.%N)"
  "$sabot" run "$job" --agents 3 >"$chaos_work/$name.out" 2>"$chaos_work/$name.err" &
  pid=$!
  chaos_pids+=("$pid")
  if [ "$kills" -gt 0 ]; then
    chaos_sleep_ms "$(chaos_random "$first" "$last")"
    for k in $(seq "$kills"); do
      # A later kill hits the replacement of the previous victim half of the time.
      local which=random
      if [ "$k" -gt 1 ] && [ $((RANDOM % 2)) -eq 0 ]; then which=newest; fi
      victim="$(chaos_kill_random_agent "$pid" "$which")" || break
      chaos_kills=$((chaos_kills + 1))
      chaos_log "$name: killed agent process $victim ($k of $kills)"
      [ "$k" -lt "$kills" ] && chaos_sleep_ms "$(chaos_random 500 2000)"
    done
  fi
  wait "$pid"
  chaos_rc=$?
  end="$(date +%s.%N)"
  chaos_wall="$("$python" -c "print(round($end - $start, 3))")"
  # The job's own time, as its summary says (without starting and stopping the agents).
  chaos_job_wall="$(sed -n 's/^job .* finished in \([0-9.]*\) s.*/\1/p' "$chaos_work/$name.out")"
  # Every restart, with its cause (one the test did not provoke is a finding too).
  grep -h "restarted (restart" "$chaos_work/$name.err" | cut -c1-400 | sed "s/^/chaos: $name: /"
  sed -n 's/^recovery: .*recovery seconds: //p' "$chaos_work/$name.err" | tr ' ' '\n' |
    grep -E '^[0-9.]+$' >>"$chaos_recovery_file" || true
}

# chaos_percentiles FILE : "median X s, p99 Y s (n values)" of the numbers in FILE, one a line.
chaos_percentiles() {
  "$python" - "$1" <<'PY'
import statistics, sys
values = sorted(float(line) for line in open(sys.argv[1]) if line.strip())
if not values:
    print("no values")
else:
    p99 = values[min(len(values) - 1, max(0, int(round(0.99 * len(values) + 0.5)) - 1))]
    print(f"median {statistics.median(values):.3f} s, p99 {p99:.3f} s ({len(values)} values)")
PY
}
