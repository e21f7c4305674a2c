"""map() with a Python function: results, its exceptions, and Ctrl-C."""

import subprocess
import sys
import textwrap
import traceback

import pyarrow as pa
import pyarrow.compute as pc
import pytest

import sabot


def numbers(n=50_000):
    return pa.table({"k": pa.array([i % 13 for i in range(n)], pa.int64()),
                     "v": pa.array(range(n), pa.int64())})


def test_python_map_runs_on_every_batch(app):
    calls = []

    def square(batch):
        calls.append(batch.num_rows)
        return batch.append_column("sq", pc.multiply(batch["v"], batch["v"]))

    t = numbers()
    got = app.stream(t, parallelism=2, batch_rows=4096).map(square, parallelism=3).collect()
    assert got.num_rows == t.num_rows
    rows = sorted(zip(got["v"].to_pylist(), got["sq"].to_pylist()))
    assert rows == [(v, v * v) for v in range(t.num_rows)]
    # Once on an empty batch (its output schema), then once per batch of rows.
    assert calls.count(0) == 1 and sum(calls) == t.num_rows


def test_python_map_with_declared_schema_and_a_filter_after(app):
    schema = pa.schema([("k", pa.int64()), ("half", pa.float64())])

    def halve(batch):
        return pa.record_batch([batch["k"], pc.divide(pc.cast(batch["v"], pa.float64()), 2.0)],
                               schema=schema)

    got = (app.stream(numbers(1000)).map(halve, schema=schema)
           .filter(pc.field("half") >= 100).collect())
    assert got.schema == schema
    assert sorted(got["half"].to_pylist()) == [v / 2 for v in range(200, 1000)]


def test_a_python_exception_fails_the_job_with_its_traceback(app, tmp_path):
    def explode_on_big_values(batch):
        if batch.num_rows and pc.max(batch["v"]).as_py() > 30_000:
            raise ValueError("value too big for this map")
        return batch

    out = tmp_path / "out"
    with pytest.raises(sabot.SabotExecutionError) as e:
        (app.stream(numbers(), parallelism=2, batch_rows=1000)
         .map(explode_on_big_values, parallelism=2).sink(str(out)))
    message = str(e.value)
    assert "value too big for this map" in message
    assert "operator 'function_map'" in message
    assert "explode_on_big_values" in message  # the traceback travels in the message too
    cause = e.value.__cause__
    assert isinstance(cause, ValueError)
    assert "explode_on_big_values" in "".join(traceback.format_exception(cause))
    # Cleanly: the sink committed nothing.
    assert not out.exists() or not [p for p in out.iterdir() if p.suffix == ".parquet"]


def test_a_wrong_return_value_is_a_clear_error(app):
    with pytest.raises(sabot.SabotExecutionError, match="expected a pyarrow.RecordBatch"):
        app.stream(numbers(10)).map(lambda b: 42).collect()
    with pytest.raises(sabot.SabotTypeError, match="same schema"):
        app.stream(numbers(10), batch_rows=3).map(
            lambda b: b if b.num_rows == 0 else b.drop_columns(["k"])).collect()


def test_ctrl_c_cancels_a_running_job(tmp_path):
    script = tmp_path / "job.py"
    script.write_text(textwrap.dedent("""
        import os, signal, sys, threading, time
        import pyarrow.compute as pc
        import sabot
        app = sabot.Sabot(mode="local", threads=2)
        # Unbounded: only a cancel ends it.
        stream = (app.stream(sabot.transactions(rows=0, rows_per_second=20000))
                  .map(lambda b: b).filter(pc.field("amount") > 1e300))
        threading.Timer(1.5, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
        start = time.monotonic()
        try:
            stream.collect()
        except KeyboardInterrupt:
            print(f"interrupted after {time.monotonic() - start:.1f}s", flush=True)
            sys.exit(0)
        sys.exit(3)
    """))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "interrupted after" in done.stdout
