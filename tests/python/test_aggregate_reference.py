"""A keyed aggregate run by `sabot run` equals DuckDB's GROUP BY over the same Parquet file.

Usage: python test_aggregate_reference.py /path/to/sabot

The test writes a Parquet file with pyarrow (two key columns with nulls, values with nulls, a row
number), then runs a job file (parquet_source -> key_by -> aggregate with every function ->
parquet_sink) at parallelism 1->1, 10->5 and 3->7 (source -> aggregate, set with `--set`), in
both shuffle modes. Every output row must equal DuckDB's `GROUP BY k_int, k_str` over the file
(nulls in keys form one group in both): count(*), count, sum, min, max and mean exactly (the
doubles are multiples of 1/64, so their sums do not depend on the order), count_distinct
exactly, first and last as DuckDB's first/last non-null value by row number when one source
task reads the row groups in order (1->1) and as one of the group's non-null values otherwise
(rows of a key then arrive interleaved from several tasks), and approx_median within the rank
error of a t-digest (at most half the values plus 5% on either side). Two more runs set
`state_budget: 8KiB`, so small that every aggregate task spills its new keys to disk and
aggregates them partition by partition at the end: the results must be the same, and no spill
file may remain. One more run puts a filter between key_by and aggregate (10->5): the stream stays
keyed through it, so the result must equal DuckDB's GROUP BY over the rows the filter keeps.
"""

import os
import random
import subprocess
import sys
import tempfile

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

PARALLELISMS = [(1, 1), (10, 5), (3, 7)]
MODES = ["pipelined", "blocking"]
AGGREGATES = [
    "count(*)", "count(v_int)", "sum(v_int)", "sum(v_dbl)", "min(v_str)", "max(v_int)",
    "mean(v_dbl)", "count_distinct(v_str)", "first(v_int)", "last(v_str)",
    "approx_median(v_dbl) as median",
]
ROWS = 30000

failures = []


def check(condition, message):
    if not condition:
        failures.append(message)
        print("FAIL", message)
    return condition


def write_input(path):
    rng = random.Random(2026)
    def maybe(value, percent):
        return None if rng.randrange(100) < percent else value
    names = ["ann", "bob", "", "dora", "eve", "fay", "gus"]
    table = pa.table({
        "row": pa.array(range(ROWS), pa.int64()),
        "k_int": pa.array([maybe(rng.randrange(40), 5) for _ in range(ROWS)], pa.int32()),
        "k_str": pa.array([maybe(rng.choice(names), 5) for _ in range(ROWS)], pa.string()),
        "v_int": pa.array([maybe(rng.randrange(-10**6, 10**6), 15) for _ in range(ROWS)],
                          pa.int64()),
        "v_dbl": pa.array([maybe(rng.randrange(-10**5, 10**5) / 64, 15) for _ in range(ROWS)],
                          pa.float64()),
        "v_str": pa.array([maybe("s%d" % rng.randrange(300), 15) for _ in range(ROWS)],
                          pa.string()),
    })
    pq.write_table(table, path, row_group_size=1500)


def write_job(path, mode, source, out, spill=None, where=None):
    aggregates = ", ".join(AGGREGATES)
    budget = f"\n  state_budget: 8KiB\n  spill_directory: {spill}" if spill else ""
    keyed = f"\n  - name: f\n    filter: \"{where}\"" if where else ""
    with open(path, "w") as f:
        f.write(f"""job: aggregate-reference
options:
  shuffle_mode: {mode}{budget}
operators:
  - name: src
    parquet_source: {source}
  - key_by: [k_int, k_str]{keyed}
  - name: agg
    aggregate: [{aggregates}]
  - name: out
    parquet_sink: {out}
""")


def run(sabot, job, sets):
    args = [sabot, "run", "--quiet", job]
    for s in sets:
        args += ["--set", s]
    result = subprocess.run(args, capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited {result.returncode}:\n{result.stderr}")


def read_sink(directory):
    names = sorted(n for n in os.listdir(directory) if n.endswith(".parquet"))
    return pa.concat_tables([pq.read_table(os.path.join(directory, n)) for n in names])


def reference(source, where="true"):
    """Per (k_int, k_str): DuckDB's aggregates, and the group's values for the looser checks."""
    sql = f"""
      SELECT k_int, k_str,
             count(*) AS count, count(v_int) AS count_v_int, sum(v_int) AS sum_v_int,
             sum(v_dbl) AS sum_v_dbl, min(v_str) AS min_v_str, max(v_int) AS max_v_int,
             avg(v_dbl) AS mean_v_dbl, count(DISTINCT v_str) AS count_distinct_v_str,
             arg_min(v_int, "row") FILTER (WHERE v_int IS NOT NULL) AS first_v_int,
             arg_max(v_str, "row") FILTER (WHERE v_str IS NOT NULL) AS last_v_str,
             list(v_int) FILTER (WHERE v_int IS NOT NULL) AS all_v_int,
             list(v_str) FILTER (WHERE v_str IS NOT NULL) AS all_v_str,
             list(v_dbl) FILTER (WHERE v_dbl IS NOT NULL) AS all_v_dbl
      FROM read_parquet('{source}') WHERE {where} GROUP BY k_int, k_str"""
    rows = duckdb.sql(sql).to_arrow_table().to_pylist()
    return {(r["k_int"], r["k_str"]): r for r in rows}


def close(a, b):
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= 1e-9 * max(1.0, abs(b))


def compare(name, got, want, ordered):
    expected_columns = ["k_int", "k_str", "count", "count_v_int", "sum_v_int", "sum_v_dbl",
                        "min_v_str", "max_v_int", "mean_v_dbl", "count_distinct_v_str",
                        "first_v_int", "last_v_str", "median"]
    if not check(got.column_names == expected_columns,
                 f"{name}: columns {got.column_names}, expected {expected_columns}"):
        return
    rows = got.to_pylist()
    keys = [(r["k_int"], r["k_str"]) for r in rows]
    check(len(set(keys)) == len(keys), f"{name}: a key appears twice")
    check(set(keys) == set(want), f"{name}: keys differ: {len(set(keys) ^ set(want))} not in both")
    check(any(k[0] is None for k in keys) and any(k[1] is None for k in keys),
          f"{name}: no group with a null key")
    for r in rows:
        key = (r["k_int"], r["k_str"])
        w = want.get(key)
        if w is None:
            continue
        for column in ["count", "count_v_int", "sum_v_int", "min_v_str", "max_v_int",
                       "count_distinct_v_str"]:
            check(r[column] == w[column], f"{name}: {column} of {key}: {r[column]} != {w[column]}")
        for column in ["sum_v_dbl", "mean_v_dbl"]:
            check(close(r[column], w[column]),
                  f"{name}: {column} of {key}: {r[column]} != {w[column]}")
        for column, values in [("first_v_int", "all_v_int"), ("last_v_str", "all_v_str")]:
            if ordered:
                check(r[column] == w[column],
                      f"{name}: {column} of {key}: {r[column]} != {w[column]}")
            else:
                check(r[column] in (w[values] or [None]),
                      f"{name}: {column} of {key}: {r[column]} is not a value of the group")
        values = w["all_v_dbl"] or []
        median = r["median"]
        if not values:
            check(median is None, f"{name}: median of {key}: {median} for no values")
            continue
        if not check(median is not None, f"{name}: median of {key} is null"):
            continue
        below = sum(1 for v in values if v < median)
        above = sum(1 for v in values if v > median)
        allowed = len(values) / 2 + max(1.0, 0.05 * len(values))
        check(below <= allowed and above <= allowed,
              f"{name}: median of {key}: {median} has {below} values below and {above} above "
              f"of {len(values)}")


def check_float_keys(sabot, work):
    """Float keys group by value as DuckDB's GROUP BY (and docs/hashing.md): -0.0 and 0.0 are one
    group, output as 0.0, and all NaNs one group, for float64 and float32, at 3 sources -> 3
    aggregate tasks."""
    nan = float("nan")
    values = [0.0, -0.0, nan, -nan, 1.5, None, -0.0, 0.0, nan, 2.5, None] * 3
    for type_name, arrow_type in (("float64", pa.float64()), ("float32", pa.float32())):
        source = os.path.join(work, f"float-keys-{type_name}.parquet")
        table = pa.table({"k": pa.array(values, arrow_type),
                          "v": pa.array(range(len(values)), pa.int64())})
        pq.write_table(table, source, row_group_size=7)
        out = os.path.join(work, f"out-float-keys-{type_name}")
        job = os.path.join(work, f"job-float-keys-{type_name}.yaml")
        with open(job, "w") as f:
            f.write(f"""job: float-keys
operators:
  - name: src
    parquet_source: {source}
    parallelism: 3
  - key_by: k
  - name: agg
    aggregate: [count(*), sum(v)]
    parallelism: 3
  - name: out
    parquet_sink: {out}
""")
        run(sabot, job, [])
        got = read_sink(out)
        # Keys as text: repr tells -0.0 from 0.0 and names NaN.
        got_groups = sorted((repr(k), c, s) for k, c, s in zip(
            got.column("k").to_pylist(), got.column("count").to_pylist(),
            got.column("sum_v").to_pylist()))
        con = duckdb.connect()
        con.register("t", table)
        want = sorted((repr(k), c, s) for k, c, s in con.execute(
            "SELECT k, count(*), sum(v) FROM t GROUP BY k").fetchall())
        check(got_groups == want,
              f"float keys ({type_name}): groups {got_groups}, DuckDB's {want}")
        print(f"float keys ({type_name}): {got.num_rows} groups checked")


def main():
    sabot = os.path.abspath(sys.argv[1])
    with tempfile.TemporaryDirectory(prefix="sabot_aggregate_reference_") as work:
        check_float_keys(sabot, work)
        source = os.path.join(work, "input.parquet")
        write_input(source)
        want = reference(source)
        check(len(want) > 200, f"reference: only {len(want)} groups")
        for mode in MODES:
            for sources, aggregates in PARALLELISMS:
                name = f"{mode} {sources}->{aggregates}"
                out = os.path.join(work, f"out-{mode}-{sources}-{aggregates}")
                job = os.path.join(work, f"job-{mode}.yaml")
                write_job(job, mode, source, out)
                run(sabot, job, [f"src.parallelism={sources}", f"agg.parallelism={aggregates}"])
                got = read_sink(out)
                compare(name, got, want, ordered=(sources == 1))
                print(f"{name}: {got.num_rows} groups checked")
        # A state budget so small that every aggregate task spills (grace aggregation).
        spill = os.path.join(work, "spill")
        for sources, aggregates in [(1, 1), (3, 7)]:
            name = f"spilling {sources}->{aggregates}"
            out = os.path.join(work, f"out-spill-{sources}-{aggregates}")
            job = os.path.join(work, "job-spill.yaml")
            write_job(job, "pipelined", source, out, spill=spill)
            run(sabot, job, [f"src.parallelism={sources}", f"agg.parallelism={aggregates}"])
            got = read_sink(out)
            compare(name, got, want, ordered=(sources == 1))
            check(os.path.isdir(spill), f"{name}: nothing spilled under {spill}")
            check(not os.listdir(spill), f"{name}: spill files left: {os.listdir(spill)}")
            print(f"{name}: {got.num_rows} groups checked")
        # key_by -> filter -> aggregate: the filter keeps the rows where their keys belong.
        where = "v_int > 0"
        want_filtered = reference(source, where)
        out = os.path.join(work, "out-filter")
        job = os.path.join(work, "job-filter.yaml")
        write_job(job, "pipelined", source, out, where=where)
        run(sabot, job, ["src.parallelism=10", "f.parallelism=10", "agg.parallelism=5"])
        got = read_sink(out)
        compare("filtered 10->5", got, want_filtered, ordered=False)
        print(f"filtered 10->5: {got.num_rows} groups checked")
    if failures:
        print(f"{len(failures)} failure(s)")
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
