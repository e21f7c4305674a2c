"""A `sabot agent` survives thousands of malformed requests (issue 9, "Hostile or malformed requests").

Usage: python test_hostile_agent.py /path/to/sabot REGISTER_SHUFFLE_BODY [--max-hwm-mib N]

Starts `sabot agent` on a free loopback port with a 64 MiB budget, registers one shuffle (the
body is a checked-in `sabot.register_shuffle` control message: shuffle "s", HASH over 2
partitions, 1 writer, the generated table), then sends a few thousand malformed requests from
pyarrow's Flight client, drawn from a seeded random generator: control actions with hostile
sizes and garbage, tickets (huge, non-UTF-8, signs, leading zeros), descriptors (GetFlightInfo,
GetSchema, DoPut), and DoExchange frames (credits that overflowed, unknown kinds, junk). It checks
that

- every request fails as an Arrow/Flight error (never a crash, never gRPC UNKNOWN, which pyarrow
  raises as FlightServerError), with a short, printable ASCII message;
- the agent still answers `health` and serves the registered shuffle's schema afterwards;
- its peak resident memory (VmHWM from /proc) stayed under --max-hwm-mib (0: not checked, for
  sanitizer builds whose shadow memory dominates).

The loop is bounded in count (REQUESTS) and in time (DEADLINE_S); loopback only.
"""

import argparse
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time

import pyarrow as pa
import pyarrow.flight as flight

REQUESTS = 3000
DEADLINE_S = 240
ACTIONS = ["sabot.register_shuffle", "sabot.run_writers", "sabot.run_readers",
           "sabot.shuffle_stats", "sabot.progress", "sabot.cancel_shuffle", "sabot.release_job",
           "release_shuffle", "stats", "sabot.bogus", "\xff\xfe", "x" * 5000]
# A run request's fields, each valid for the registered shuffle; every request below breaks at
# least one of them, so none of them starts real work.
VALID_RUN = {"shuffle_id": "s", "batch_rows": "100", "key_cardinality": "1000", "skewed": "0",
             "hot_key_ppm": "0", "string_key": "0", "payload_columns": "3", "seed": "42",
             "num_writers": "1", "batches_per_writer": "1", "tasks": "0",
             "upstream": "0:0@grpc+tcp://127.0.0.1:1"}
HOSTILE_FIELDS = {
    "num_writers": ["33554432", "-1", "0", "2", "99999999999999999999", "1e9", ""],
    "batches_per_writer": ["1000000000000000", "-5", "9223372036854775807", "x"],
    "batch_rows": ["9223372036854775807", "-1", "16777217", "0x10"],
    "payload_columns": ["0", "100000", "-3", "4"],
    "hot_key_ppm": ["-1000000", "9223372036854775807"],
    "key_cardinality": ["0", "-9"],
    "tasks": ["2", "-1", "0,0", "99999999999", "1,2,3,4,5", "+0", "a"],
    "upstream": ["1:0@x", "0:0@a 0:0@b", "+0:0@x", "0:-1@x", "junk", "0:0", "9999999999:0@x"],
    "shuffle_id": ["", "../etc", "nope", "\x00", "s" * 200],
}


def printable(text):
    return all(0x20 <= ord(c) < 0x7f for c in text)


def field_lines(fields):
    return "".join(f"{k}={v}\n" for k, v in fields.items())


def hostile_run_body(rnd):
    fields = dict(VALID_RUN)
    for name in rnd.sample(sorted(HOSTILE_FIELDS), rnd.randint(1, 3)):
        fields[name] = rnd.choice(HOSTILE_FIELDS[name])
    body = field_lines(fields)
    kind = rnd.random()
    if kind < 0.1:
        body = body.replace("\n", "", 1)  # a line without '=' or a glued line
    elif kind < 0.15:
        body = body + body  # repeated fields
    return body.encode("utf-8", "surrogateescape")


def random_bytes(rnd, most):
    return bytes(rnd.getrandbits(8) for _ in range(rnd.randint(0, most)))


def hostile_ticket(rnd):
    choices = [
        lambda: b"/shuffle/s/partition/-0",
        lambda: b"/shuffle/s/partition/03",
        lambda: b"/shuffle/s/partition/2",
        lambda: b"/shuffle/s/partition/2147483648",
        lambda: b"/shuffle/\xff\xfe/partition/0",
        lambda: b"/shuffle/s/partition/" + b"9" * rnd.choice([600, 1 << 20]),
        lambda: b"/shuffle/s/partition/0/writer/0/attempt/" + random_bytes(rnd, 8),
        lambda: random_bytes(rnd, 64),
        lambda: b"/" * rnd.randint(0, 2000),
    ]
    return rnd.choice(choices)()


def hostile_path(rnd):
    choices = [
        lambda: [b"shuffle", b"s", b"partition", b"-0"],
        lambda: [b"shuffle", b"s", b"partition", b"7"],
        lambda: [b"shuffle", b"\xff"],
        lambda: [b"shuffle", b"s", b"partition", b"0", b"writer", b"01", b"attempt", b"0"],
        lambda: [b"x"] * rnd.randint(0, 5000),
        lambda: [random_bytes(rnd, 32) for _ in range(rnd.randint(0, 9))],
        lambda: [b"shuffle", b"s" * 100000],
    ]
    return rnd.choice(choices)()


def frame(kind, value, payload=b""):
    return (kind.to_bytes(4, "little", signed=True) + value.to_bytes(4, "little", signed=True) +
            payload)


def hostile_frames(rnd):
    choices = [
        lambda: [frame(1, 2**31 - 1), frame(1, 10**6)],
        lambda: [frame(1, 1), frame(1, -7)],
        lambda: [frame(1, 0)],
        lambda: [frame(rnd.randint(-10, 10), rnd.getrandbits(31), random_bytes(rnd, 16))],
        lambda: [random_bytes(rnd, 12) for _ in range(rnd.randint(1, 5))],
        lambda: [frame(3, 0, b"not a block"), frame(5, 0)],
        lambda: [frame(1, 65536)] * 50,  # valid credits only: the call ends when we close
    ]
    return rnd.choice(choices)()


class Failure(Exception):
    pass


def utf8(parts):
    try:
        for part in parts:
            part.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def expect_error(what, call, reaches_sabot=True):
    """Runs `call`; it must fail with a clear Arrow/Flight error (not UNKNOWN, not a crash).

    A request that never reaches Sabot's handlers (a descriptor whose path is not UTF-8 breaks
    the Flight protobuf, whose path components are strings, and Arrow's transport refuses it
    before any handler runs) may fail as Arrow's transport chooses.
    """
    try:
        call()
    except Exception as e:  # noqa: BLE001 - classified below
        if not reaches_sabot:
            return "error"
        if isinstance(e, flight.FlightServerError):  # gRPC UNKNOWN: the mapping missed a code
            raise Failure(f"{what}: FlightServerError (gRPC UNKNOWN): {str(e)[:300]}")
        if isinstance(e, (flight.FlightUnavailableError, ConnectionError)):
            raise Failure(f"{what}: agent unavailable (crashed?): {str(e)[:300]}")
        if not isinstance(e, (pa.ArrowException, flight.FlightError)):
            raise Failure(f"{what}: {type(e).__name__}: {str(e)[:300]}")
        message = str(e)
        if not printable(message):
            raise Failure(f"{what}: non-printable message {message[:300]!r}")
        # Arrow's client adds its own context around the server's (capped) message.
        if len(message) > 8192:
            raise Failure(f"{what}: message of {len(message)} characters")
        return "error"
    return "ok"


def vm_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/{pid}/status")


def start_agent(sabot, spill_dir):
    agent = subprocess.Popen(
        [sabot, "agent", "--host", "127.0.0.1", "--port", "0", "--agent-id", "hostile",
         "--memory-budget-mib", "64", "--spill-dir", spill_dir],
        stdout=subprocess.PIPE, text=True)
    line = agent.stdout.readline()
    match = re.search(r"listening on (grpc\+tcp://\S+)", line)
    if not match:
        agent.kill()
        raise RuntimeError(f"agent did not report its location: {line!r}")
    return agent, match.group(1)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("sabot")
    parser.add_argument("register_body")
    parser.add_argument("--max-hwm-mib", type=int, default=256)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="sabot-hostile-") as spill_dir:
        agent, location = start_agent(args.sabot, spill_dir)
        try:
            return run(agent, location, args)
        finally:
            agent.send_signal(signal.SIGTERM)
            try:
                agent.wait(timeout=20)
            except subprocess.TimeoutExpired:
                agent.kill()
                agent.wait()


def run(agent, location, args):
    client = flight.connect(location)
    with open(args.register_body, "rb") as f:
        body = f.read()
    list(client.do_action(flight.Action("sabot.register_shuffle", body)))
    start_rss = vm_kib(agent.pid, "VmRSS")

    rnd = random.Random(20261130)
    counts = {"action": 0, "ticket": 0, "descriptor": 0, "exchange": 0}
    deadline = time.monotonic() + DEADLINE_S
    call = flight.FlightCallOptions(timeout=30)
    for i in range(REQUESTS):
        if time.monotonic() > deadline:
            raise Failure(f"only {i} of {REQUESTS} requests in {DEADLINE_S} s")
        kind = rnd.choice(sorted(counts))
        counts[kind] += 1
        if kind == "action":
            if rnd.random() < 0.7:
                action = rnd.choice(["sabot.run_readers", "sabot.run_writers"])
                payload = hostile_run_body(rnd)
            else:
                action = rnd.choice(ACTIONS)
                payload = random_bytes(rnd, 200) if rnd.random() < 0.5 else hostile_run_body(rnd)
                if action in ("sabot.progress", "sabot.cancel_shuffle", "sabot.release_job",
                              "sabot.shuffle_stats", "stats"):
                    payload = random_bytes(rnd, 40) + b"\xff"  # never a well-formed request
            outcome = expect_error(f"action {action!r}",
                                   lambda: list(client.do_action(flight.Action(action, payload),
                                                                 call)))
            if outcome == "ok" and action.startswith("sabot.run"):
                raise Failure(f"a hostile {action} succeeded: {payload[:200]!r}")
        elif kind == "ticket":
            ticket = hostile_ticket(rnd)
            expect_error(f"ticket {ticket[:64]!r}",
                         lambda: client.do_get(flight.Ticket(ticket), call).read_all())
        elif kind == "descriptor":
            path = hostile_path(rnd)
            descriptor = flight.FlightDescriptor.for_path(*path)
            reaches = utf8(path)
            which = rnd.randrange(3)
            if which == 0:
                expect_error("GetFlightInfo", lambda: client.get_flight_info(descriptor, call),
                             reaches)
            elif which == 1:
                expect_error("GetSchema", lambda: client.get_schema(descriptor, call), reaches)
            else:
                def put():
                    writer, _ = client.do_put(descriptor, pa.schema([("x", pa.int64())]), call)
                    writer.write_table(pa.table({"x": [1, 2, 3]}))
                    writer.close()
                expect_error("DoPut", put, reaches)
        else:
            frames = hostile_frames(rnd)
            descriptor = flight.FlightDescriptor.for_path(
                "shuffle", "s", "partition", "0", "writer", str(rnd.randrange(100)), "attempt",
                "0")

            def exchange():
                writer, reader = client.do_exchange(descriptor, call)
                for f in frames:
                    writer.write_metadata(pa.py_buffer(f))
                writer.done_writing()
                while True:
                    chunk = reader.read_chunk()  # raises at the end of a failed call
                    if chunk.data is None and chunk.app_metadata is None:
                        break
                writer.close()
            expect_error("DoExchange", exchange)

    # One body far over any control message: refused by its size before it is copied or parsed
    # (what gRPC itself received, 40 MiB, is the only cost; the peak bound below covers it).
    big = b"\x00" * (40 << 20)
    try:
        list(client.do_action(flight.Action("sabot.register_shuffle", big), call))
        raise Failure("a 40 MiB control action was accepted")
    except pa.ArrowInvalid as e:
        if "at most" not in str(e):
            raise Failure(f"40 MiB action: unexpected message {str(e)[:300]}")
    del big

    health = list(client.do_action(flight.Action("health", b"")))
    if health[0].body.to_pybytes() != b"ok":
        raise Failure(f"health answered {health[0].body.to_pybytes()!r}")
    schema = client.get_schema(flight.FlightDescriptor.for_path("shuffle", "s")).schema
    if schema.names[0] != "key":
        raise Failure(f"unexpected schema {schema}")
    hwm = vm_kib(agent.pid, "VmHWM")
    print(f"{REQUESTS} malformed requests {counts}; agent RSS after start {start_rss // 1024} MiB, "
          f"peak {hwm // 1024} MiB (bound {args.max_hwm_mib or 'not checked'})")
    if args.max_hwm_mib and hwm > args.max_hwm_mib * 1024:
        raise Failure(f"agent peak RSS {hwm // 1024} MiB exceeds {args.max_hwm_mib} MiB")
    client.close()
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Failure as failure:
        print(f"FAILED: {failure}", file=sys.stderr)
        sys.exit(1)
