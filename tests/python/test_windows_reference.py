"""Event-time windows against DuckDB (issue 11, "Correctness"): `sabot run` of a keyed, windowed
aggregate over Parquet transactions equals DuckDB's GROUP BY over the same file.

Usage: python test_windows_reference.py /path/to/sabot

The test writes the input with pyarrow: transactions (user_id with nulls, amount, event_time as
timestamp[ms]) over ten minutes, in three versions:
  - in order;
  - shuffled within the out-of-orderness bound: every row is less than the bound behind the
    largest event time before it, so no row is ever behind a watermark, however the file source
    splits the file across its tasks;
  - the shuffled rows plus rows far later than the bound (event times of the first minute,
    placed in the last third of the file): late rows.
Each job (parquet_source with event_time and max_out_of_orderness -> key_by user_id -> window ->
aggregate sum/count/min/max/mean -> parquet_sink, and the window's late rows to a late_output
directory) runs at several parallelisms (source -> window) and in both shuffle modes. Its
output must equal DuckDB's:
  - tumbling: GROUP BY user_id, time_bucket(1 minute, event_time, epoch);
  - sliding (hop): each row joined with the 4 hops of its 2-minute windows every 30 s;
  - session: a SQL sessionization (LAG over the user's rows by event time, a new session when
    the gap is >= 8 s, a running SUM numbering the sessions).
Late rows: with one source task a row's lateness is exact, so the summary's count ("late rows:")
and the late output's rows equal the rows placed late. With several source tasks the task's
watermark is the minimum over them, so whether a late row still finds its window open depends on
how far the other tasks got: there the late output must hold only rows placed late, its size must
equal the summary's count, and the windows must equal DuckDB over every row but those. With an
allowed lateness longer than the lateness, no row is late, and the last row emitted per key and
window (a late row re-emits its key's updated row) must equal DuckDB over every row.
Under a state budget so small that window state spills (`state_budget: 1KiB`: open windows' new
keys, rows kept for allowed lateness and buffered session rows go to disk by key hash and are
merged back when the windows fire), every window kind at 3->7 and the allowed-lateness case must
give the same DuckDB-equal results, the summary must report the aggregate's state spilled, and
no spill file may be left behind.
Sessions over a timestamp[us] column whose gaps are within a millisecond of the session gap must
equal DuckDB's sessions in microseconds (window_start / window_end are timestamp[us]).
"""

import argparse
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

T0_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z, minute-aligned
SPAN_MS = 600_000          # ten minutes of event time
BOUND_MS = 5_000           # max_out_of_orderness
ROWS = 6_000
USERS = 40
GAP_S = 8                  # session gap

WINDOWS = {
    "tumbling": "{size: 1m}",
    "sliding": "{size: 2m, slide: 30s}",
    "session": "{gap: %ds}" % GAP_S,
}

failures = []


def check(condition, message):
    if not condition:
        failures.append(message)
        print("FAIL", message)
    return condition


def make_rows(seed):
    rng = random.Random(seed)
    rows = []
    t = T0_MS
    for i in range(ROWS):
        t += rng.randint(0, 2 * SPAN_MS // ROWS)
        user = None if rng.random() < 0.05 else rng.randrange(USERS)
        amount = rng.randint(0, 1_000_000) / 100
        rows.append((user, amount, t))
    return rows


def shuffled_within_bound(rows, seed):
    """Each row moves later by less than the bound: sorted by event time + U[0, 0.9 bound)."""
    rng = random.Random(seed)
    keyed = [(r[2] + rng.uniform(0, 0.9 * BOUND_MS), i, r) for i, r in enumerate(rows)]
    keyed.sort()
    return [r for _, _, r in keyed]


def with_late_rows(rows, seed, count=25):
    """`count` rows of the first minute, placed in the last third of the file."""
    rng = random.Random(seed)
    out = list(rows)
    late = []
    for _ in range(count):
        row = (rng.choice([None, 1, 2, 3]), rng.randint(0, 100_000) / 100,
               T0_MS + rng.randrange(60_000))
        late.append(row)
        out.insert(rng.randrange(2 * len(out) // 3, len(out)), row)
    return out, late


def to_table(rows):
    return pa.table({
        "user_id": pa.array([r[0] for r in rows], pa.int64()),
        "amount": pa.array([r[1] for r in rows], pa.float64()),
        "event_time": pa.array([r[2] for r in rows], pa.timestamp("ms")),
    })


def reference(table, kind):
    """DuckDB's windows over `table`, as {(user, start_ms, end_ms): (sum, count, min, max, mean)}."""
    con = duckdb.connect()
    # DuckDB's epoch_ms does not take its TIMESTAMP_MS type: hand it microseconds.
    i = table.schema.get_field_index("event_time")
    table = table.set_column(i, "event_time", pc.cast(table["event_time"], pa.timestamp("us")))
    con.register("t", table)
    aggregates = "sum(amount), count(*), min(amount), max(amount), avg(amount)"
    if kind == "tumbling":
        sql = f"""
            SELECT user_id,
                   epoch_ms(time_bucket(INTERVAL 1 minute, event_time, TIMESTAMP '1970-01-01')) AS s,
                   s + 60000 AS e, {aggregates}
            FROM t GROUP BY user_id, s"""
    elif kind == "sliding":
        sql = f"""
            WITH hops AS (
              SELECT t.*, epoch_ms(time_bucket(INTERVAL 30 second, event_time,
                                               TIMESTAMP '1970-01-01')) - k * 30000 AS s
              FROM t, range(0, 4) AS r(k))
            SELECT user_id, s, s + 120000 AS e, {aggregates}
            FROM hops WHERE s + 120000 > epoch_ms(event_time) GROUP BY user_id, s"""
    else:
        sql = f"""
            WITH marked AS (
              SELECT *, CASE WHEN event_time - lag(event_time) OVER w < INTERVAL {GAP_S} second
                             THEN 0 ELSE 1 END AS starts
              FROM t WINDOW w AS (PARTITION BY user_id ORDER BY event_time)),
            numbered AS (
              SELECT *, sum(starts) OVER (PARTITION BY user_id ORDER BY event_time, starts DESC
                                          ROWS UNBOUNDED PRECEDING) AS session
              FROM marked)
            SELECT user_id, epoch_ms(min(event_time)) AS s,
                   epoch_ms(max(event_time)) + {GAP_S * 1000} AS e, {aggregates}
            FROM numbered GROUP BY user_id, session"""
    out = {}
    for user, s, e, *values in con.execute(sql).fetchall():
        out[(user, s, e)] = tuple(values)
    return out


def read_parts(directory):
    names = sorted(n for n in os.listdir(directory) if n.startswith("part-"))
    leftovers = [n for n in os.listdir(directory) if n.endswith(".tmp")]
    check(not leftovers, f"{directory}: temporary files left: {leftovers}")
    return [pq.read_table(os.path.join(directory, n)) for n in names]


def sabot_windows(directory, label, sessions=False):
    """The job's output, the last row per (user, window) of each part file (a key and window
    always go to one task). Returns ({key: values}, rows emitted). With `sessions`, a row also
    supersedes the earlier rows of its user whose windows it overlaps (a late row that extends or
    merges sessions re-emits the merged session: docs/dataflow.md)."""
    out = {}
    emitted = 0
    for table in read_parts(directory):
        check(table.column_names == ["user_id", "window_start", "window_end", "sum_amount",
                                     "count", "min_amount", "max_amount", "mean_amount"],
              f"{label}: output columns {table.column_names}")
        check(table.schema.field("window_start").type == pa.timestamp("ms"),
              f"{label}: window_start type {table.schema.field('window_start').type}")
        starts = pc.cast(table["window_start"], pa.int64()).to_pylist()
        ends = pc.cast(table["window_end"], pa.int64()).to_pylist()
        columns = [table[c].to_pylist() for c in
                   ("sum_amount", "count", "min_amount", "max_amount", "mean_amount")]
        users = table["user_id"].to_pylist()
        for i in range(table.num_rows):
            if sessions:
                for key in [k for k in out if k[0] == users[i] and k[1] < ends[i] and
                            starts[i] < k[2]]:
                    del out[key]
            out[(users[i], starts[i], ends[i])] = tuple(c[i] for c in columns)
            emitted += 1
    return out, emitted


def close(a, b):
    return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


def compare(got, want, label):
    if not check(set(got) == set(want),
                 f"{label}: {len(got)} windows, DuckDB {len(want)}; "
                 f"missing {sorted(set(want) - set(got), key=str)[:3]}, "
                 f"extra {sorted(set(got) - set(want), key=str)[:3]}"):
        return
    bad = [k for k in want
           if not (close(got[k][0], want[k][0]) and got[k][1] == want[k][1] and
                   got[k][2] == want[k][2] and got[k][3] == want[k][3] and
                   close(got[k][4], want[k][4]))]
    check(not bad, f"{label}: {len(bad)} windows differ, e.g. {bad[:1]}: "
                   f"{[got[k] for k in bad[:1]]} vs DuckDB {[want[k] for k in bad[:1]]}")


def late_count(summary):
    match = re.search(r"^late rows: agg ([\d,]+)$", summary, re.MULTILINE)
    return int(match.group(1).replace(",", "")) if match else 0


def row_key(r):
    return (r[0], r[1], r[2])


def run_job(sabot, folder, input_path, kind, sources, tasks, mode, lateness=None, spill=None):
    for d in ("out", "late"):
        shutil.rmtree(os.path.join(folder, d), ignore_errors=True)
    window = WINDOWS[kind]
    if lateness:
        window = window[:-1] + f", allowed_lateness: {lateness}}}"
    window = window[:-1] + ", late_output: {format: parquet, directory: late}}"
    job = os.path.join(folder, "job.yaml")
    with open(job, "w") as f:
        budget = f"\n  state_budget: 1KiB\n  spill_directory: {spill}" if spill else ""
        f.write(f"""job: windows
options:
  shuffle_mode: {mode}
  threads: 2{budget}
operators:
  - name: source
    parquet_source: {{paths: [{input_path}], event_time: {{column: event_time, max_out_of_orderness: {BOUND_MS}ms}}}}
    parallelism: {sources}
  - key_by: user_id
  - name: window
    window: {window}
  - name: agg
    aggregate: [sum(amount), count(*), min(amount), max(amount), mean(amount)]
    parallelism: {tasks}
  - name: sink
    parquet_sink: out
""")
    command = [sabot, "run", job] if spill else [sabot, "run", "--quiet", job]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        raise RuntimeError(f"sabot run {kind} {sources}->{tasks} {mode} exited "
                           f"{result.returncode}:\n{result.stderr}")
    return result.stdout


def check_microsecond_sessions(sabot, folder):
    """Sessions of a timestamp[us] column are cut in microseconds: per user, consecutive rows are
    either far apart, or less than a millisecond below / at or above the gap (flooring to ms
    would cut or join those wrongly), and the windows must equal DuckDB's in microseconds."""
    rng = random.Random(14)
    gap_us = GAP_S * 1_000_000
    rows = []
    for user in range(20):
        t = T0_MS * 1000 + rng.randint(0, 999_999)
        for _ in range(100):
            rows.append((user, rng.randint(0, 1_000_000) / 100, t))
            t += rng.choice([rng.randint(1, 3_000_000), gap_us - rng.randint(1, 999),
                             gap_us + rng.randint(0, 999)])
    # The data must tell microseconds from floored milliseconds.
    times = {}
    for user, _, t in rows:
        times.setdefault(user, []).append(t)
    differs = sum(1 for ts in times.values() for a, b in zip(ts, ts[1:])
                  if (b - a < gap_us) != (b // 1000 - a // 1000 < GAP_S * 1000))
    check(differs > 20, f"only {differs} gaps where flooring to ms changes the sessions")
    rows.sort(key=lambda r: r[2])
    table = pa.table({
        "user_id": pa.array([r[0] for r in rows], pa.int64()),
        "amount": pa.array([r[1] for r in rows], pa.float64()),
        "event_time": pa.array([r[2] for r in rows], pa.timestamp("us")),
    })
    path = os.path.join(folder, "sessions_us.parquet")
    pq.write_table(table, path)
    con = duckdb.connect()
    con.register("t", table)
    want = {}
    for user, s, e, *values in con.execute(f"""
            WITH marked AS (
              SELECT *, CASE WHEN event_time - lag(event_time) OVER w < INTERVAL {GAP_S} second
                             THEN 0 ELSE 1 END AS starts
              FROM t WINDOW w AS (PARTITION BY user_id ORDER BY event_time)),
            numbered AS (
              SELECT *, sum(starts) OVER (PARTITION BY user_id ORDER BY event_time
                                          ROWS UNBOUNDED PRECEDING) AS session
              FROM marked)
            SELECT user_id, epoch_us(min(event_time)) AS s, epoch_us(max(event_time)) + {gap_us},
                   sum(amount), count(*), min(amount), max(amount), avg(amount)
            FROM numbered GROUP BY user_id, session""").fetchall():
        want[(user, s, e)] = tuple(values)
    label = "session timestamp[us]"
    check(len(want) > 500, f"{label}: the reference has only {len(want)} sessions")
    summary = run_job(sabot, folder, path, "session", 1, 1, "pipelined")
    check(late_count(summary) == 0, f"{label}: late rows {late_count(summary)}")
    got = {}
    for part in read_parts(os.path.join(folder, "out")):
        check(part.schema.field("window_start").type == pa.timestamp("us"),
              f"{label}: window_start type {part.schema.field('window_start').type}")
        starts = pc.cast(part["window_start"], pa.int64()).to_pylist()
        ends = pc.cast(part["window_end"], pa.int64()).to_pylist()
        columns = [part[c].to_pylist() for c in
                   ("user_id", "sum_amount", "count", "min_amount", "max_amount", "mean_amount")]
        for i in range(part.num_rows):
            got[(columns[0][i], starts[i], ends[i])] = tuple(c[i] for c in columns[1:])
    compare(got, want, label)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("sabot")
    args = parser.parse_args()

    folder = tempfile.mkdtemp(prefix="sabot_windows_reference_")
    try:
        base = make_rows(11)
        ordered = base
        shuffled = shuffled_within_bound(base, 12)
        late_file, late_rows = with_late_rows(shuffled, 13)
        inputs = {}
        for name, rows in (("ordered", ordered), ("shuffled", shuffled), ("late", late_file)):
            path = os.path.join(folder, name + ".parquet")
            # Small row groups: ten source tasks all get some.
            pq.write_table(to_table(rows), path, row_group_size=500)
            inputs[name] = path
        every_row = to_table(base)  # the same rows in every version but "late"
        with_late = to_table(late_file)
        late_keys = sorted((row_key(r) for r in late_rows), key=str)

        runs = 0
        for kind in WINDOWS:
            want = reference(every_row, kind)
            check(len(want) > 100, f"{kind}: the reference has only {len(want)} windows")
            # In order and shuffled within the bound: nothing is late at any parallelism.
            for name, sources, tasks, mode in (("ordered", 1, 1, "pipelined"),
                                               ("shuffled", 10, 5, "blocking"),
                                               ("shuffled", 3, 7, "pipelined")):
                label = f"{kind} {name} {sources}->{tasks} {mode}"
                summary = run_job(args.sabot, folder, inputs[name], kind, sources, tasks, mode)
                runs += 1
                got, emitted = sabot_windows(os.path.join(folder, "out"), label)
                compare(got, want, label)
                check(emitted == len(want), f"{label}: {emitted} rows emitted for {len(want)} "
                                            "windows (each fires once)")
                check(late_count(summary) == 0, f"{label}: late rows {late_count(summary)}")
                late_out = read_parts(os.path.join(folder, "late"))
                check(sum(t.num_rows for t in late_out) == 0, f"{label}: late output not empty")
            # Rows later than the bound.
            for sources, tasks in ((1, 1), (1, 5), (10, 5), (3, 7)):
                for mode in ("pipelined", "blocking"):
                    label = f"{kind} late {sources}->{tasks} {mode}"
                    summary = run_job(args.sabot, folder, inputs["late"], kind, sources, tasks,
                                      mode)
                    runs += 1
                    late_out = pa.concat_tables(read_parts(os.path.join(folder, "late")))
                    check(late_out.schema.names == ["user_id", "amount", "event_time"],
                          f"{label}: late output columns {late_out.schema.names}")
                    sent = sorted(zip(late_out["user_id"].to_pylist(),
                                      late_out["amount"].to_pylist(),
                                      pc.cast(late_out["event_time"], pa.int64()).to_pylist()),
                                  key=str)
                    counted = late_count(summary)
                    check(counted == len(sent),
                          f"{label}: summary counts {counted} late rows, late output has "
                          f"{len(sent)}")
                    if sources == 1:
                        check(sent == late_keys, f"{label}: late output {len(sent)} rows, "
                                                 f"placed late {len(late_keys)}")
                    else:
                        remaining = list(late_keys)
                        for r in sent:
                            if r in remaining:
                                remaining.remove(r)
                            else:
                                check(False, f"{label}: {r} in the late output was not late")
                    # The windows are DuckDB's over every row the late output does not hold.
                    kept = list(late_file)
                    for r in sent:
                        kept.remove(next(x for x in kept if row_key(x) == r))
                    got, _ = sabot_windows(os.path.join(folder, "out"), label)
                    compare(got, reference(to_table(kept), kind), label)
            # Allowed lateness longer than any row's lateness: nothing late, late rows re-emit
            # their window's updated row, and the last row per key and window is DuckDB's over
            # every row.
            label = f"{kind} late 1->5 allowed lateness"
            summary = run_job(args.sabot, folder, inputs["late"], kind, 1, 5, "pipelined",
                              lateness="15m")
            runs += 1
            check(late_count(summary) == 0, f"{label}: late rows {late_count(summary)}")
            got, emitted = sabot_windows(os.path.join(folder, "out"), label,
                                         sessions=kind == "session")
            full = reference(with_late, kind)
            compare(got, full, label)
            check(emitted > len(full), f"{label}: no updated row was emitted again")
            # Under a 1 KiB state budget: window state spills, results unchanged.
            spill = os.path.join(folder, "spill")
            for name, sources, tasks, mode, lateness, expected in (
                    ("shuffled", 3, 7, "pipelined", None, want),
                    ("late", 1, 5, "blocking", "15m", full)):
                label = f"{kind} {name} {sources}->{tasks} {mode} spilling"
                if lateness:
                    label += " allowed lateness"
                shutil.rmtree(spill, ignore_errors=True)
                summary = run_job(args.sabot, folder, inputs[name], kind, sources, tasks, mode,
                                  lateness=lateness, spill=spill)
                runs += 1
                got, _ = sabot_windows(os.path.join(folder, "out"), label,
                                       sessions=lateness is not None and kind == "session")
                compare(got, expected, label)
                check(late_count(summary) == 0, f"{label}: late rows {late_count(summary)}")
                check("  agg: state spilled " in summary,
                      f"{label}: the summary reports no state spilled:\n{summary}")
                check(not os.path.isdir(spill) or not os.listdir(spill),
                      f"{label}: spill files left: {os.listdir(spill)}")
        check_microsecond_sessions(args.sabot, folder)
        runs += 1
        print(f"{runs} runs")
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    if failures:
        print(f"{len(failures)} failure(s)")
        sys.exit(1)
    print("OK")


if __name__ == "__main__":
    main()
