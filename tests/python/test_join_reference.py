"""Sabot's joins equal DuckDB's (issue 11, "Correctness": every join type, null keys, duplicate
and skewed keys, empty sides, at parallelism 1->1, 10->5 and 3->7, in both shuffle modes, hash
and broadcast joins; window and interval joins of out-of-order event-time input).

Usage: python test_join_reference.py /path/to/sabot

The inputs are Parquet files written here with pyarrow (several files and row groups, so the
sources split them across their tasks). Left: id, k1 (int32), k2 (string), v; right: rid, k1
(int64), k2 (string), w. Both sides join on (k1, k2): k1 is int32 on the left and int64 on the
right, which the join widens (the HASH partitioner sends equal values of both types to the same
task). About 5% of each key column is null, keys repeat on both sides, and one hot key holds a
tenth of the rows of each side. More jobs join on k1 alone (one integer key: the join's own hash
table rather than Acero's), every type. One configuration per shuffle mode runs under a 1 KiB state budget,
so that every join spills both inputs to disk (grace hash join); the window and interval joins
also run under it per shuffle mode (their held rows spill by key hash). Each configuration runs one job whose two sources feed one join
per type (8 hash joins, 7 broadcast joins), each into its own Parquet sink; every sink's rows
must equal DuckDB's over the same files, compared as sorted multisets of rows, with the
documented output column names (right columns renamed `<name>_right` where a left column has the
name).
"""

import argparse
import os
import random
import subprocess
import sys
import tempfile

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

failures = []

TYPES = ["inner", "left", "right", "full", "semi", "anti", "right_semi", "right_anti"]
# The broadcast joins the plan allows: the side never emitted on its own is broadcast.
BROADCASTS = [("inner", "right"), ("left", "right"), ("semi", "right"), ("anti", "right"),
              ("inner", "left"), ("right", "left"), ("right_semi", "left"),
              ("right_anti", "left")]

# The state budget of the spilling cases: far below what a join task buffers.
STATE_BUDGET = "1KiB"

LEFT_COLUMNS = ["id", "k1", "k2", "v"]
RIGHT_COLUMNS = ["rid", "k1", "k2", "w"]
ON = "l.k1 = r.k1 AND l.k2 = r.k2"
ON_K1 = "l.k1 = r.k1"


def all_joins(k1=False):
    """(sink name, join type, broadcast side or None, join keys) of every join of a job: the
    hash and broadcast joins on (k1, k2), or with `k1` every type on k1 alone."""
    if k1:
        return [(f"{t}_k1", t, None, ["k1"]) for t in TYPES]
    return ([(t, t, None, ["k1", "k2"]) for t in TYPES] +
            [(f"{t}_bc_{b}", t, b, ["k1", "k2"]) for t, b in BROADCASTS])


def check(condition, message):
    if not condition:
        failures.append(message)
        print("FAIL", message)
    return condition


def keys(rng, n, hot_share):
    k1, k2 = [], []
    for _ in range(n):
        if rng.random() < hot_share:
            k1.append(7)
            k2.append("a")
            continue
        k1.append(None if rng.random() < 0.05 else rng.randrange(40))
        k2.append(None if rng.random() < 0.05 else rng.choice("abc"))
    return k1, k2


def write_inputs(directory, left_rows, right_rows, seed):
    rng = random.Random(seed)
    k1, k2 = keys(rng, left_rows, 0.1)
    left = pa.table({"id": pa.array(range(left_rows), pa.int64()),
                     "k1": pa.array(k1, pa.int32()), "k2": pa.array(k2, pa.string()),
                     "v": pa.array([rng.randrange(10000) / 100 for _ in range(left_rows)],
                                   pa.float64())})
    k1, k2 = keys(rng, right_rows, 0.1)
    right = pa.table({"rid": pa.array(range(right_rows), pa.int64()),
                      "k1": pa.array(k1, pa.int64()), "k2": pa.array(k2, pa.string()),
                      "w": pa.array([f"w{rng.randrange(1000)}" for _ in range(right_rows)],
                                    pa.string())})
    paths = {}
    for name, table, files in (("left", left, 4), ("right", right, 2)):
        folder = os.path.join(directory, name)
        os.makedirs(folder)
        per_file = -(-table.num_rows // files) if table.num_rows else 0
        for f in range(files):
            part = table.slice(f * per_file, per_file) if table.num_rows else table
            pq.write_table(part, os.path.join(folder, f"part-{f}.parquet"), row_group_size=100)
            if not table.num_rows:
                break
        paths[name] = folder
    return paths


def job_text(paths, out, sources, joins, mode, spill=None, k1=False):
    lines = [f"job: joins", "options:", f"  shuffle_mode: {mode}", "  progress: false"]
    if spill:
        lines += [f"  state_budget: {STATE_BUDGET}", f"  spill_directory: {spill}"]
    lines += ["operators:"]
    for name in ("left", "right"):
        lines += [f"  - name: {name}_source", f"    parquet_source: {paths[name]}",
                  f"    parallelism: {sources}"]
    for name, how, broadcast, on in all_joins(k1):
        spec = f"{{on: [{', '.join(on)}], how: {how}" + (f", broadcast: {broadcast}}}"
                                                          if broadcast else "}")
        lines += [f"  - name: {name}", f"    join: {spec}", "    left: left_source",
                  "    right: right_source", f"    parallelism: {joins}",
                  f"  - name: {name}_out", f"    parquet_sink: {os.path.join(out, name)}"]
    return "\n".join(lines) + "\n"


def reference_sql(how, on=ON):
    both = f"SELECT l.*, r.* FROM l {{}} JOIN r ON {on}"
    return {
        "inner": both.format("INNER"),
        "left": both.format("LEFT OUTER"),
        "right": both.format("RIGHT OUTER"),
        "full": both.format("FULL OUTER"),
        "semi": f"SELECT l.* FROM l SEMI JOIN r ON {on}",
        "anti": f"SELECT l.* FROM l ANTI JOIN r ON {on}",
        "right_semi": f"SELECT r.* FROM r SEMI JOIN l ON {on}",
        "right_anti": f"SELECT r.* FROM r ANTI JOIN l ON {on}",
    }[how]


def expected_names(how):
    if how in ("semi", "anti"):
        return LEFT_COLUMNS
    if how in ("right_semi", "right_anti"):
        return RIGHT_COLUMNS
    return LEFT_COLUMNS + [c + "_right" if c in LEFT_COLUMNS else c for c in RIGHT_COLUMNS]


def sort_key(row):
    return tuple((value is None, value if value is not None else 0) for value in row)


def rows_of(table):
    columns = [table.column(i).to_pylist() for i in range(table.num_columns)]
    return sorted(zip(*columns), key=sort_key) if columns else []


def run_case(sabot, work, label, paths, sources, joins, mode, spill=False, k1=False):
    """With `spill`, the job runs under a state budget so small (STATE_BUDGET) that every join
    task spills both inputs (grace hash join): each join must report state spilled in the job's
    summary and leave no spill file behind."""
    out = os.path.join(work, "out-" + label)
    job = os.path.join(work, label + ".yaml")
    spill_directory = os.path.join(work, "spill-" + label) if spill else None
    with open(job, "w") as f:
        f.write(job_text(paths, out, sources, joins, mode, spill_directory, k1))
    command = [sabot, "run", job] if spill else [sabot, "run", "--quiet", job]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    if not check(result.returncode == 0,
                 f"{label}: sabot run exited {result.returncode}: {result.stderr[-2000:]}"):
        return
    if spill:
        for name, _, _, _ in all_joins(k1):
            check(f"  {name}: state spilled " in result.stdout,
                  f"{label} {name}: no state spilled in the summary:\n{result.stdout[-3000:]}")
        left = os.listdir(spill_directory) if os.path.isdir(spill_directory) else []
        check(not left, f"{label}: spill files left in {spill_directory}: {left[:5]}")
    con = duckdb.connect()
    con.execute(f"CREATE VIEW l AS SELECT * FROM read_parquet('{paths['left']}/*.parquet')")
    con.execute(f"CREATE VIEW r AS SELECT * FROM read_parquet('{paths['right']}/*.parquet')")
    for name, how, _, on in all_joins(k1):
        got = pq.read_table(os.path.join(out, name))
        expected = con.execute(reference_sql(how, ON if len(on) == 2 else ON_K1)).fetchall()
        check(got.column_names == expected_names(how),
              f"{label} {name}: columns {got.column_names}, expected {expected_names(how)}")
        got_rows = rows_of(got)
        want = sorted(expected, key=sort_key)
        if not check(got_rows == want,
                     f"{label} {name}: {len(got_rows)} rows differ from DuckDB's {len(want)}"):
            print("  first differences:",
                  [r for r in got_rows if r not in set(want)][:3],
                  [r for r in want if r not in set(got_rows)][:3])
    print("done", label)


# Event-time joins: Parquet inputs whose times advance with up to DISORDER_MS of disorder, read
# with that bound (no row is late), a window join and two interval joins.
DISORDER_MS = 3000
TIME_JOINS = [("window_5s", "window: 5s", "time_bucket(INTERVAL 5 SECOND, l.t) = "
               "time_bucket(INTERVAL 5 SECOND, r.t)"),
              ("interval_2s_1s", "interval: {before: 2s, after: 1s}",
               "r.t BETWEEN l.t - INTERVAL 2 SECOND AND l.t + INTERVAL 1 SECOND"),
              ("interval_0_4s", "interval: {before: 0ms, after: 4s}",
               "r.t BETWEEN l.t AND l.t + INTERVAL 4 SECOND")]


def write_timed_inputs(directory, seed):
    rng = random.Random(seed)
    paths = {}
    for name, rows, step in (("left", 1200, 100), ("right", 500, 240)):
        base = 1_700_000_000_000
        times = [base + i * step + rng.randrange(DISORDER_MS) for i in range(rows)]
        table = pa.table({
            ("id" if name == "left" else "rid"): pa.array(range(rows), pa.int64()),
            "k": pa.array([None if rng.random() < 0.05 else rng.randrange(12)
                           for _ in range(rows)], pa.int64()),
            "t": pa.array(times, pa.timestamp("ms")),
        })
        folder = os.path.join(directory, name)
        os.makedirs(folder)
        # One file per side, row groups in time order: each source task reads runs of rows
        # whose disorder stays within the bound.
        pq.write_table(table, os.path.join(folder, "part-0.parquet"), row_group_size=100)
        paths[name] = folder
    return paths


def run_time_case(sabot, work, label, paths, sources, joins, mode, spill=False):
    """With `spill`, under STATE_BUDGET: the rows each window / interval join task holds move to
    disk by key hash (issue 11); each join must report state spilled and leave no file."""
    out = os.path.join(work, "out-" + label)
    job = os.path.join(work, label + ".yaml")
    spill_directory = os.path.join(work, "spill-" + label) if spill else None
    lines = ["job: time-joins", "options:", f"  shuffle_mode: {mode}", "  progress: false"]
    if spill:
        lines += [f"  state_budget: {STATE_BUDGET}", f"  spill_directory: {spill_directory}"]
    lines += ["operators:"]
    for name in ("left", "right"):
        lines += [f"  - name: {name}_source", "    parquet_source:",
                  f"      paths: [{paths[name]}]",
                  f"      event_time: {{column: t, max_out_of_orderness: {DISORDER_MS}ms}}",
                  f"    parallelism: {sources}"]
    for name, spec, _ in TIME_JOINS:
        lines += [f"  - name: {name}", f"    join: {{on: [k], time: t, {spec}}}",
                  "    left: left_source", "    right: right_source",
                  f"    parallelism: {joins}", f"  - name: {name}_out",
                  f"    parquet_sink: {os.path.join(out, name)}"]
    with open(job, "w") as f:
        f.write("\n".join(lines) + "\n")
    command = [sabot, "run", job] if spill else [sabot, "run", "--quiet", job]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    if not check(result.returncode == 0,
                 f"{label}: sabot run exited {result.returncode}: {result.stderr[-2000:]}"):
        return
    if spill:
        for name, _, _ in TIME_JOINS:
            check(f"  {name}: state spilled " in result.stdout,
                  f"{label}: {name} reports no state spilled:\n{result.stdout}")
        check(not os.path.isdir(spill_directory) or not os.listdir(spill_directory),
              f"{label}: spill files left in {spill_directory}")
    con = duckdb.connect()
    con.execute(f"CREATE VIEW l AS SELECT * FROM read_parquet('{paths['left']}/*.parquet')")
    con.execute(f"CREATE VIEW r AS SELECT * FROM read_parquet('{paths['right']}/*.parquet')")
    for name, _, condition in TIME_JOINS:
        got = pq.read_table(os.path.join(out, name))
        check(got.column_names == ["id", "k", "t", "rid", "k_right", "t_right"],
              f"{label} {name}: columns {got.column_names}")
        want = sorted(con.execute(
            f"SELECT l.*, r.* FROM l JOIN r ON l.k = r.k AND {condition}").fetchall(),
            key=sort_key)
        check(len(want) > 0, f"{label} {name}: the reference is empty")
        got_rows = rows_of(got)
        check(got_rows == want,
              f"{label} {name}: {len(got_rows)} rows differ from DuckDB's {len(want)}")
    print("done", label)


# Edge cases of keys and times, each a small job at parallelism 3 compared with DuckDB by the
# (id, rid) pairs joined: float keys (-0.0 matches 0.0, NaN matches NaN), microsecond times an
# interval of 0 must not truncate to ms, and times before 1970 a 1 s window join must floor.
EDGE_JOINS = [
    ("float_keys", "{on: [k]}", "l.k = r.k",
     pa.array([0.0, -0.0, float("nan"), 1.5, None, -0.0], pa.float64()),
     pa.array([-0.0, 0.0, float("nan"), 1.5, None], pa.float64())),
    ("interval_us", "{on: [k], time: t, interval: {before: 0ms, after: 0ms}}",
     "l.k = r.k AND r.t BETWEEN l.t AND l.t",
     pa.array([400, 1000, 5, 2_000_000], pa.timestamp("us")),
     pa.array([799, 1000, 6, 2_000_000, 2_000_001], pa.timestamp("us"))),
    ("window_before_1970", "{on: [k], time: t, window: 1s}",
     "l.k = r.k AND time_bucket(INTERVAL 1 SECOND, l.t) = time_bucket(INTERVAL 1 SECOND, r.t)",
     pa.array([-500, -1_500_000, 999_999, 3], pa.timestamp("us")),
     pa.array([100, -999_000, -1_000_001, -1, 1_000_000], pa.timestamp("us"))),
]


def run_edge_cases(sabot, work):
    for name, spec, condition, left, right in EDGE_JOINS:
        folder = os.path.join(work, "edge-" + name)
        os.makedirs(folder)
        timed = pa.types.is_timestamp(left.type)
        tables = {}
        for side, column in (("left", left), ("right", right)):
            n = len(column)
            if timed:
                table = pa.table({"k": pa.array([1] * n, pa.int64()), "t": column})
            else:
                table = pa.table({"k": column})
            tables[side] = table.append_column("id" if side == "left" else "rid",
                                               pa.array(range(n), pa.int64()))
            pq.write_table(tables[side], os.path.join(folder, side + ".parquet"))
        event_time = ", event_time: {column: t, max_out_of_orderness: 5s}" if timed else ""
        lines = [f"job: edge", "options:", "  progress: false", "operators:"]
        for side in ("left", "right"):
            lines += [f"  - name: {side}_source",
                      f"    parquet_source: {{paths: [{os.path.join(folder, side)}.parquet]"
                      f"{event_time}}}"]
        lines += ["  - name: j", f"    join: {spec}", "    left: left_source",
                  "    right: right_source", "    parallelism: 3", "  - name: out",
                  f"    parquet_sink: {os.path.join(folder, 'out')}"]
        job = os.path.join(folder, "job.yaml")
        with open(job, "w") as f:
            f.write("\n".join(lines) + "\n")
        result = subprocess.run([sabot, "run", "--quiet", job], capture_output=True, text=True,
                                timeout=600)
        if not check(result.returncode == 0,
                     f"edge {name}: sabot run exited {result.returncode}: "
                     f"{result.stderr[-2000:]}"):
            continue
        got = pq.read_table(os.path.join(folder, "out"))
        got_pairs = sorted(zip(got.column("id").to_pylist(), got.column("rid").to_pylist()))
        con = duckdb.connect()
        con.register("l", tables["left"])
        con.register("r", tables["right"])
        want = sorted(con.execute(f"SELECT l.id, r.rid FROM l JOIN r ON {condition}").fetchall())
        check(len(want) > 0, f"edge {name}: the reference is empty")
        check(got_pairs == want, f"edge {name}: pairs {got_pairs}, DuckDB's {want}")
        print("done edge", name)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("sabot")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sabot-join-") as work:
        main_inputs = write_inputs(os.path.join(work, "main"), 1500, 300, seed=11)
        no_right = write_inputs(os.path.join(work, "no-right"), 400, 0, seed=12)
        no_left = write_inputs(os.path.join(work, "no-left"), 0, 200, seed=13)
        for mode in ("pipelined", "blocking"):
            for sources, joins in ((1, 1), (10, 5), (3, 7)):
                run_case(args.sabot, work, f"{mode}-{sources}-{joins}", main_inputs, sources,
                         joins, mode)
            run_case(args.sabot, work, f"{mode}-empty-right", no_right, 3, 2, mode)
            run_case(args.sabot, work, f"{mode}-empty-left", no_left, 2, 3, mode)
            run_case(args.sabot, work, f"{mode}-spill-3-2", main_inputs, 3, 2, mode, spill=True)
            run_case(args.sabot, work, f"{mode}-k1-10-5", main_inputs, 10, 5, mode, k1=True)
            run_case(args.sabot, work, f"{mode}-k1-spill-3-2", main_inputs, 3, 2, mode,
                     spill=True, k1=True)
        run_edge_cases(args.sabot, work)
        timed = write_timed_inputs(os.path.join(work, "timed"), seed=21)
        for mode in ("pipelined", "blocking"):
            for sources, joins in ((1, 1), (10, 5), (3, 7)):
                run_time_case(args.sabot, work, f"time-{mode}-{sources}-{joins}", timed, sources,
                              joins, mode)
            run_time_case(args.sabot, work, f"time-{mode}-spill-3-7", timed, 3, 7, mode,
                          spill=True)
    print(f"{len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
