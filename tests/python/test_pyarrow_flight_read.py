"""A third-party Flight client (pyarrow.flight) reads a partition from Sabot's shuffle server.

Usage: python test_pyarrow_flight_read.py /path/to/sabot_shuffle_test_agent

Starts the test agent as a child process on a free loopback port, with ZSTD-compressed blocks
and an event after each batch in every stream (`--events 1`), and checks that pyarrow's own
Flight client gets exactly the rows the agent wrote to partition 1 (the agent dumps them to an
Arrow IPC file before encoding) although the stream carries events, that reading chunk by chunk
shows each event in its place as an empty batch with EVENT app_metadata (docs/wire-protocol.md),
that FlightInfo describes the partitions, that GetSchema serves the schema, that actions answer,
and that bad tickets raise the exception classes of docs/wire-protocol.md's status table.
"""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest

import pyarrow as pa
import pyarrow.flight as flight
import pyarrow.ipc as ipc

AGENT = None


class PyArrowFlightReadTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.TemporaryDirectory(prefix="sabot-pyarrow-")
        port_file = os.path.join(cls.dir.name, "port")
        cls.dump = os.path.join(cls.dir.name, "partition1.arrow")
        cls.agent = subprocess.Popen([
            AGENT, "--shuffle", "py", "--partitions", "3", "--batches", "5", "--rows", "3000",
            "--compression", "zstd", "--events", "1", "--dump-partition", "1",
            "--dump-file", cls.dump,
            "--port", "0", "--port-file", port_file])
        deadline = time.monotonic() + 30
        cls.port = None
        while time.monotonic() < deadline and cls.port is None:
            if cls.agent.poll() is not None:
                raise RuntimeError(f"agent exited with {cls.agent.returncode}")
            try:
                with open(port_file) as f:
                    cls.port = int(f.read().strip())
            except (FileNotFoundError, ValueError):
                time.sleep(0.02)
        if cls.port is None:
            cls.agent.kill()
            raise RuntimeError("agent did not report its port")
        cls.client = flight.connect(f"grpc+tcp://127.0.0.1:{cls.port}")

    @classmethod
    def tearDownClass(cls):
        cls.client.close()
        cls.agent.send_signal(signal.SIGTERM)
        try:
            cls.agent.wait(timeout=10)
        except subprocess.TimeoutExpired:
            cls.agent.kill()
            cls.agent.wait()
        cls.dir.cleanup()

    def test_reads_exactly_the_rows_written(self):
        table = self.client.do_get(flight.Ticket(b"/shuffle/py/partition/1")).read_all()
        expected = ipc.open_file(self.dump).read_all()
        self.assertGreater(expected.num_rows, 0)
        self.assertTrue(table.schema.equals(expected.schema), f"{table.schema} != {expected.schema}")
        self.assertTrue(table.equals(expected), "partition 1 differs from what the agent wrote")
        # Independently: every row belongs to partition 1 and is a distinct generated row.
        keys = table.column("key").to_pylist()
        self.assertTrue(all(k % 3 == 1 for k in keys))
        rows = [p // 16 for p in table.column("p0").to_pylist()]
        self.assertEqual(len(rows), len(set(rows)))
        self.assertEqual(rows, sorted(rows), "order per writer is kept")

    def test_events_are_empty_batches_tagged_with_event_metadata(self):
        reader = self.client.do_get(flight.Ticket(b"/shuffle/py/partition/1"))
        expected = ipc.open_file(self.dump).read_all().to_batches()
        rows, events = [], []
        while True:
            try:
                chunk = reader.read_chunk()
            except StopIteration:
                break
            if chunk.app_metadata is None:
                rows.append(chunk.data)
                continue
            metadata = chunk.app_metadata.to_pybytes()
            self.assertEqual(chunk.data.num_rows, 0, "an event's batch has no rows")
            self.assertTrue(chunk.data.schema.equals(expected[0].schema))
            # The 8-byte header: kind 7 (EVENT) and value 0, little-endian int32s.
            self.assertEqual(metadata[:8], b"\x07\x00\x00\x00\x00\x00\x00\x00")
            events.append((metadata[8:].decode(), len(rows)))
        # One event after each of the 5 batches, each after that batch's rows (partition 1 got
        # rows from every batch: the dump holds one batch per generated batch).
        self.assertEqual(len(expected), 5)
        self.assertEqual(events, [(f"batch {b}", b + 1) for b in range(5)])
        self.assertEqual(len(rows), len(expected))
        for got, want in zip(rows, expected):
            self.assertTrue(got.equals(want))

    def test_flight_info_and_listing(self):
        info = self.client.get_flight_info(flight.FlightDescriptor.for_path("shuffle", "py"))
        self.assertEqual(len(info.endpoints), 3)
        self.assertEqual(info.total_records, 5 * 3000)
        self.assertGreater(info.total_bytes, 0)
        self.assertEqual(info.endpoints[2].ticket.ticket, b"/shuffle/py/partition/2")
        listed = list(self.client.list_flights())
        self.assertEqual([f.descriptor.path for f in listed], [[b"shuffle", b"py"]])

    def test_actions(self):
        health = list(self.client.do_action(flight.Action("health", b"")))
        self.assertEqual(health[0].body.to_pybytes(), b"ok")
        stats = json.loads(list(self.client.do_action(flight.Action("stats", b"")))[0].body.to_pybytes())
        self.assertIn("blocks_sent", stats)

    def test_bad_ticket_is_a_clear_error(self):
        # The exception classes follow docs/wire-protocol.md's status table: never gRPC UNKNOWN
        # (pyarrow's FlightServerError), so pyarrow raises the Arrow class the server meant.
        with self.assertRaises(pa.ArrowInvalid) as caught:
            self.client.do_get(flight.Ticket(b"/shuffle/py/partition/7")).read_all()
        self.assertNotIsInstance(caught.exception, flight.FlightServerError)
        self.assertIn("out of range", str(caught.exception))
        with self.assertRaises(pa.ArrowInvalid) as caught:
            self.client.do_get(flight.Ticket(b"not a path")).read_all()
        self.assertIn("malformed shuffle path", str(caught.exception))
        with self.assertRaises(pa.ArrowKeyError) as caught:
            self.client.do_get(flight.Ticket(b"/shuffle/nope/partition/0")).read_all()
        self.assertIn("unknown shuffle", str(caught.exception))
        with self.assertRaises(pa.ArrowNotImplementedError):
            list(self.client.do_action(flight.Action("no_such_action", b"")))
        # A non-UTF-8 ticket: the message quotes it escaped, so it decodes as text.
        with self.assertRaises(pa.ArrowInvalid) as caught:
            self.client.do_get(flight.Ticket(b"/shuffle/\xff\xfe/partition/0")).read_all()
        self.assertIn("\\xff\\xfe", str(caught.exception))
        # A 1 MiB ticket: Invalid on its size, not gRPC's metadata limit.
        with self.assertRaises(pa.ArrowInvalid) as caught:
            self.client.do_get(flight.Ticket(b"/shuffle/py/partition/" + b"1" * (1 << 20))).read_all()
        self.assertIn("1048598 bytes", str(caught.exception))

    def test_get_schema_serves_the_shuffles_schema(self):
        expected = ipc.open_file(self.dump).schema
        for path in (("shuffle", "py"), ("shuffle", "py", "partition", "2")):
            schema = self.client.get_schema(flight.FlightDescriptor.for_path(*path)).schema
            self.assertTrue(schema.equals(expected), f"{schema} != {expected}")

if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: test_pyarrow_flight_read.py AGENT")
    AGENT = sys.argv.pop(1)
    unittest.main(verbosity=2)
