"""Every example job's output equals an independent pyarrow computation (issue 10, "Correctness").

Usage: python test_examples_reference.py /path/to/sabot /path/to/examples

Each job file of examples/ is copied into a temporary folder (its paths are relative to the
file, so its data/ and out/ go there too) and run with `sabot run --quiet` at the parallelisms
(source -> downstream) 1->1, 4->2, 3->7 and 10->5, set with `--set NAME.parallelism=N`. Its sink
output, read back with pyarrow, must equal the reference computed here with pyarrow compute from
the job's input, compared as sorted multisets of rows; so the output cannot depend on the
parallelism either.

Inputs: filter-project-parquet.yaml reads the Parquet files make-transactions-parquet.yaml
writes, read back here with pyarrow; orders-customers-join.yaml reads those
make-orders-customers.py writes, and its reference is DuckDB's left join of them. The other jobs generate their input (a seeded generator
source); the test reads the generator's parameters from `sabot run --plan-json`, has Sabot write
that same table once to Parquet (a two-operator job at parallelism 1), checks it against what the
generator promises (row count, key range, amounts with two decimals in [0, 10000), event times
within the documented disorder), and computes the reference from it. Beyond the rows, the
test checks what each edge promises: after the key_by, all rows of a user are in one sink file;
through the broadcast, every sink task received every row.

Windows (issue 11): seed-pipeline.yaml's 5-minute tumbling sums and sessionization.yaml's
sessions are compared with DuckDB over the generated table (GROUP BY user_id, time_bucket; a
LAG + running SUM sessionization), sums with a relative tolerance of 1e-9 (they add in another
order), at the four parallelisms in the pipelined shuffle mode and at 4->2 and 3->7 in the
blocking one (a copy of the job file with `options: {shuffle_mode: blocking}`), and at 3->7 under
`state_budget: 1KiB` (window state spills; nothing may be left in the spill directory); every
window is emitted once and every user's windows are in one part file.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

PARALLELISMS = [(1, 1), (4, 2), (3, 7), (10, 5)]
TRANSACTIONS_EPOCH_MS = 1704067200000  # generator_source.h
TRANSACTIONS_MAX_DISORDER_MS = 2000

failures = []


def check(condition, message):
    if not condition:
        failures.append(message)
        print("FAIL", message)
    return condition


def run(sabot, job, sets=(), extra=()):
    args = [sabot, "run", "--quiet", job, *extra]
    for s in sets:
        args += ["--set", s]
    result = subprocess.run(args, capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited {result.returncode}:\n{result.stderr}")
    return result.stdout


def parts(directory, extension):
    """The part files of a sink directory, by subtask."""
    names = sorted(n for n in os.listdir(directory)
                   if n.startswith("part-") and n.endswith("." + extension))
    leftovers = [n for n in os.listdir(directory) if n.endswith(".tmp")]
    check(not leftovers, f"{directory}: temporary files left: {leftovers}")
    return {int(n[len("part-"):-len(extension) - 1]): os.path.join(directory, n) for n in names}


def read_part(path, schema=None):
    if path.endswith(".parquet"):
        return pq.read_table(path)
    if path.endswith(".arrow"):
        with ipc.open_file(path) as reader:
            return reader.read_all()
    convert = pacsv.ConvertOptions(column_types=schema) if schema is not None else None
    return pacsv.read_csv(path, convert_options=convert)


def read_sink(directory, extension, schema=None):
    tables = [read_part(p, schema) for p in parts(directory, extension).values()]
    if not tables:
        return None
    return pa.concat_tables(tables)


def canonical(table):
    """The rows as a sorted list: a multiset, independent of task and batch order."""
    columns = table.column_names
    rows = table.to_pylist()
    return sorted(tuple(r[c] for c in columns) for r in rows), columns


def expect_equal(name, got, want):
    if got is None:
        return check(want.num_rows == 0, f"{name}: no output, expected {want.num_rows} rows")
    if not check(got.schema.names == want.schema.names,
                 f"{name}: columns {got.schema.names}, expected {want.schema.names}"):
        return False
    got = got.cast(want.schema) if got.schema != want.schema else got
    g, _ = canonical(got)
    w, _ = canonical(want)
    if not check(len(g) == len(w), f"{name}: {len(g)} rows, expected {len(w)}"):
        return False
    diff = next((i for i in range(len(g)) if g[i] != w[i]), None)
    return check(diff is None, f"{name}: row {diff} of the sorted output is {g[diff] if diff is not None else ''}, "
                               f"expected {w[diff] if diff is not None else ''}")


def generator_table(sabot, job, work):
    """The table the job's generator source makes, written by Sabot at parallelism 1."""
    plan = json.loads(run(sabot, job, extra=["--plan-json"]))
    source = next(op for op in plan["operators"] if op["kind"] == "generator_source")
    params = {k: v for k, v in source["params"].items() if k != "event_time"}
    out = os.path.join(work, "generated")
    # JSON is YAML: the job file is written in flow style.
    raw_job = os.path.join(work, "generated.yaml")
    with open(raw_job, "w") as f:
        json.dump({"job": "generated", "operators": [
            {"name": "gen", "generator_source": params},
            {"name": "out", "parquet_sink": out}]}, f)
    run(sabot, raw_job)
    table = read_sink(out, "parquet")
    # What the generator promises (generator_source.h), checked independently.
    rows = params["rows"]
    check(table.num_rows == rows, f"generated: {table.num_rows} rows, expected {rows}")
    check(table.schema.names == ["user_id", "amount", "event_time"],
          f"generated: columns {table.schema.names}")
    user = table["user_id"]
    check(pc.min(user).as_py() >= 0 and pc.max(user).as_py() < params["key_cardinality"],
          "generated: user_id out of [0, key_cardinality)")
    amount = table["amount"]
    check(pc.min(amount).as_py() >= 0 and pc.max(amount).as_py() < 10000,
          "generated: amount out of [0, 10000)")
    cents = pc.multiply(amount, 100)
    check(pc.all(pc.less(pc.abs(pc.subtract(cents, pc.round(cents))), 1e-6)).as_py(),
          "generated: an amount has more than two decimals")
    times = pc.cast(table["event_time"], pa.int64())
    check(pc.min(times).as_py() >= TRANSACTIONS_EPOCH_MS - TRANSACTIONS_MAX_DISORDER_MS
          and pc.max(times).as_py() < TRANSACTIONS_EPOCH_MS + rows,
          "generated: event_time out of the documented range")
    return table


def with_column(table, name, values):
    if name in table.column_names:
        return table.set_column(table.column_names.index(name), name, values)
    return table.append_column(name, values)


# ---- the examples -------------------------------------------------------------------------------

def seed_pipeline(sabot, job, work):
    source = generator_table(sabot, job, work)
    want = with_column(source, "amount_usd", pc.multiply(source["amount"], 1.1))
    for p1, p2 in PARALLELISMS:
        name = f"seed-pipeline-keyed {p1}->{p2}"
        shutil.rmtree(os.path.join(work, "out"), ignore_errors=True)
        run(sabot, job, [f"transactions.parallelism={p1}", f"by_user.parallelism={p2}"])
        directory = os.path.join(work, "out", "by-user")
        files = parts(directory, "parquet")
        check(sorted(files) == list(range(p2)), f"{name}: part files {sorted(files)}")
        expect_equal(name, read_sink(directory, "parquet"), want)
        # HASH(user_id): every user's rows in one file.
        owner = {}
        for subtask, path in files.items():
            for user in set(pq.read_table(path, columns=["user_id"])["user_id"].to_pylist()):
                check(owner.setdefault(user, subtask) == subtask,
                      f"{name}: user {user} in parts {owner[user]} and {subtask}")


def make_transactions(sabot, job, work):
    reference = None
    for p1, p2 in PARALLELISMS:
        name = f"make-transactions-parquet {p1}->{p2}"
        run(sabot, job, [f"transactions.parallelism={p1}", f"write.parallelism={p2}"])
        got = read_sink(os.path.join(work, "data", "transactions"), "parquet")
        if reference is None:
            reference = generator_table(sabot, job, work)
        expect_equal(name, got, reference)


def filter_project(sabot, job, work):
    # Its input: make-transactions-parquet.yaml, run here at 4 -> 3 (several files).
    make = os.path.join(work, "make-transactions-parquet.yaml")
    run(sabot, make, ["transactions.parallelism=4", "write.parallelism=3"])
    source = pq.read_table(os.path.join(work, "data", "transactions"))
    kept = source.filter(pc.greater(source["amount"], 50))
    want = pa.table({"user_id": kept["user_id"], "amount": kept["amount"],
                     "amount_usd": pc.multiply(kept["amount"], 1.1)})
    check(0 < want.num_rows < source.num_rows, "filter-project: the filter keeps some rows, not all")
    for p1, p2 in PARALLELISMS:
        name = f"filter-project-parquet {p1}->{p2}"
        run(sabot, job, [f"transactions.parallelism={p1}", f"large_amounts.parallelism={p2}"])
        expect_equal(name, read_sink(os.path.join(work, "out", "large-amounts"), "parquet"), want)


def fan_out(sabot, job, work):
    source = generator_table(sabot, job, work)
    scaled = with_column(source, "amount_cents", pc.multiply(source["amount"], 100))
    small = scaled.filter(pc.less(scaled["amount"], 10))
    check(0 < small.num_rows < scaled.num_rows, "fan-out: the filter keeps some rows, not all")
    for p1, p2 in PARALLELISMS:
        name = f"fan-out {p1}->{p2}"
        shutil.rmtree(os.path.join(work, "out"), ignore_errors=True)
        run(sabot, job, [f"transactions.parallelism={p1}", f"small_amounts.parallelism={p2}",
                         f"every_task.parallelism={p2}"])
        expect_equal(name + " rebalance", read_sink(os.path.join(work, "out", "fan-out-small"),
                                                    "csv", small.schema), small)
        # BROADCAST: each of the p2 tasks received every row.
        files = parts(os.path.join(work, "out", "fan-out-broadcast"), "arrow")
        check(sorted(files) == list(range(p2)), f"{name}: broadcast part files {sorted(files)}")
        for subtask, path in files.items():
            expect_equal(f"{name} broadcast task {subtask}", read_part(path), scaled)


def shuffle(sabot, job, work):
    """The verify sink is the check (independent of the partition code, docs/hashing.md); here:
    the job succeeds at every shape its table splits evenly over, every generated row reaches
    the sink (the summary's row matrix), and a shape it cannot check is refused as a bad job."""
    for p1, p2 in [(1, 1), (4, 2), (4, 7), (8, 5)]:
        name = f"shuffle {p1}->{p2}"
        out = run(sabot, job, [f"generate.parallelism={p1}", f"verify.parallelism={p2}"])
        line = next((l for l in out.splitlines() if l.strip().startswith("verify ")), "")
        check(line.split()[3:5] == ["4,194,304", "4,194,304"],
              f"{name}: the verify sink's rows are not every generated row: {line!r}")
        total = next((l for l in out.splitlines() if l.strip().startswith("total")), "")
        rows = sum(int(v.replace(",", "")) for v in total.split()[1:])
        check(rows == 4194304, f"{name}: the row matrix totals {rows}")
    args = [sabot, "run", "--quiet", job, "--set", "generate.parallelism=3"]
    result = subprocess.run(args, capture_output=True, text=True, timeout=600)
    check(result.returncode == 2 and "split evenly" in result.stderr,
          f"shuffle 3->4: expected a refusal (exit 2), got {result.returncode}: {result.stderr}")


def orders_customers(sabot, job, work):
    """Its input comes from make-orders-customers.py (beside the job files); the reference is
    DuckDB's left join over the same files."""
    import duckdb
    data = os.path.join(work, "data")
    subprocess.run([sys.executable, os.path.join(EXAMPLES_DIR, "make-orders-customers.py"),
                    "--out", data], check=True, capture_output=True, timeout=300)
    con = duckdb.connect()
    want = con.sql(
        f"SELECT o.*, c.customer_id AS customer_id_right, c.name, c.country "
        f"FROM read_parquet('{data}/orders/*.parquet') o LEFT JOIN "
        f"read_parquet('{data}/customers/*.parquet') c ON o.customer_id = c.customer_id").to_arrow_table()
    unmatched = pc.sum(pc.is_null(want["name"])).as_py()
    check(0 < unmatched < want.num_rows, "orders-customers: some orders have no customer, not all")
    for p1, p2 in PARALLELISMS:
        name = f"orders-customers-join {p1}->{p2}"
        run(sabot, job, [f"orders.parallelism={p1}", f"customers.parallelism={p1}",
                         f"enriched.parallelism={p2}"])
        got = read_sink(os.path.join(work, "out", "orders-customers"), "parquet")
        check(got.column_names == ["order_id", "customer_id", "amount", "customer_id_right",
                                   "name", "country"], f"{name}: columns {got.column_names}")
        expect_equal(name, got, want.cast(got.schema))


# ---- windows against DuckDB (issue 11): the seed pipeline and sessionization -------------------

def with_options(job, work, name, options):
    """A copy of the job file with an options: block (e.g. shuffle_mode: blocking)."""
    with open(job) as f:
        text = f.read()
    lines = text.splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if line.startswith("job:")) + 1
    lines[at:at] = ["options:\n"] + [f"  {k}: {v}\n" for k, v in options.items()]
    path = os.path.join(work, name)
    with open(path, "w") as f:
        f.write("".join(lines))
    return path


def duckdb_rows(table, sql):
    """The rows of `sql` over `table` (registered as t, its event_time in microseconds, which
    DuckDB's epoch_ms takes), as a list of tuples."""
    import duckdb
    con = duckdb.connect()
    i = table.schema.get_field_index("event_time")
    table = table.set_column(i, "event_time", pc.cast(table["event_time"], pa.timestamp("us")))
    con.register("t", table)
    return con.execute(sql).fetchall()


def windows_of(directory, columns, name):
    """The sink's rows as {(user, window_start ms, window_end ms): values}; each window once, and
    each user in one part file (HASH on user_id)."""
    out, owner = {}, {}
    for subtask, path in parts(directory, "parquet").items():
        table = pq.read_table(path)
        if not check(table.column_names == columns, f"{name}: columns {table.column_names}"):
            return out
        check(table.schema.field("window_start").type == pa.timestamp("ms"),
              f"{name}: window_start is {table.schema.field('window_start').type}")
        starts = pc.cast(table["window_start"], pa.int64()).to_pylist()
        ends = pc.cast(table["window_end"], pa.int64()).to_pylist()
        values = [table[c].to_pylist() for c in columns[3:]]
        for i, user in enumerate(table["user_id"].to_pylist()):
            key = (user, starts[i], ends[i])
            check(key not in out, f"{name}: window {key} emitted twice")
            check(owner.setdefault(user, subtask) == subtask,
                  f"{name}: user {user} in parts {owner[user]} and {subtask}")
            out[key] = tuple(v[i] for v in values)
    return out


def close(a, b):
    if isinstance(a, float) or isinstance(b, float):
        return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))
    return a == b


def expect_windows(name, got, want):
    """Sums compared with a relative tolerance (they add in another order), the rest exactly."""
    if not check(set(got) == set(want),
                 f"{name}: {len(got)} windows, DuckDB {len(want)}; missing "
                 f"{sorted(set(want) - set(got), key=str)[:3]}, extra "
                 f"{sorted(set(got) - set(want), key=str)[:3]}"):
        return
    bad = [k for k in want if not all(close(g, w) for g, w in zip(got[k], want[k]))]
    check(not bad, f"{name}: {len(bad)} windows differ, e.g. {bad[:1]}: "
                   f"{[got[k] for k in bad[:1]]} vs DuckDB {[want[k] for k in bad[:1]]}")


def windowed_runs(sabot, job, work, source, aggregate, out, check_output):
    """The job at every parallelism in the pipelined mode, and at two in the blocking mode."""
    blocking = with_options(job, work, "blocking-" + os.path.basename(job),
                            {"shuffle_mode": "blocking"})
    # Under a 1 KiB state budget the windows' state spills (issue 11): the same results, and
    # nothing left in the spill directory.
    spill = os.path.join(work, "spill")
    spilling = with_options(job, work, "spilling-" + os.path.basename(job),
                            {"state_budget": "1KiB", "spill_directory": spill})
    runs = [(job, p, "pipelined") for p in PARALLELISMS]
    runs += [(blocking, p, "blocking") for p in [(4, 2), (3, 7)]]
    runs += [(spilling, (3, 7), "pipelined spilling")]
    for path, (p1, p2), mode in runs:
        name = f"{os.path.basename(job)} {p1}->{p2} {mode}"
        shutil.rmtree(os.path.join(work, "out"), ignore_errors=True)
        run(sabot, path, [f"{source}.parallelism={p1}", f"{aggregate}.parallelism={p2}"])
        directory = os.path.join(work, "out", out)
        check(sorted(parts(directory, "parquet")) == list(range(p2)),
              f"{name}: part files {sorted(parts(directory, 'parquet'))}")
        check_output(name, directory)
        if path == spilling:
            check(os.path.isdir(spill), f"{name}: nothing spilled under {spill}")
            check(not os.listdir(spill), f"{name}: spill files left: {os.listdir(spill)}")
            shutil.rmtree(spill, ignore_errors=True)


def seed_pipeline_windows(sabot, job, work):
    """examples/seed-pipeline.yaml: 5-minute tumbling sums per user equal DuckDB's GROUP BY
    user_id, time_bucket(5 minutes, event_time) over the generated table."""
    source = generator_table(sabot, job, work)
    rows = duckdb_rows(source, """
        SELECT user_id,
               epoch_ms(time_bucket(INTERVAL 5 minute, event_time, TIMESTAMP '1970-01-01')) AS s,
               s + 300000 AS e, sum(amount), sum(amount * 1.1), count(*)
        FROM t GROUP BY user_id, s""")
    want = {(u, s, e): tuple(v) for u, s, e, *v in rows}
    check(len({k[1] for k in want}) >= 3, "seed-pipeline: the input spans several windows")
    columns = ["user_id", "window_start", "window_end", "sum_amount", "sum_amount_usd", "count"]
    windowed_runs(sabot, job, work, "transactions", "sum", "seed-pipeline",
                  lambda name, d: expect_windows(name, windows_of(d, columns, name), want))


def sessionization(sabot, job, work):
    """examples/sessionization.yaml: sessions per user (a gap of 5 s or more starts a new one)
    equal a SQL sessionization in DuckDB: LAG over each user's rows by event time marks the
    rows that start a session, a running SUM numbers the sessions."""
    source = generator_table(sabot, job, work)
    rows = duckdb_rows(source, """
        WITH marked AS (
          SELECT *, CASE WHEN event_time - lag(event_time) OVER w < INTERVAL 5 second
                         THEN 0 ELSE 1 END AS starts
          FROM t WINDOW w AS (PARTITION BY user_id ORDER BY event_time)),
        numbered AS (
          SELECT *, sum(starts) OVER (PARTITION BY user_id ORDER BY event_time, starts DESC
                                      ROWS UNBOUNDED PRECEDING) AS session
          FROM marked)
        SELECT user_id, epoch_ms(min(event_time)) AS s, epoch_ms(max(event_time)) + 5000 AS e,
               count(*), sum(amount), max(amount)
        FROM numbered GROUP BY user_id, session""")
    want = {(u, s, e): tuple(v) for u, s, e, *v in rows}
    users = {k[0] for k in want}
    check(len(want) > 2 * len(users), "sessionization: users have several sessions each")
    columns = ["user_id", "window_start", "window_end", "events", "total", "largest"]
    windowed_runs(sabot, job, work, "transactions", "per_session", "sessions",
                  lambda name, d: expect_windows(name, windows_of(d, columns, name), want))


EXAMPLES = {
    "shuffle.yaml": shuffle,
    "seed-pipeline-keyed.yaml": seed_pipeline,
    "make-transactions-parquet.yaml": make_transactions,
    "filter-project-parquet.yaml": filter_project,
    "fan-out.yaml": fan_out,
    "orders-customers-join.yaml": orders_customers,
    "seed-pipeline.yaml": seed_pipeline_windows,
    "sessionization.yaml": sessionization,
}
EXAMPLES_DIR = ""


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("sabot")
    parser.add_argument("examples")
    args = parser.parse_args()
    global EXAMPLES_DIR
    EXAMPLES_DIR = args.examples
    shipped = sorted(n for n in os.listdir(args.examples) if n.endswith(".yaml"))
    check(sorted(EXAMPLES) == shipped,
          f"examples without a reference here, or references without an example: {shipped}")
    for name, test in EXAMPLES.items():
        with tempfile.TemporaryDirectory(prefix="sabot-examples-") as work:
            for f in shipped:
                shutil.copy(os.path.join(args.examples, f), work)
            try:
                test(args.sabot, os.path.join(work, name), work)
                print("done", name)
            except Exception as e:  # a failed run is a failure of this example, not a crash
                check(False, f"{name}: {e}")
    print(f"{len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
