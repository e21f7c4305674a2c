# Shared by tests/cluster_*.sh (sourced, not run): a coordinator and agents started by hand as
# background processes, every one of them stopped and reaped when the test exits, however it
# exits; the comparison of two sink directories through pyarrow.
#
# The sourcing script sets `sabot` (the binary) and `python` (.venv's) first.

work="$(mktemp -d)"
# Every agent started here carries this in its --agent-id: what the orphan check looks for.
tag="cltest$$"
pids=()
passed=0
failed=0

cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  rm -rf "$work"
}
trap cleanup EXIT

ok() { passed=$((passed + 1)); echo "ok   $1"; }
fail() {
  failed=$((failed + 1)); echo "FAIL $1"
  local f
  for f in "${@:2}"; do echo "--- $f"; tail -n 30 "$f"; done
}

# start_coordinator NAME ARGS... : a coordinator on a free loopback port (unless ARGS give --port);
# sets coordinator_pid
# and coordinator_uri (empty when it did not come up within 20 s).
start_coordinator() {
  local name="$1"; shift
  local port=(--port 0)
  [[ " $* " == *" --port "* ]] && port=()
  "$sabot" coordinator "${port[@]}" "$@" >"$work/$name.out" 2>"$work/$name.err" &
  coordinator_pid=$!
  pids+=("$coordinator_pid")
  coordinator_uri=""
  for _ in $(seq 200); do
    coordinator_uri="$(sed -n 's/^sabot coordinator listening on //p' "$work/$name.out")"
    [ -n "$coordinator_uri" ] && return 0
    kill -0 "$coordinator_pid" 2>/dev/null || break
    sleep 0.1
  done
  coordinator_uri=""
}

# start_agent NAME ARGS... : `sabot agent --agent-id <tag>-NAME --port 0 ARGS...` in the
# background; sets agent_pid.
start_agent() {
  local name="$1"; shift
  "$sabot" agent --agent-id "$tag-$name" --port 0 "$@" >"$work/$name.out" 2>"$work/$name.err" &
  agent_pid=$!
  pids+=("$agent_pid")
}

# live_agents ARGS... : how many live agents `sabot jobs --agents ARGS...` lists.
live_agents() {
  "$sabot" jobs --agents "$@" 2>/dev/null | awk '$3 == "live"' | wc -l
}

# wait_agents COUNT ARGS... : waits up to 30 s until COUNT agents are live; false otherwise.
wait_agents() {
  local count="$1"; shift
  for _ in $(seq 300); do
    [ "$(live_agents "$@")" -ge "$count" ] && return 0
    sleep 0.1
  done
  return 1
}

# orphans : the processes left of the agents this test started (none expected).
orphans() { ps -eo pid=,args= | grep -F -- "$tag-" | grep -v grep || true; }

# same_rows NAME DIR_A DIR_B : the Parquet files of two sink directories hold the same rows (a
# multiset: sorted; floating-point values equal within a relative 1e-9, since sums add in
# another order), and neither holds a temporary file.
same_rows() {
  local name="$1" a="$2" b="$3"
  if "$python" - "$a" "$b" >"$work/compare.out" 2>&1 <<'EOF'
import glob, math, os, sys
import pyarrow as pa
import pyarrow.parquet as pq

def read(d):
    if glob.glob(os.path.join(d, "*.tmp")) or glob.glob(os.path.join(d, ".*tmp*")):
        sys.exit(f"{d} holds temporary files: {os.listdir(d)}")
    files = sorted(glob.glob(os.path.join(d, "part-*.parquet")))
    if not files:
        sys.exit(f"{d} holds no part file")
    table = pa.concat_tables([pq.read_table(f) for f in files])
    cols = table.column_names
    rows = [tuple(r[c] for c in cols) for r in table.to_pylist()]
    # Nulls first in each column, so that rows with nulls sort without comparing None.
    rows.sort(key=lambda row: tuple((v is not None, v if v is not None else 0) for v in row))
    return cols, rows, len(files)

def close(x, y):
    if isinstance(x, float) and isinstance(y, float):
        return x == y or abs(x - y) <= 1e-9 * max(1.0, abs(x), abs(y))
    return x == y

ca, ra, na = read(sys.argv[1])
cb, rb, nb = read(sys.argv[2])
if ca != cb:
    sys.exit(f"columns {ca} vs {cb}")
if len(ra) != len(rb):
    sys.exit(f"{len(ra)} rows vs {len(rb)}")
for i, (x, y) in enumerate(zip(ra, rb)):
    if not all(close(u, v) for u, v in zip(x, y)):
        sys.exit(f"sorted row {i}: {x} vs {y}")
print(f"{len(ra)} rows equal ({na} and {nb} files)")
EOF
  then
    ok "$name ($(cat "$work/compare.out"))"
  else
    fail "$name: $(cat "$work/compare.out")"
  fi
}

# stops_cleanly NAME PID : SIGTERM ends the process with 143, and its stderr ($work/NAME.err)
# holds no sanitizer report (sanitizer builds run these tests too).
stops_cleanly() {
  local name="$1" pid="$2" status
  kill -TERM "$pid" 2>/dev/null
  wait "$pid"
  status=$?
  if [ "$status" -eq 143 ] && ! grep -q "Sanitizer" "$work/$name.err"; then
    ok "$name stops cleanly on SIGTERM"
  else
    fail "$name stops cleanly on SIGTERM (exit $status)" "$work/$name.err"
  fi
}

finish() {
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
}
