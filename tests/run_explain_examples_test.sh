#!/usr/bin/env bash
# `sabot run --explain` on every job file of examples/: each exits 0 without running anything,
# and its output lists the graph's edges with their types (the types each example is there to
# show are checked by name).
# Usage: run_explain_examples_test.sh path/to/sabot path/to/examples
set -uo pipefail
sabot="$1"
examples="$2"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
passed=0
failed=0

# expect_explain FILE PATTERN... : exit 0 and every PATTERN (grep -E) in the output.
expect_explain() {
  local file="$1"; shift
  if ! timeout 60 "$sabot" run --explain "$file" >"$work/out" 2>"$work/err"; then
    failed=$((failed + 1)); echo "FAIL $file: exit $?"; cat "$work/out" "$work/err"; return
  fi
  for pattern in "edges: [0-9]+, shuffles: [0-9]+" "$@"; do
    if ! grep -qE -- "$pattern" "$work/out"; then
      failed=$((failed + 1)); echo "FAIL $file: no '$pattern' in"; cat "$work/out"; return
    fi
  done
  if [ -s "$work/err" ]; then
    failed=$((failed + 1)); echo "FAIL $file: wrote to stderr"; cat "$work/err"; return
  fi
  passed=$((passed + 1)); echo "ok   $file"
}

count=0
for file in "$examples"/*.yaml; do
  count=$((count + 1))
  case "$(basename "$file")" in
    seed-pipeline-keyed.yaml)
      expect_explain "$file" "transactions\[4\] -> to_usd\[4\]  FORWARD \(chained\)" \
        "to_usd\[4\] -> by_user\[2\]  HASH\(user_id\) 4x2" ;;
    make-transactions-parquet.yaml)
      expect_explain "$file" "transactions\[1\] -> write\[1\]  FORWARD \(chained\)" ;;
    filter-project-parquet.yaml)
      expect_explain "$file" "large\[3\] -> select\[3\]  FORWARD \(chained\)" \
        "select\[3\] -> large_amounts\[2\]  REBALANCE 3x2" ;;
    fan-out.yaml)
      expect_explain "$file" "scaled\[4\] -> small_amounts\[2\]  REBALANCE 4x2" \
        "scaled\[4\] -> every_task\[3\]  BROADCAST 4x3" ;;
    orders-customers-join.yaml)
      expect_explain "$file" "orders\[3\] -> enriched\[2\] \(left\)  HASH\(customer_id\) 3x2" \
        "customers\[1\] -> enriched\[2\] \(right\)  HASH\(customer_id\) 1x2" ;;
    *)
      expect_explain "$file" "(FORWARD|HASH|REBALANCE|BROADCAST|RANGE)" ;;
  esac
done
if [ "$count" -lt 4 ]; then
  failed=$((failed + 1)); echo "FAIL only $count job files in $examples"
fi

echo "passed $passed, failed $failed"
[ "$failed" -eq 0 ]
