#!/usr/bin/env python3
"""The stateful operators' benchmarks (issue 11, docs/performance.md): Sabot against DuckDB,
Polars and Acero on the same in-memory data, in one run.

  scripts/bench-stateful.sh                      # builds plan_benchmark, then runs this
  .venv/bin/python scripts/bench_stateful.py --plan-benchmark build/release/src/sabot/dataflow/plan_benchmark

1. The data is generated once (DuckDB SQL over range(n), every value a hash of the row number,
   so every run has the same rows) and written as Arrow IPC files.
2. Each engine loads the files whole into its own memory before its clock starts: Sabot
   (plan_benchmark, a C++ process) as in-memory tables that its table_sources read, DuckDB as
   native tables, Polars as a DataFrame, Acero as a pyarrow Table.
3. Each query runs --runs times per engine; the median is reported, with the process's CPU time
   over the same span, the output rows, and the ratio Sabot throughput / engine throughput.

Queries:
  window  the seed pipeline: transactions (user_id, amount, ts: 24 h of event time, out of
          order by up to 2 s) -> key_by user_id -> 5-minute tumbling window -> sum(amount),
          at parallelism 2 -> 2, into a counting sink; DuckDB GROUP BY user_id,
          time_bucket(5 minutes, ts); Polars group_by_dynamic (after the sort by ts it needs)
          and, for reference, group_by(user_id, ts.dt.truncate("5m")).
  join    orders (10M) inner join customers (1M) on customer_id, at 2 -> 2, into a counting
          sink; DuckDB's join; Acero's hash join (pyarrow Table.join).
For Sabot it also prints the job report's operator times (busy, summed over tasks), the
shuffles' bytes and blocked time, and the time of the same job with the shuffle only (sources ->
key_by -> counting sinks) as a share of the whole.

Benchmarks measure; they never assert. The exit status is 1 only when an engine failed to run a
query (its error is printed; the other figures are still printed).
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc

EPOCH_MS = 1704067200000  # 2024-01-01T00:00:00Z
MAX_DISORDER_MS = 2000
WINDOW_MS = 5 * 60 * 1000


def cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def write_ipc(table, path):
    tmp = path.with_suffix(".tmp")
    with pa.OSFile(str(tmp), "wb") as sink:
        with ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table, max_chunksize=1 << 20)
    tmp.rename(path)


def read_ipc(path):
    # Read (not mapped): the whole table is in this process's memory afterwards.
    with pa.OSFile(str(path), "rb") as source:
        return ipc.open_file(source).read_all()


def generate(args, data_dir):
    """Writes the three tables (once per set of sizes) and returns their paths."""
    import duckdb

    n, users = args.rows, args.users
    span_ms = int(args.hours * 3600 * 1000)
    paths = {
        "transactions": data_dir / f"transactions-{n}-{users}-{args.hours}h.arrow",
        "orders": data_dir / f"orders-{args.join_left}-{args.join_right}.arrow",
        "customers": data_dir / f"customers-{args.join_right}.arrow",
    }
    con = duckdb.connect()
    if not paths["transactions"].exists():
        t = con.sql(f"""
            SELECT (hash(r, 1) % {users})::BIGINT AS user_id,
                   ((hash(r, 2) % 1000000)::BIGINT / 100.0)::DOUBLE AS amount,
                   ({EPOCH_MS} + (r * {span_ms}) // {n}
                      - (hash(r, 3) % {MAX_DISORDER_MS + 1})::BIGINT)::BIGINT AS ts
            FROM range({n}) AS g(r) ORDER BY r""").to_arrow_table()
        t = t.set_column(2, "ts", pc.cast(t.column("ts"), pa.timestamp("ms")))
        write_ipc(t, paths["transactions"])
    if not paths["orders"].exists():
        t = con.sql(f"""
            SELECT r::BIGINT AS order_id,
                   (hash(r, 4) % {args.join_right})::BIGINT AS customer_id,
                   ((hash(r, 5) % 1000000)::BIGINT / 100.0)::DOUBLE AS amount
            FROM range({args.join_left}) AS g(r) ORDER BY r""").to_arrow_table()
        write_ipc(t, paths["orders"])
    if not paths["customers"].exists():
        t = con.sql(f"""
            SELECT r::BIGINT AS customer_id,
                   (hash(r, 6) % 50)::BIGINT AS region,
                   ((hash(r, 7) % 100000)::BIGINT / 10.0)::DOUBLE AS credit
            FROM range({args.join_right}) AS g(r) ORDER BY r""").to_arrow_table()
        write_ipc(t, paths["customers"])
    con.close()
    return paths


# ---------------------------------------------------------------------------------------------
# Sabot: plans in their JSON form (docs/plan-format.md), run by plan_benchmark.

def op(id_, name, kind, parallelism, params=None):
    o = {"id": id_, "name": name, "kind": kind, "parallelism": parallelism}
    if params is not None:
        o["params"] = params
    return o


def counting_sink(id_, name, parallelism):
    return op(id_, name, "console_sink", parallelism, {"max_rows": 0})


def table_source(id_, name, table, parallelism, batch_rows, event_time=None):
    params = {"table": table, "batch_rows": batch_rows}
    if event_time:
        params["event_time"] = {"column": event_time, "max_out_of_orderness_ms": MAX_DISORDER_MS}
    return op(id_, name, "table_source", parallelism, params)


def plan(operators, edges, mode):
    return {"sabot_plan_version": 1, "options": {"shuffle_mode": mode, "chaining": True},
            "operators": operators, "edges": edges}


def window_plans(args):
    p, q = args.source_parallelism, args.parallelism
    src = table_source(0, "transactions", "transactions", p, args.batch_rows, "ts")
    full = plan([src, op(1, "by_user", "key_by", p, {"keys": ["user_id"]}),
                 op(2, "window", "window", q, {"type": "tumbling", "size_ms": WINDOW_MS}),
                 op(3, "sum", "aggregate", q,
                    {"aggregates": [{"function": "sum", "column": "amount"}]}),
                 counting_sink(4, "count", q)],
                [{"from": i, "to": i + 1} for i in range(4)], args.shuffle_mode)
    shuffle = plan([src, op(1, "by_user", "key_by", p, {"keys": ["user_id"]}),
                    counting_sink(2, "count", q)],
                   [{"from": 0, "to": 1}, {"from": 1, "to": 2}], args.shuffle_mode)
    return full, shuffle


def join_plans(args):
    p, q = args.source_parallelism, args.parallelism
    orders = table_source(0, "orders", "orders", p, args.batch_rows)
    customers = table_source(1, "customers", "customers", p, args.batch_rows)
    full = plan([orders, customers,
                 op(2, "join", "join", q, {"left_keys": ["customer_id"],
                                           "right_keys": ["customer_id"], "how": "inner"}),
                 counting_sink(3, "count", q)],
                [{"from": 0, "to": 2, "input": 0}, {"from": 1, "to": 2, "input": 1},
                 {"from": 2, "to": 3}], args.shuffle_mode)
    shuffle = plan([orders, customers,
                    op(2, "by_orders", "key_by", p, {"keys": ["customer_id"]}),
                    op(3, "by_customers", "key_by", p, {"keys": ["customer_id"]}),
                    counting_sink(4, "count_orders", q), counting_sink(5, "count_customers", q)],
                   [{"from": 0, "to": 2}, {"from": 1, "to": 3}, {"from": 2, "to": 4},
                    {"from": 3, "to": 5}], args.shuffle_mode)
    return full, shuffle


def run_sabot(args, plan_json, tables, work_dir, name):
    plan_path = work_dir / f"{name}.json"
    plan_path.write_text(json.dumps(plan_json, indent=1))
    cmd = [args.plan_benchmark, "--plan", str(plan_path), "--runs", str(args.runs),
           "--stall-timeout-s", str(args.stall_timeout_s),
           "--threads", str(args.threads), "--memory-budget-mib", str(args.memory_budget_mib)]
    for table, path in tables.items():
        cmd += ["--table", f"{table}={path}"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    runs = [r for r in lines if "error" not in r]
    errors = [f"run {r['run']}: {r['error']}" for r in lines if "error" in r]
    if not runs:
        raise RuntimeError(f"plan_benchmark exited {proc.returncode}: "
                           f"{'; '.join(errors) or proc.stderr.strip()}")
    median = sorted(runs, key=lambda r: r["wall_s"])[len(runs) // 2]
    out_rows = sum(o["rows_in"] for o in median["operators"] if o["kind"] == "console_sink")
    return {"times": [r["wall_s"] for r in runs], "cpu": median["cpu_s"], "rows_out": out_rows,
            "report": median, "failed_runs": errors}


def timed(args, query, rows_of):
    """Runs query() --runs times; the median wall time and the CPU of that run."""
    runs = []
    for _ in range(args.runs):
        cpu0, t0 = cpu_seconds(), time.perf_counter()
        result = query()
        wall, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
        runs.append((wall, cpu, result))
    runs.sort(key=lambda r: r[0])
    wall, cpu, result = runs[len(runs) // 2]
    return {"times": [r[0] for r in runs], "cpu": cpu, "rows_out": rows_of(result)}


# ---------------------------------------------------------------------------------------------
# The reference engines.

def duckdb_connection(args, tables):
    import duckdb
    con = duckdb.connect()
    con.execute(f"SET threads = {args.threads}")
    con.execute("SET preserve_insertion_order = false")
    for name, table in tables.items():
        con.register(f"{name}_arrow", table)
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM {name}_arrow")
        con.unregister(f"{name}_arrow")
    return con


def duckdb_query(con, sql):
    def run():
        con.execute(f"CREATE OR REPLACE TEMP TABLE result AS {sql}")
        return con.execute("SELECT count(*) FROM result").fetchone()[0]
    return run


def window_references(args, transactions):
    import polars as pl
    results = {}
    con = duckdb_connection(args, {"transactions": transactions})
    results["DuckDB GROUP BY user_id, time_bucket(5 min, ts)"] = timed(args, duckdb_query(con, """
        SELECT user_id, time_bucket(INTERVAL 5 MINUTES, ts) AS window_start,
               sum(amount) AS sum_amount
        FROM transactions GROUP BY user_id, window_start"""), lambda n: n)
    con.close()
    df = pl.from_arrow(transactions).rechunk()
    results["Polars sort(ts) + group_by_dynamic(5m, group_by=user_id)"] = timed(
        args, lambda: df.sort("ts").group_by_dynamic("ts", every="5m", group_by="user_id")
        .agg(pl.col("amount").sum().alias("sum_amount")), lambda out: out.height)
    results["Polars group_by(user_id, ts.dt.truncate(5m))"] = timed(
        args, lambda: df.group_by("user_id", pl.col("ts").dt.truncate("5m"))
        .agg(pl.col("amount").sum().alias("sum_amount")), lambda out: out.height)
    return results


def join_references(args, orders, customers):
    results = {}
    con = duckdb_connection(args, {"orders": orders, "customers": customers})
    results["DuckDB inner join"] = timed(args, duckdb_query(con, """
        SELECT * FROM orders JOIN customers USING (customer_id)"""), lambda n: n)
    con.close()
    results["Acero hash join (pyarrow Table.join)"] = timed(
        args, lambda: orders.join(customers, keys="customer_id", join_type="inner",
                                  use_threads=True), lambda t: t.num_rows)
    return results


# ---------------------------------------------------------------------------------------------
# Printing.

def fmt_s(s):
    return f"{s:.3f} s"


def print_query(title, rows_in, sabot_name, sabot, shuffle_only, references, baseline_name,
                goal):
    print(f"\n## {title}\n")
    print("| engine | time (median) | all runs | CPU | rows/s | output rows | Sabot / engine |")
    print("|---|---|---|---|---|---|---|")
    sabot_t = statistics.median(sabot["times"]) if sabot and "times" in sabot else None
    entries = [(sabot_name, sabot)] + list(references.items())
    for name, r in entries:
        if r is None or "error" in r:
            print(f"| {name} | failed: {r['error'] if r else 'not run'} | | | | | |")
            continue
        t = statistics.median(r["times"])
        ratio = f"{t / sabot_t:.2f}" if sabot_t else "-"
        runs = ", ".join(f"{x:.3f}" for x in r["times"])
        print(f"| {name} | {fmt_s(t)} | {runs} | {r['cpu']:.2f} s | {rows_in / t / 1e6:.1f} M |"
              f" {r['rows_out']:,} | {ratio} |")
    base = references.get(baseline_name)
    if sabot_t and base and "error" not in base:
        ratio = statistics.median(base["times"]) / sabot_t
        print(f"\nSabot throughput / DuckDB throughput: {ratio:.2f} (goal >= {goal})")
    if shuffle_only and "times" in shuffle_only:
        s = statistics.median(shuffle_only["times"])
        share = f" = {100 * s / sabot_t:.0f}% of the pipeline's time" if sabot_t else ""
        print(f"\nThe shuffle alone (the same sources -> key_by -> counting sinks): {fmt_s(s)}"
              f" (runs {', '.join(f'{x:.3f}' for x in shuffle_only['times'])}){share}")
    elif shuffle_only:
        print(f"\nThe shuffle alone: failed: {shuffle_only['error']}")
    if not sabot_t:
        return
    for error in sabot.get("failed_runs", []):
        print(f"Sabot {error}")
    report = sabot["report"]
    parts = ", ".join(f"{o['name']} ({o['kind']}) {o['busy_s']:.3f} s" for o in report["operators"])
    print(f"\nSabot, median run: busy time summed over tasks: {parts}. "
          "A source's time includes partitioning its batches into the shuffle.")
    for e in report["edges"]:
        if e["chained"]:
            continue
        print(f"Shuffle {e['from']} -> {e['to']} ({e['type']} {e['writers']}x{e['partitions']}):"
              f" {e['rows']:,} rows, {e['bytes'] / 1e6:.0f} MB, writers blocked "
              f"{e['blocked_s']:.3f} s, spilled {e['bytes_spilled'] / 1e6:.0f} MB")


def attempt(fn):
    try:
        return fn()
    except Exception as e:  # a failed engine is reported, the others still run
        return {"error": f"{type(e).__name__}: {str(e).strip().splitlines()[0][:300]}"}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--plan-benchmark", required=True, help="the plan_benchmark program")
    parser.add_argument("--queries", default="window,join")
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--hours", type=float, default=24)
    parser.add_argument("--join-left", type=int, default=10_000_000)
    parser.add_argument("--join-right", type=int, default=1_000_000)
    parser.add_argument("--parallelism", type=int, default=2, help="window / join tasks")
    parser.add_argument("--source-parallelism", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2, help="every engine's threads")
    parser.add_argument("--batch-rows", type=int, default=65536)
    parser.add_argument("--shuffle-mode", default="pipelined", choices=["pipelined", "blocking"])
    parser.add_argument("--memory-budget-mib", type=int, default=256)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--stall-timeout-s", type=int, default=30,
                        help="a Sabot run that moves no row for this long fails")
    parser.add_argument("--data-dir", help="where the IPC files are kept (default: a temporary "
                        "directory, removed at the end)")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny tables, one run: checks that every engine runs")
    args = parser.parse_args()
    if args.smoke:
        args.rows, args.users, args.hours = 20_000, 100, 1
        args.join_left, args.join_right, args.runs, args.batch_rows = 20_000, 2_000, 1, 1024
    os.environ.setdefault("POLARS_MAX_THREADS", str(args.threads))
    pa.set_cpu_count(args.threads)
    pa.set_io_thread_count(args.threads)
    queries = set(args.queries.split(","))

    temp = None
    if args.data_dir:
        data_dir = Path(args.data_dir)
        data_dir.mkdir(parents=True, exist_ok=True)
    else:
        temp = tempfile.TemporaryDirectory(prefix="sabot-bench-")
        data_dir = Path(temp.name)
    t0 = time.perf_counter()
    paths = generate(args, data_dir)
    print(f"data in {data_dir} ({time.perf_counter() - t0:.1f} s to make or find); "
          f"{args.threads} threads per engine; {args.runs} runs each; "
          f"Sabot {args.source_parallelism} -> {args.parallelism} tasks, "
          f"{args.shuffle_mode} shuffles, batches of {args.batch_rows} rows")

    failed = False
    with tempfile.TemporaryDirectory(prefix="sabot-bench-plans-") as work:
        work_dir = Path(work)
        if "window" in queries:
            full, shuffle = window_plans(args)
            tables = {"transactions": paths["transactions"]}
            sabot = attempt(lambda: run_sabot(args, full, tables, work_dir, "window"))
            shuffle_only = attempt(lambda: run_sabot(args, shuffle, tables, work_dir, "window-shuffle"))
            transactions = read_ipc(paths["transactions"])
            refs = window_references(args, transactions)
            del transactions
            print_query(f"Windowed aggregate: {args.rows:,} transactions, {args.users:,} users, "
                        f"{args.hours:g} h of event time, 5-minute tumbling sum(amount)",
                        args.rows, f"Sabot {args.source_parallelism}->{args.parallelism}", sabot,
                        shuffle_only, refs,
                        "DuckDB GROUP BY user_id, time_bucket(5 min, ts)", 1)
            failed |= any("error" in r or r.get("failed_runs")
                  for r in [sabot, shuffle_only, *refs.values()])
        if "join" in queries:
            full, shuffle = join_plans(args)
            tables = {"orders": paths["orders"], "customers": paths["customers"]}
            sabot = attempt(lambda: run_sabot(args, full, tables, work_dir, "join"))
            shuffle_only = attempt(lambda: run_sabot(args, shuffle, tables, work_dir, "join-shuffle"))
            orders, customers = read_ipc(paths["orders"]), read_ipc(paths["customers"])
            refs = join_references(args, orders, customers)
            del orders, customers
            print_query(f"Hash join: {args.join_left:,} orders x {args.join_right:,} customers "
                        "on customer_id (inner)", args.join_left + args.join_right,
                        f"Sabot {args.source_parallelism}->{args.parallelism}", sabot,
                        shuffle_only, refs, "DuckDB inner join", 0.7)
            failed |= any("error" in r or r.get("failed_runs")
                  for r in [sabot, shuffle_only, *refs.values()])
    if temp:
        temp.cleanup()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
