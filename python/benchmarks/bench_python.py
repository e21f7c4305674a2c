"""Figures of the Python package (docs/performance.md, "Python"):

1. The seed pipeline (examples/seed-pipeline.yaml: generated transactions -> map amount_usd ->
   key_by user_id -> 5-minute tumbling window -> sum, sum, count at parallelism 5 -> Parquet)
   built in Python with a pyarrow.compute expression map, against the same job from the job file
   run by `sabot run`. Both times are the job's wall time as the core measures it (binding
   included, process start excluded); the Python figure adds the planning done in Python
   (Substrait translation, plan building) and is timed around `Stream.sink`.
2. The per-batch overhead of a Python map: a table of small batches through map(identity)
   against the same job without the map, divided by the number of batches.

    python python/benchmarks/bench_python.py --sabot build/release/src/sabot/tools/sabot
"""

import argparse
import datetime
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time

import pyarrow as pa
import pyarrow.compute as pc

import sabot
from sabot import Sabot, count, sum, tumbling

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def job_file_seconds(binary, job, work):
    out = subprocess.run([binary, "run", job], capture_output=True, text=True, check=True,
                         cwd=work).stdout
    return float(re.search(r"finished in ([0-9.]+) s", out).group(1))


def python_seconds(app, rows, out_dir):
    shutil.rmtree(out_dir, ignore_errors=True)
    start = time.perf_counter()
    (app.stream(sabot.transactions(rows=rows, batch_rows=16384, key_cardinality=1000),
                parallelism=4, event_time="event_time",
                max_out_of_orderness=datetime.timedelta(seconds=2), name="transactions")
     .map(amount_usd=pc.field("amount") * 1.1, name="to_usd")
     .key_by("user_id")
     .window(tumbling(minutes=5), name="window")
     .aggregate(sum("amount"), sum("amount_usd"), count(), parallelism=5, name="sum")
     .sink(out_dir))
    return time.perf_counter() - start


def map_overhead(app, batches, batch_rows, runs):
    t = pa.table({"v": pa.array(range(batches * batch_rows), pa.int64())})

    def timed(stream):
        start = time.perf_counter()
        stream.collect()
        return time.perf_counter() - start

    plain = [timed(app.stream(t, batch_rows=batch_rows).filter(pc.field("v") >= 0))
             for _ in range(runs)]
    mapped = [timed(app.stream(t, batch_rows=batch_rows).map(lambda b: b)
                    .filter(pc.field("v") >= 0)) for _ in range(runs)]
    return statistics.median(plain), statistics.median(mapped)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sabot",
                        default=os.path.join(ROOT, "build/release/src/sabot/tools/sabot"))
    parser.add_argument("--rows", type=int, default=9_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="sabot-bench-python-")
    try:
        # The example job with --rows rows.
        job = os.path.join(work, "seed-pipeline.yaml")
        with open(os.path.join(ROOT, "examples", "seed-pipeline.yaml")) as f:
            text = f.read()
        assert "rows: 900000" in text
        with open(job, "w") as f:
            f.write(text.replace("rows: 900000", f"rows: {args.rows}"))
        app = Sabot(mode="local", threads=args.threads)
        file_times, py_times = [], []
        for _ in range(args.runs):  # interleaved, so both see the same machine
            file_times.append(job_file_seconds(args.sabot, job, work))
            py_times.append(python_seconds(app, args.rows, os.path.join(work, "out-py")))
        f, p = statistics.median(file_times), statistics.median(py_times)
        print(f"seed pipeline, {args.rows:,} rows, median of {args.runs}: job file {f:.3f} s, "
              f"Python (expression map) {p:.3f} s, ratio {p / f:.3f}")

        batches, batch_rows = 2000, 256
        plain, mapped = map_overhead(app, batches, batch_rows, args.runs)
        print(f"Python map, {batches} batches of {batch_rows} rows, median of {args.runs}: "
              f"without {plain * 1e3:.1f} ms, with map(lambda b: b) {mapped * 1e3:.1f} ms, "
              f"overhead {(mapped - plain) / batches * 1e6:.1f} us per batch")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
