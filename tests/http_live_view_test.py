#!/usr/bin/env python3
"""The live view in a real browser (docs/http-api.md, "The live view").

Starts http_api_test_server (a fake cluster whose job "live-1" advances one generation of
figures on every read of GET /api/v1/jobs/live-1), loads the page in headless Chromium with the
bearer token in the URL fragment, lets it poll for a few seconds of virtual time, dumps the DOM
and checks every heat-map cell, writer and partition total of both shuffle edges against the
figures of the generation the server served last, computed here from the formula documented at
MakeLiveSampleJob (src/sabot/runtime/http_api_testing.h). A page that stopped polling, shows an
older generation, swaps writers and partitions or drops a cell fails. A second load without the
token must show no figures and say that a token is needed.

Usage: http_live_view_test.py HTTP_API_TEST_SERVER [--chromium PATH]
Every process it starts runs in its own process group and is killed when the test ends.
"""

import argparse
import html.parser
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time

TOKEN = "live-view-token"
VIRTUAL_TIME_MS = 6000   # ~12 polls at 500 ms
BROWSER_TIMEOUT_S = 120
MIN_POLLS = 6


def expected_figures(g):
    """The live sample job's edges at generation g: {edge: (rows, bytes, blocked_seconds)}."""
    s0_rows = []
    for i in range(3):
        line = []
        for j in range(4):
            rows = 1000 * (i + 1) + 100 * j + g * (10 * (i + 1) + j + 1) + (500 * g if j == 3 else 0)
            if i == 1 and j == 2:
                rows = 777  # the stalled channel
            line.append(rows)
        s0_rows.append(line)
    s1_rows = [[50 * g * (i + 1) + 7 * j for j in range(2)] for i in range(4)]
    return {
        "s0.source.sums": (s0_rows, [[24 * r for r in line] for line in s0_rows],
                           [0.1 * g * (i + 1) for i in range(3)]),
        "s1.sums.narrow": (s1_rows, [[16 * r for r in line] for line in s1_rows],
                           [0.0] * 4),
    }


class DomReader(html.parser.HTMLParser):
    """Collects the attributes of the elements the checks read."""

    def __init__(self):
        super().__init__()
        self.body = {}
        self.connection = {}
        self.cells = []        # td.cell attributes
        self.blocked = []      # td.blocked attributes
        self.totals = []       # td.partition-total attributes

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        classes = (a.get("class") or "").split()
        if tag == "body":
            self.body = a
        elif a.get("id") == "connection":
            self.connection = a
        elif tag == "td" and "cell" in classes:
            self.cells.append(a)
        elif tag == "td" and "blocked" in classes:
            self.blocked.append(a)
        elif tag == "td" and "partition-total" in classes:
            self.totals.append(a)


class Failures:
    def __init__(self):
        self.messages = []

    def check(self, condition, message):
        if not condition:
            self.messages.append(message)


def start_server(server, workdir, token):
    generation_file = os.path.join(workdir, "generation")
    args = [server, "--generation-file", generation_file]
    if token:
        args += ["--token", token]
    proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            start_new_session=True)
    ready, _, _ = select.select([proc.stdout], [], [], 30)
    if not ready:
        raise RuntimeError("http_api_test_server did not print its port within 30 s")
    line = proc.stdout.readline().decode().strip()
    if not line.startswith("port "):
        raise RuntimeError("http_api_test_server printed %r instead of its port" % line)
    return proc, int(line.split()[1]), generation_file


def stop(proc):
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()


def dump_dom(chromium, url, workdir):
    profile = tempfile.mkdtemp(prefix="profile-", dir=workdir)
    args = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--user-data-dir=" + profile,
            "--virtual-time-budget=%d" % VIRTUAL_TIME_MS, "--dump-dom", url]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=BROWSER_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        stop(proc)
        raise RuntimeError("chromium did not finish within %d s" % BROWSER_TIMEOUT_S)
    finally:
        # Chromium leaves helper processes in its group; none may outlive the test.
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    if proc.returncode != 0:
        raise RuntimeError("chromium exited %d: %s" % (proc.returncode, err.decode()[-2000:]))
    return out.decode()


def check_live_page(dom, g, failures):
    reader = DomReader()
    reader.feed(dom)
    polls = int(reader.body.get("data-polls", "0"))
    failures.check(polls >= MIN_POLLS, "the page completed %d polls, expected >= %d" % (polls, MIN_POLLS))
    failures.check(g >= MIN_POLLS, "the server served %d generations, expected >= %d" % (g, MIN_POLLS))
    failures.check(reader.body.get("data-job") == "live-1",
                   "the page shows job %r, expected live-1" % reader.body.get("data-job"))
    failures.check(reader.body.get("data-job-state") == "running", "job state is not running")
    failures.check(reader.connection.get("data-state") == "ok",
                   "connection state %r" % reader.connection.get("data-state"))

    expected = expected_figures(g)
    seen = set()
    for cell in reader.cells:
        edge, i, j = cell.get("data-edge"), int(cell["data-writer"]), int(cell["data-partition"])
        seen.add((edge, i, j))
        if edge not in expected:
            failures.check(False, "a cell of unknown edge %r" % edge)
            continue
        rows, bytes_, _ = expected[edge]
        want_rows, want_bytes = rows[i][j], bytes_[i][j]
        failures.check(cell.get("data-rows") == str(want_rows),
                       "%s w%d->p%d shows %s rows, the server's last figures (generation %d) say %d"
                       % (edge, i, j, cell.get("data-rows"), g, want_rows))
        failures.check(cell.get("data-bytes") == str(want_bytes),
                       "%s w%d->p%d shows %s bytes, expected %d"
                       % (edge, i, j, cell.get("data-bytes"), want_bytes))
        failures.check(cell.get("data-value") == str(want_rows),
                       "%s w%d->p%d displays %s, expected its rows %d"
                       % (edge, i, j, cell.get("data-value"), want_rows))
        stalled = edge == "s0.source.sums" and (i, j) == (1, 2)
        failures.check(cell.get("data-stalled") == ("true" if stalled else "false"),
                       "%s w%d->p%d stalled=%s, expected %s"
                       % (edge, i, j, cell.get("data-stalled"), stalled))
    want_cells = {(e, i, j) for e, (rows, _, _) in expected.items()
                  for i in range(len(rows)) for j in range(len(rows[0]))}
    failures.check(seen == want_cells, "cells shown %s, expected %s"
                   % (sorted(seen), sorted(want_cells)))

    blocked_seen = set()
    for td in reader.blocked:
        edge, i = td.get("data-edge"), int(td["data-writer"])
        blocked_seen.add((edge, i))
        want = expected[edge][2][i]
        got = float(td.get("data-blocked-seconds") or "nan")
        failures.check(abs(got - want) < 1e-9, "%s writer %d blocked %r s, expected %r"
                       % (edge, i, got, want))
    failures.check(len(blocked_seen) == 7, "blocked cells for %s" % sorted(blocked_seen))

    for td in reader.totals:
        edge, j = td.get("data-edge"), int(td["data-partition"])
        rows = expected[edge][0]
        want = sum(line[j] for line in rows)
        failures.check(td.get("data-rows") == str(want), "%s partition %d total %s, expected %d"
                       % (edge, j, td.get("data-rows"), want))
        hot = edge == "s0.source.sums" and j == 3
        failures.check(("hot" in td.get("class", "").split()) == hot,
                       "%s partition %d hot marking is wrong" % (edge, j))
    failures.check(len(reader.totals) == 6, "%d partition totals" % len(reader.totals))


def check_page_without_token(dom, failures):
    reader = DomReader()
    reader.feed(dom)
    failures.check(reader.connection.get("data-state") == "unauthorized",
                   "without the token the connection state is %r, expected unauthorized"
                   % reader.connection.get("data-state"))
    failures.check(not reader.cells, "without the token the page shows %d cells" % len(reader.cells))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("server")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "chromium")
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix="sabot-live-view-")
    failures = Failures()
    server = None
    try:
        server, port, generation_file = start_server(args.server, workdir, TOKEN)
        base = "http://127.0.0.1:%d/" % port
        started = time.monotonic()
        dom = dump_dom(args.chromium, base + "#token=%s&job=live-1" % TOKEN, workdir)
        with open(generation_file) as f:
            g = int(f.read().strip())
        print("live page: %d generations served, DOM %d bytes, %.1f s"
              % (g, len(dom), time.monotonic() - started))
        check_live_page(dom, g, failures)

        with open(generation_file) as f:
            before = f.read()
        dom = dump_dom(args.chromium, base, workdir)
        check_page_without_token(dom, failures)
        with open(generation_file) as f:
            failures.check(f.read() == before, "the page read the job without the token")
    finally:
        if server is not None:
            try:
                server.stdin.close()
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                failures.check(False, "http_api_test_server did not stop within 30 s")
            stop(server)
            # A sanitizer report or a crash in the server ends it with a non-zero status.
            failures.check(server.returncode == 0,
                           "http_api_test_server exited with status %d" % server.returncode)
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
