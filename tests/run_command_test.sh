#!/usr/bin/env bash
# `sabot run` as a process: every example job runs to exit 0 with its summary; bad job files exit
# 2 with the file, line and operator in the message; a job whose task fails exits 1, names the
# operator and its line, and leaves no output under a final name. (The rows themselves are
# checked against pyarrow by tests/python/test_examples_reference.py.)
# Usage: run_command_test.sh path/to/sabot path/to/examples
set -uo pipefail
sabot="$1"
examples="$2"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp "$examples"/*.yaml "$work"/
passed=0
failed=0

fail() { failed=$((failed + 1)); echo "FAIL $1"; cat "$work/stdout" "$work/stderr"; }

# expect_run NAME JOB PATTERN... : exit 0 and every PATTERN (grep -E) in stdout; the options in
# the array `extra` are passed after the job.
extra=()
expect_run() {
  local name="$1" job="$2"; shift 2
  timeout 600 "$sabot" run "$work/$job" "${extra[@]}" >"$work/stdout" 2>"$work/stderr"
  local got=$?
  if [ "$got" -ne 0 ]; then fail "$name (exit $got)"; return; fi
  for pattern in "$@"; do
    if ! grep -qE -- "$pattern" "$work/stdout"; then fail "$name: no '$pattern' in stdout"; return; fi
  done
  passed=$((passed + 1)); echo "ok   $name"
}

# expect_exit NAME STATUS PATTERN JOB [ARGS...] : exit STATUS and PATTERN (grep -E) in stderr.
expect_exit() {
  local name="$1" status="$2" pattern="$3" job="$4"; shift 4
  timeout 120 "$sabot" run "$job" "$@" >"$work/stdout" 2>"$work/stderr"
  local got=$?
  if [ "$got" -eq "$status" ] && grep -qE -- "$pattern" "$work/stderr"; then
    passed=$((passed + 1)); echo "ok   $name"
  else
    fail "$name (exit $got, wanted $status and '$pattern')"
  fi
}

# expect_files NAME DIR COUNT EXT : exactly COUNT part files and no temporary file in DIR.
expect_files() {
  local name="$1" dir="$2" count="$3" ext="$4"
  local parts tmps
  parts=$(find "$dir" -maxdepth 1 -name "part-*.$ext" 2>/dev/null | wc -l)
  tmps=$(find "$dir" -maxdepth 1 -name "*.tmp" 2>/dev/null | wc -l)
  if [ "$parts" -eq "$count" ] && [ "$tmps" -eq 0 ]; then
    passed=$((passed + 1)); echo "ok   $name"
  else
    failed=$((failed + 1)); echo "FAIL $name: $parts part files (wanted $count), $tmps temporary"
    ls -la "$dir" 2>&1
  fi
}

summary_head="^job [a-z-]+ finished in [0-9.]+ s; peak memory .* budget$"

# --- the examples ------------------------------------------------------------------------------
expect_run "seed pipeline" seed-pipeline-keyed.yaml "$summary_head" \
  "^  transactions +generator_source +4 +0 +200,000 " \
  "^  by_user +parquet_sink +2 +200,000 +200,000 " \
  "^  transactions -> to_usd  forward, chained" \
  "^  to_usd -> by_user  hash 4x2  200,000 rows .* skew [0-9.]+ .* blocked [0-9.]+ s$" \
  "^    rows +p0 +p1$" "^    w3 " "^    total "
expect_files "seed pipeline output" "$work/out/by-user" 2 parquet

expect_run "seed pipeline with windows" seed-pipeline.yaml "$summary_head" \
  "^  to_usd -> window  hash 4x5  900,000 rows" \
  "^  sum +aggregate +5 +900,000 +[0-9,]+ " \
  "^  window -> sum  forward, chained"
expect_files "seed pipeline with windows output" "$work/out/seed-pipeline" 5 parquet

expect_run "sessionization" sessionization.yaml "$summary_head" \
  "^  transactions -> sessions  hash 4x3  200,000 rows" \
  "^  per_session +aggregate +3 +200,000 +[0-9,]+ "
expect_files "sessionization output" "$work/out/sessions" 3 parquet

expect_run "make transactions" make-transactions-parquet.yaml "$summary_head" \
  "^  write +parquet_sink +1 +100,000 +100,000 "
expect_files "make transactions output" "$work/data/transactions" 1 parquet

expect_run "filter project" filter-project-parquet.yaml "$summary_head" \
  "^  transactions +parquet_source +3 +0 +100,000 " \
  "^  select -> large_amounts  rebalance 3x2 "
expect_files "filter project output" "$work/out/large-amounts" 2 parquet

expect_run "fan-out" fan-out.yaml "$summary_head" \
  "^  scaled -> small_amounts  rebalance 4x2  50,000 rows" \
  "^  scaled -> every_task  broadcast 4x3  150,000 rows" \
  "^  every_task +ipc_sink +3 +150,000 +150,000 "
expect_files "fan-out rebalance output" "$work/out/fan-out-small" 2 csv
expect_files "fan-out broadcast output" "$work/out/fan-out-broadcast" 3 arrow

# --set changes the parallelism, and the summary shows it; --threads 1 still runs 12 tasks.
extra=(--set transactions.parallelism=7 --set small_amounts.parallelism=3
       --set every_task.parallelism=2 --threads 1 --memory-budget-mib 64)
expect_run "fan-out with --set and one thread" fan-out.yaml \
  "^  scaled -> small_amounts  rebalance 7x3 " "^  scaled -> every_task  broadcast 7x2 " \
  "of a 64.0 MiB budget"
extra=()
expect_files "fan-out with --set output" "$work/out/fan-out-broadcast" 2 arrow

# --explain runs nothing: no output folder appears.
rm -rf "$work/out"
"$sabot" run --explain "$work/seed-pipeline-keyed.yaml" >/dev/null 2>&1
if [ ! -e "$work/out" ]; then passed=$((passed + 1)); echo "ok   explain writes nothing"
else failed=$((failed + 1)); echo "FAIL explain created $work/out"; fi

# --- bad job files: exit 2, with file:line:column and the operator ------------------------------
bad() {  # bad NAME CONTENT : writes $work/NAME.yaml
  printf '%s' "$2" >"$work/$1.yaml"
}
bad unknown-key $'operators:\n  - generator_source: {table: transactions, rows: 10}\n  - map:\n      colums: {a: "amount"}\n  - console_sink:\n'
expect_exit "unknown key" 2 "unknown-key.yaml:4:7: operator 'map': unknown key 'colums'.*valid keys: columns" \
  "$work/unknown-key.yaml"
bad zero $'operators:\n  - generator_source: {rows: 10}\n    parallelism: 0\n  - console_sink:\n'
expect_exit "parallelism 0" 2 "zero.yaml:3:18: .*parallelism must be between 1 and 1024, got 0" \
  "$work/zero.yaml"
bad cycle $'operators:\n  - name: s\n    generator_source:\n  - name: a\n    input: [s, b]\n    map: {columns: {x: "1"}}\n  - name: b\n    filter: "x > 0"\n  - name: out\n    input: b\n    console_sink:\n'
expect_exit "cycle" 2 "cycle.yaml:[0-9]+:[0-9]+: operator '[ab]': the job has a cycle" "$work/cycle.yaml"
bad syntax $'operators:\n  - generator_source: {rows: 10}\n  - filter: amount > > 1\n  - console_sink:\n'
expect_exit "expression syntax" 2 "syntax.yaml:3:22: operator 'filter': predicate: expression error" \
  "$work/syntax.yaml"
bad yaml $'operators:\n  - generator_source: {rows: 10\n'
expect_exit "YAML syntax" 2 "yaml.yaml:[0-9]+:[0-9]+: YAML syntax error" "$work/yaml.yaml"
bad column $'operators:\n  - generator_source: {table: transactions, rows: 10}\n  - name: bad_map\n    map: {columns: {x: "no_such_column + 1"}}\n  - console_sink:\n'
expect_exit "unknown column" 2 "column.yaml:4:25: .*bad_map.*no_such_column" "$work/column.yaml"
bad types $'operators:\n  - generator_source: {table: transactions, rows: 10}\n  - name: typed\n    filter: "amount + \'x\' > 1"\n  - console_sink:\n'
expect_exit "type mismatch" 2 "types.yaml:4:21: .*typed" "$work/types.yaml"
bad missing $'operators:\n  - name: src\n    parquet_source: no/such/dir\n  - console_sink:\n'
expect_exit "missing input file" 2 "missing.yaml:3:5: .*src" "$work/missing.yaml"
expect_exit "missing job file" 2 "no-such-job.yaml: cannot open the job file" "$work/no-such-job.yaml"
expect_exit "unknown --set operator" 2 "no such operator" "$work/fan-out.yaml" --set nope.parallelism=2
expect_exit "no job file given" 2 "job is required" --quiet
expect_exit "unknown option" 2 "--frobnicate" "$work/fan-out.yaml" --frobnicate
expect_exit "bad --set" 2 "--set takes OPERATOR.parallelism=N" "$work/fan-out.yaml" --set parallelism

# --- a task that fails: exit 1, the operator and its line, no partial output --------------------
bad divide $'operators:\n  - generator_source: {table: transactions, rows: 100000, batch_rows: 1000}\n    parallelism: 2\n  - name: divide\n    map: {columns: {x: "user_id / (user_id - user_id)"}}\n  - parquet_sink: out/divide\n    parallelism: 2\n'
expect_exit "failed task" 1 "job divide failed: .*divide.yaml:5:5: .*divide" "$work/divide.yaml"
expect_files "failed task leaves no output" "$work/out/divide" 0 parquet

# --- on a terminal (script(1) gives the command one): the progress block is redrawn in place,
# erased at the end, and the console sink's rows, held meanwhile, come after it ------------------
if command -v script >/dev/null 2>&1; then
  bad slow $'operators:\n  - generator_source: {table: transactions, rows: 15000, batch_rows: 500, rows_per_second: 10000}\n    parallelism: 2\n  - key_by: user_id\n  - console_sink: {max_rows: 2}\n    parallelism: 2\n'
  TERM=xterm script -qec "'$sabot' run '$work/slow.yaml'" /dev/null >"$work/tty" 2>&1
  got=$?
  esc=$'\x1b'
  redraws=$(grep -c "${esc}\[4F${esc}\[J" "$work/tty")
  last_erase=$(grep -n "${esc}\[J" "$work/tty" | tail -1 | cut -d: -f1)
  rows_line=$(grep -n "console_sink: 15000 rows (2 shown)" "$work/tty" | cut -d: -f1)
  summary_line=$(grep -n "^job slow finished in" "$work/tty" | cut -d: -f1)
  if [ "$got" -eq 0 ] && [ "$redraws" -ge 2 ] && [ -n "$rows_line" ] && [ -n "$summary_line" ] \
     && [ "$rows_line" -ge "$last_erase" ] && [ "$summary_line" -gt "$rows_line" ] \
     && grep -q "elapsed .* tasks: .* running" "$work/tty"; then
    passed=$((passed + 1)); echo "ok   progress on a terminal"
  else
    failed=$((failed + 1))
    echo "FAIL progress on a terminal (exit $got, $redraws redraws, erase $last_erase, rows $rows_line, summary $summary_line)"
    cat -v "$work/tty"
  fi
fi

# --- SIGINT stops an unbounded job: exit 130, the tasks cancelled, no output under a final name --
bad forever $'operators:\n  - generator_source: {table: transactions, rows: 0, batch_rows: 1000, rows_per_second: 20000}\n    parallelism: 2\n  - key_by: user_id\n  - parquet_sink: out/forever\n    parallelism: 2\n'
"$sabot" run --quiet "$work/forever.yaml" >"$work/stdout" 2>"$work/stderr" &
pid=$!
# Wait until the job runs (binding created the sink's folder), then interrupt it.
for _ in $(seq 100); do [ -d "$work/out/forever" ] && break; sleep 0.1; done
sleep 0.5
kill -INT "$pid"
wait "$pid"
got=$?
if [ "$got" -eq 130 ] && grep -q "stopped by SIGINT" "$work/stderr"; then
  passed=$((passed + 1)); echo "ok   SIGINT"
else
  fail "SIGINT (exit $got, wanted 130)"
fi
expect_files "SIGINT leaves no output" "$work/out/forever" 0 parquet

echo "passed $passed, failed $failed"
[ "$failed" -eq 0 ]
