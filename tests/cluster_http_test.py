#!/usr/bin/env python3
"""The HTTP API and the live view of a real cluster (docs/http-api.md, docs/cluster.md).

Starts `sabot coordinator --http-port 0` with a token and two `sabot agent --coordinator`, then:
- submits through `POST /api/v1/jobs` a rate-limited job (a 2x3 HASH edge from the transactions
  generator into count(*) by user_id) and, while it runs, loads the live page in headless
  Chromium: the page must show the job running with a 2x3 heat map whose cells never exceed the
  final figures, and the edge's total bytes while it runs are at least its channels';
- after the job ended, loads the page again: every cell must equal the rows writer task i sent
  to partition j, computed here without the HTTP path: `sabot run` writes the generator's rows of
  each source task to its own Parquet file (part-i), the cluster's sink writes the user ids of
  partition j (part-j); cell (i, j) is the rows of part-i whose user id is in part-j, and the
  counts in part-j must add up to partition j's total. `GET /metrics` must have the same rows per
  channel, and `GET /api/v1/jobs/{id}` too;
- `DELETE /api/v1/jobs/{id}` cancels an unbounded job: state cancelled, no output file;
- a wrong token gets 401.

Usage: cluster_http_test.py SABOT [--chromium PATH]
Every process it starts runs in its own process group and is killed when the test ends.
"""

import argparse
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from http_live_view_test import DomReader, Failures, dump_dom, stop  # noqa: E402

import pyarrow.compute as pc  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

TOKEN = "cluster-http-token"
WRITERS, PARTITIONS = 2, 3
ROWS = 150000
RATE = 10000  # rows per second over both source tasks: ~15 s

GENERATOR = """    generator_source:
      table: transactions
      rows: %d
      batch_rows: 1000
      key_cardinality: 500
      rows_per_second: %d
    parallelism: %d
"""


def job_yaml(name, out, rows, rate):
    return ("job: %s\noperators:\n  - name: source\n" % name + GENERATOR % (rows, rate, WRITERS) +
            "  - key_by: [user_id]\n"
            "  - name: counts\n    aggregate: [count(*)]\n    parallelism: %d\n"
            "  - name: write\n    parquet_sink: %s\n" % (PARTITIONS, out))


def reference_yaml(out):
    # The same generator (same rows, seed, batch size and parallelism: the same rows per task),
    # unthrottled, each task's rows into its own part file.
    return ("job: reference\noperators:\n  - name: source\n" + GENERATOR % (ROWS, 0, WRITERS) +
            "  - name: write\n    parquet_sink: %s\n" % out)


class Cluster:
    def __init__(self, sabot, workdir):
        self.sabot = os.path.abspath(sabot)
        self.workdir = workdir
        self.procs = []

    def start(self, name, args):
        out = open(os.path.join(self.workdir, name + ".out"), "wb")
        err = open(os.path.join(self.workdir, name + ".err"), "wb")
        proc = subprocess.Popen([self.sabot] + args, stdout=out, stderr=err,
                                start_new_session=True, cwd=self.workdir)
        self.procs.append(proc)
        return proc

    def wait_line(self, name, pattern, proc, seconds=30):
        path = os.path.join(self.workdir, name + ".out")
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with open(path) as f:
                m = re.search(pattern, f.read(), re.M)
            if m:
                return m.group(1)
            if proc.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError("%s did not print %r: %s" % (name, pattern, self.tail(name)))

    def tail(self, name):
        with open(os.path.join(self.workdir, name + ".err")) as f:
            return f.read()[-2000:]

    def stop_all(self):
        for proc in self.procs:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
            stop(proc)


def request(base, method, path, token=TOKEN, body=None, content_type=None):
    req = urllib.request.Request(base + path, data=body, method=method)
    if token is not None:
        req.add_header("Authorization", "Bearer " + token)
    if content_type:
        req.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def get_job(base, job_id):
    status, body = request(base, "GET", "/api/v1/jobs/" + job_id)
    if status != 200:
        raise RuntimeError("GET job %s: %d %s" % (job_id, status, body))
    return json.loads(body)


def wait_state(base, job_id, states, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        job = get_job(base, job_id)
        if job["state"] in states:
            return job
        time.sleep(0.2)
    raise RuntimeError("job %s did not reach %s within %d s" % (job_id, states, seconds))


def submit(base, yaml_text):
    status, body = request(base, "POST", "/api/v1/jobs", body=yaml_text.encode(),
                           content_type="application/yaml")
    if status != 201:
        raise RuntimeError("POST /api/v1/jobs: %d %s" % (status, body))
    return json.loads(body)["id"]


def expected_cells(reference_dir, output_dir):
    """rows[i][j]: rows of source task i whose user id went to partition j, and the totals."""
    users_of = []
    totals = []
    for j in range(PARTITIONS):
        t = pq.read_table(os.path.join(output_dir, "part-%d.parquet" % j))
        users_of.append(t.column("user_id"))
        count_col = [c for c in t.column_names if c.startswith("count")][0]
        totals.append(pc.sum(t.column(count_col)).as_py() or 0)
    rows = []
    for i in range(WRITERS):
        src = pq.read_table(os.path.join(reference_dir, "part-%d.parquet" % i)).column("user_id")
        rows.append([pc.sum(pc.is_in(src, value_set=users_of[j])).as_py() for j in range(PARTITIONS)])
    return rows, totals


def read_page(chromium, base, job_id, workdir):
    reader = DomReader()
    reader.feed(dump_dom(chromium, base + "/#token=%s&job=%s" % (TOKEN, job_id), workdir))
    return reader


def cells_of(reader, edge):
    return {(int(c["data-writer"]), int(c["data-partition"])): int(c["data-rows"])
            for c in reader.cells if c.get("data-edge") == edge}


def metrics_cells(text, job_id, edge):
    cells = {}
    pattern = re.compile(r'^sabot_edge_rows_total\{(.*)\} (\S+)$')
    for line in text.splitlines():
        m = pattern.match(line)
        if not m:
            continue
        labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(1)))
        if labels.get("job") == job_id and labels.get("edge") == edge:
            cells[(int(labels["writer"]), int(labels["partition"]))] = int(float(m.group(2)))
    return cells


def run(args, workdir, cluster, failures):
    token_file = os.path.join(workdir, "token")
    with open(token_file, "w") as f:
        f.write(TOKEN + "\n")
    coordinator = cluster.start("coordinator", [
        "coordinator", "--port", "0", "--http-port", "0", "--token-file", token_file,
        "--agent-timeout", "5s"])
    uri = cluster.wait_line("coordinator", r"^sabot coordinator listening on (\S+)$", coordinator)
    base = cluster.wait_line("coordinator", r"^sabot coordinator HTTP API and live view on (\S+)/$",
                             coordinator)
    for k in (1, 2):
        cluster.start("agent%d" % k, ["agent", "--agent-id", "httptest-%d-%d" % (os.getpid(), k),
                                      "--port", "0", "--coordinator", uri, "--slots", "3",
                                      "--token-file", token_file])
    deadline = time.monotonic() + 30
    while True:
        status, body = request(base, "GET", "/api/v1/agents")
        up = [a for a in json.loads(body)["agents"] if a["state"] == "up"] if status == 200 else []
        if len(up) == 2:
            break
        if time.monotonic() > deadline:
            raise RuntimeError("2 agents did not register within 30 s: %s" % cluster.tail("agent1"))
        time.sleep(0.2)

    status, _ = request(base, "GET", "/api/v1/jobs", token="not-the-token")
    failures.check(status == 401, "a wrong token got %d, expected 401" % status)
    status, _ = request(base, "GET", "/metrics", token=None)
    failures.check(status == 401, "/metrics without a token got %d, expected 401" % status)

    # The reference: each source task's rows, written by a local run.
    reference_dir = os.path.join(workdir, "reference")
    ref_file = os.path.join(workdir, "reference.yaml")
    with open(ref_file, "w") as f:
        f.write(reference_yaml(reference_dir))
    subprocess.run([args.sabot, "run", ref_file, "--quiet"], check=True, timeout=300,
                   stdout=subprocess.DEVNULL)

    # --- a running job, watched --------------------------------------------------------------
    output_dir = os.path.join(workdir, "counts")
    job_id = submit(base, job_yaml("watched", output_dir, ROWS, RATE))
    job = wait_state(base, job_id, ("running", "finished", "failed"), 60)
    edges = [e for e in job["graph"]["edges"] if e["shuffle_id"]]
    failures.check(len(edges) == 1 and edges[0]["type"] == "hash" and
                   edges[0]["num_writers"] == WRITERS and edges[0]["num_partitions"] == PARTITIONS,
                   "the job's shuffle edges are %r, expected one %dx%d hash edge"
                   % (edges, WRITERS, PARTITIONS))
    edge = edges[0]["shuffle_id"]
    live = read_page(args.chromium, base, job_id, workdir)
    print("live page: job %s state %s, %d polls" % (job_id, live.body.get("data-job-state"),
                                                     int(live.body.get("data-polls", "0"))))
    live_cells = cells_of(live, edge)
    failures.check(live.body.get("data-job") == job_id, "the live page shows job %r, expected %s"
                   % (live.body.get("data-job"), job_id))
    failures.check(live.body.get("data-job-state") == "running",
                   "the live page shows state %r while the job runs (the job must run for longer "
                   "than the page loads)" % live.body.get("data-job-state"))
    failures.check(set(live_cells) == {(i, j) for i in range(WRITERS) for j in range(PARTITIONS)},
                   "the live heat map has cells %s, expected %dx%d" % (sorted(live_cells), WRITERS,
                                                                     PARTITIONS))
    failures.check(0 < sum(live_cells.values()) < ROWS,
                   "the live heat map sums to %d rows, expected between 0 and %d (exclusive)"
                   % (sum(live_cells.values()), ROWS))

    # The edge's totals while it runs: never below its live channels (the shuffle's own bytes
    # count only finished writers).
    mid = get_job(base, job_id)
    mid_edge = [e for e in mid["edges"] if e["shuffle_id"] == edge][0]
    channel_bytes = sum(map(sum, mid_edge["bytes"]))
    if mid["state"] == "running":
        failures.check(channel_bytes > 0 and mid_edge["total_bytes"] >= channel_bytes,
                       "while running, total_bytes %d and channel bytes %d"
                       % (mid_edge["total_bytes"], channel_bytes))
        failures.check(mid_edge["total_rows"] == sum(map(sum, mid_edge["rows"])),
                       "while running, total_rows %d is not the sum of the channels"
                       % mid_edge["total_rows"])

    final = wait_state(base, job_id, ("finished", "failed", "cancelled"), 120)
    failures.check(final["state"] == "finished", "the job ended %s: %s" % (final["state"],
                                                                        final.get("error")))
    want, totals = expected_cells(reference_dir, output_dir)
    print("expected cells %s, partition totals %s" % (want, totals))
    failures.check(sum(map(sum, want)) == ROWS, "the reference cells sum to %d, expected %d"
                   % (sum(map(sum, want)), ROWS))
    for j in range(PARTITIONS):
        failures.check(sum(want[i][j] for i in range(WRITERS)) == totals[j],
                       "partition %d: the counts in its part file add up to %d, the channels to %d"
                       % (j, totals[j], sum(want[i][j] for i in range(WRITERS))))
    for (i, j), rows in live_cells.items():
        failures.check(rows <= want[i][j], "live cell w%d->p%d shows %d rows, more than the final %d"
                       % (i, j, rows, want[i][j]))

    want_cells = {(i, j): want[i][j] for i in range(WRITERS) for j in range(PARTITIONS)}
    api_edge = [e for e in final["edges"] if e["shuffle_id"] == edge][0]
    api_cells = {(i, j): api_edge["rows"][i][j] for i in range(WRITERS) for j in range(PARTITIONS)}
    failures.check(api_cells == want_cells, "GET /api/v1/jobs/%s has cells %s, expected %s"
                   % (job_id, api_cells, want_cells))

    done = read_page(args.chromium, base, job_id, workdir)
    failures.check(done.body.get("data-job-state") == "finished",
                   "the page after the end shows state %r" % done.body.get("data-job-state"))
    failures.check(done.connection.get("data-state") == "ok",
                   "connection state %r" % done.connection.get("data-state"))
    done_cells = cells_of(done, edge)
    failures.check(done_cells == want_cells, "the page after the end shows cells %s, expected %s"
                   % (done_cells, want_cells))
    page_totals = {int(t["data-partition"]): int(t["data-rows"]) for t in done.totals
                   if t.get("data-edge") == edge}
    failures.check(page_totals == dict(enumerate(totals)),
                   "the page's partition totals %s, expected %s" % (page_totals, totals))

    status, text = request(base, "GET", "/metrics")
    failures.check(status == 200, "GET /metrics: %d" % status)
    got = metrics_cells(text, job_id, edge)
    failures.check(got == want_cells, "/metrics has sabot_edge_rows_total %s, expected %s"
                   % (got, want_cells))

    # --- cancellation --------------------------------------------------------------------------
    cancel_dir = os.path.join(workdir, "cancelled")
    cancel_id = submit(base, job_yaml("endless", cancel_dir, 0, 2000))
    wait_state(base, cancel_id, ("running",), 60)
    time.sleep(1)
    status, body = request(base, "DELETE", "/api/v1/jobs/" + cancel_id)
    failures.check(status == 202, "DELETE job: %d %s" % (status, body))
    ended = wait_state(base, cancel_id, ("finished", "failed", "cancelled"), 60)
    failures.check(ended["state"] == "cancelled", "the cancelled job ended %s" % ended["state"])
    left = glob.glob(os.path.join(cancel_dir, "*"))
    failures.check(not left, "the cancelled job left files: %s" % left)
    status, _ = request(base, "DELETE", "/api/v1/jobs/" + cancel_id, token="not-the-token")
    failures.check(status == 401, "DELETE with a wrong token got %d, expected 401" % status)

    # Every process stops on SIGTERM with no sanitizer report.
    cluster.stop_all()
    for name in ("coordinator", "agent1", "agent2"):
        failures.check("Sanitizer" not in cluster.tail(name), "%s: %s" % (name, cluster.tail(name)))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("sabot")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "chromium")
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix="sabot-cluster-http-")
    failures = Failures()
    cluster = Cluster(args.sabot, workdir)
    try:
        run(args, workdir, cluster, failures)
    except Exception as e:  # a step that could not run is a failure, with its message
        failures.check(False, "%s: %s" % (type(e).__name__, e))
    finally:
        cluster.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)
    for message in failures.messages:
        print("FAIL: " + message)
    if failures.messages:
        print("0 passed, 1 failed")
        return 1
    print("1 passed, 0 failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
