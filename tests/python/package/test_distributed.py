"""Distributed mode of the package against a real cluster: a `sabot coordinator` and two agents
started as subprocesses (C++ agents from the `sabot` binary, or Python agents from
`python -m sabot agent`), each bounded in time and killed at the end of the module.

The `sabot` binary: $SABOT_BIN, else build/release/src/sabot/tools/sabot of this checkout."""

import datetime
import os
import pathlib
import queue
import subprocess
import sys
import textwrap
import threading
import time

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

import sabot
from sabot import Sabot, count, sum, tumbling

import dist_functions

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[2]
SABOT_BIN = os.environ.get("SABOT_BIN", str(ROOT / "build" / "release" / "src" / "sabot" /
                                            "tools" / "sabot"))

pytestmark = pytest.mark.skipif(not os.access(SABOT_BIN, os.X_OK),
                                reason=f"no sabot binary at {SABOT_BIN} (set SABOT_BIN)")


def _first_line(proc, prefix, timeout=30.0):
    """The first stdout line of `proc` starting with `prefix`; fails after `timeout`."""
    lines = queue.Queue()

    def pump():
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + timeout
    while True:
        try:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            raise AssertionError(f"{proc.args} printed no '{prefix}' line in {timeout}s")
        if line is None:
            raise AssertionError(f"{proc.args} exited ({proc.wait()}) before '{prefix}'")
        if line.startswith(prefix):
            return line[len(prefix):].strip()


class Cluster:
    """A coordinator and `agents` agents (python_agents: started from Python)."""

    def __init__(self, python_agents, agents=2, slots=6):
        self.procs = []
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            [str(HERE)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
        try:
            coord = self._start([SABOT_BIN, "coordinator", "--host", "127.0.0.1", "--port", "0"],
                                env)
            self.uri = _first_line(coord, "sabot coordinator listening on ")
            for i in range(agents):
                if python_agents:
                    cmd = [sys.executable, "-m", "sabot", "agent", "--coordinator", self.uri,
                           "--slots", str(slots), "--agent-id", f"py-agent-{i}"]
                else:
                    cmd = [SABOT_BIN, "agent", "--coordinator", self.uri, "--slots", str(slots),
                           "--host", "127.0.0.1", "--port", "0", "--agent-id", f"cpp-agent-{i}"]
                _first_line(self._start(cmd, env), "sabot agent listening on ")
            self.app = Sabot(mode="distributed", coordinator=self.uri)
            deadline = time.monotonic() + 30
            while len([a for a in self.app.agents() if not a["lost"]]) < agents:
                assert time.monotonic() < deadline, "the agents did not register in 30s"
                time.sleep(0.1)
        except BaseException:
            self.close()
            raise

    def _start(self, cmd, env):
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
        self.procs.append(p)
        return p

    def close(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
        for p in reversed(self.procs):
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


@pytest.fixture(scope="module")
def cpp_cluster():
    c = Cluster(python_agents=False)
    yield c
    c.close()


@pytest.fixture(scope="module")
def py_cluster():
    c = Cluster(python_agents=True)
    yield c
    c.close()


def _seed(app, source, fn=None):
    s = app.stream(source, parallelism=2, event_time="event_time",
                   max_out_of_orderness=datetime.timedelta(seconds=2))
    s = s.map(fn, parallelism=2) if fn is not None else s.map(
        amount_usd=pc.field("amount") * pa.scalar(1.1))
    return (s.filter(pc.field("amount") > 0)
            .key_by("user_id")
            .window(tumbling(minutes=5))
            .aggregate(sum("amount"), sum("amount_usd"), count(), parallelism=2))


def _rows(table):
    starts = pc.cast(table["window_start"], pa.int64()).to_pylist()
    return sorted(zip(table["user_id"].to_pylist(), starts, table["sum_amount"].to_pylist(),
                      table["sum_amount_usd"].to_pylist(), table["count"].to_pylist()))


def _assert_same(got, want):
    assert got.column_names == want.column_names
    g, w = _rows(got), _rows(want)
    assert len(g) == len(w) and len(w) > 0
    for a, b in zip(g, w):
        assert a[:2] == b[:2] and a[4] == b[4]
        assert a[2] == pytest.approx(b[2], rel=1e-9)
        assert a[3] == pytest.approx(b[3], rel=1e-9)


SOURCE = sabot.transactions(rows=200_000, batch_rows=8192, key_cardinality=300)


def test_seed_pipeline_distributed_equals_local(cpp_cluster, tmp_path):
    local = Sabot(mode="local", threads=2)
    want = _seed(local, SOURCE).collect()
    app = Sabot(mode="distributed", coordinator=cpp_cluster.uri, collect_directory=str(tmp_path))
    got = _seed(app, SOURCE).collect()
    _assert_same(got, want)
    # collect's temporary Parquet folder is gone.
    assert list(tmp_path.iterdir()) == []


def test_file_source_and_sink(cpp_cluster, tmp_path):
    local = Sabot(mode="local", threads=2)
    (tmp_path / "in").mkdir()
    local.stream(sabot.transactions(rows=50_000, key_cardinality=50), parallelism=2).sink(
        tmp_path / "in")
    want = local.stream(str(tmp_path / "in")).filter(pc.field("amount") > 50).collect()

    app = cpp_cluster.app
    got = app.stream(str(tmp_path / "in"), parallelism=2).filter(pc.field("amount") > 50)
    summary = got.sink(tmp_path / "out")
    assert isinstance(summary, str) and summary
    written = pa.concat_tables([pq.read_table(f) for f in
                                sorted((tmp_path / "out").rglob("*.parquet"))])
    key = lambda t: sorted(zip(t["user_id"].to_pylist(), t["amount"].to_pylist(),  # noqa: E731
                               pc.cast(t["event_time"], pa.int64()).to_pylist()))
    assert written.num_rows == want.num_rows > 0
    assert key(written) == key(want)
    # collect() of a file source too.
    assert key(got.collect()) == key(want)


def test_in_memory_sources_refused(cpp_cluster):
    app = cpp_cluster.app
    table = pa.table({"k": [1, 2, 3]})
    for source in (table, table.to_batches(), pa.RecordBatchReader.from_batches(
            table.schema, table.to_batches())):
        with pytest.raises(sabot.SabotInvalid, match="in-memory source.*files.*generator"):
            app.stream(source).collect()


def test_python_map_refused_by_cpp_agents(cpp_cluster):
    with pytest.raises(sabot.SabotError) as e:
        _seed(cpp_cluster.app, SOURCE, dist_functions.enrich).collect()
    text = str(e.value)
    assert "dist_functions:enrich" in text
    assert "python -m sabot agent" in text
    assert "job " in text and "operator" in text


def test_python_map_on_python_agents(py_cluster, tmp_path):
    local = Sabot(mode="local", threads=2)
    want = _seed(local, SOURCE, dist_functions.enrich).collect()
    app = Sabot(mode="distributed", coordinator=py_cluster.uri, collect_directory=str(tmp_path))
    got = _seed(app, SOURCE, dist_functions.enrich).collect()
    _assert_same(got, want)


def test_lambda_and_closure_refused(py_cluster):
    app = py_cluster.app

    def nested(batch):
        return batch

    for fn in (lambda b: b, nested):
        with pytest.raises(sabot.SabotInvalid, match="define it at module level"):
            app.stream(SOURCE).map(fn).collect()


def test_ctrl_c_cancels_the_job(cpp_cluster):
    """SIGINT while collect() waits on an unbounded job: KeyboardInterrupt, and the coordinator
    reports the job cancelled."""
    script = textwrap.dedent(f"""
        import os, signal, sys, threading
        import sabot
        app = sabot.Sabot(mode="distributed", coordinator={cpp_cluster.uri!r})
        stream = app.stream(sabot.transactions(rows=0, rows_per_second=20000), parallelism=2)
        threading.Timer(2.0, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
        try:
            stream.collect()
        except KeyboardInterrupt:
            print("interrupted", flush=True)
            sys.exit(0)
        sys.exit(3)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert "interrupted" in done.stdout
    newest = cpp_cluster.app.jobs()[0]
    assert newest["state"] == "cancelled", newest
