"""The seeds' ShuffleService over the C++ ShuffleService of an engine (runtime/engine.h).

    from sabot.orchestrator.shuffle import ShuffleService, ShuffleType
    service = ShuffleService()
    service.create_shuffle("s1", ShuffleType.HASH, num_partitions=4, keys=["user_id"])
    service.send("s1", batch)                       # partitioned by the shuffle's spec
    service.send_partition("s1", 0, batch)          # all rows of `batch` go to partition 0
    batches = service.receive_partitions("s1", partition_id=0)
    stats = service.get_shuffle_stats()
    service.close_shuffle("s1")
    service.shutdown()

In local mode this process is the only agent (writer task 0 of every shuffle), named
LOCAL_AGENT ("agent_0", the seeds' name): `agent` is None, "" or that name. Shuffles are blocking by default (written, then read:
the natural order of one Python thread); `mode="pipelined"` needs a reader per partition while
the writer runs.
"""

import enum

import pyarrow as pa

from ... import _sabot
from ...errors import SabotInvalid


# The name of the one agent of local mode (the seeds' `send_partition(..., 'agent_0')`).
LOCAL_AGENT = "agent_0"


class ShuffleType(enum.Enum):
    HASH = "HASH"
    BROADCAST = "BROADCAST"
    REBALANCE = "REBALANCE"
    RANGE = "RANGE"
    FORWARD = "FORWARD"


class ShuffleService:
    """Creates, feeds, reads and releases shuffles of one engine. Not thread-safe per shuffle
    (one sending thread per shuffle at a time)."""

    def __init__(self, mode="local", *, memory_budget=0):
        if mode != "local":
            from ...errors import SabotNotImplemented
            raise SabotNotImplemented(
                f"ShuffleService(mode={mode!r}): only local mode is available from Python yet")
        self._engine = _sabot.Engine(mode, memory_budget)
        self._pending = {}   # shuffle id -> create arguments, until the first batch gives a schema
        self._finished = set()

    @property
    def mode(self):
        return self._engine.mode

    def create_shuffle(self, shuffle_id, shuffle_type=ShuffleType.HASH, num_partitions=1,
                       keys=None, *, schema=None, mode="blocking"):
        """Creates shuffle ``shuffle_id``. Without ``schema`` the shuffle takes the schema of the
        first batch sent to it."""
        shuffle_type = ShuffleType(shuffle_type)
        args = (shuffle_type.value, int(num_partitions), list(keys or []), mode)
        if shuffle_id in self._pending:
            raise SabotInvalid(f"shuffle '{shuffle_id}' exists already")
        if schema is None:
            self._pending[shuffle_id] = args
        else:
            self._engine.create_shuffle(shuffle_id, args[0], args[1], args[2], pa.schema(schema),
                                        args[3])

    def _ready(self, shuffle_id, batch=None):
        args = self._pending.pop(shuffle_id, None)
        if args is not None:
            if batch is None:
                self._pending[shuffle_id] = args
                raise SabotInvalid(f"shuffle '{shuffle_id}' has received no batch yet, so it "
                                   "has no schema: send one, or create it with schema=")
            self._engine.create_shuffle(shuffle_id, args[0], args[1], args[2], batch.schema,
                                        args[3])

    def send_partition(self, shuffle_id, partition, batch, agent=None):
        """Sends ``batch``, all of whose rows belong to ``partition``."""
        self._ready(shuffle_id, batch)
        if agent == LOCAL_AGENT:
            agent = None  # this process: the engine knows it by no name
        self._engine.send_partition(shuffle_id, int(partition), batch, agent or "")

    def send(self, shuffle_id, batch):
        """Partitions ``batch`` by the shuffle's type and keys and sends every part."""
        self._ready(shuffle_id, batch)
        self._engine.send(shuffle_id, batch)

    def finish_sending(self, shuffle_id):
        """This process has sent everything (receive_partitions does it when needed)."""
        self._ready(shuffle_id)
        if shuffle_id not in self._finished:
            self._engine.finish_sending(shuffle_id)
            self._finished.add(shuffle_id)

    def receive_partitions(self, shuffle_id, partition_id=0):
        """Every batch of ``partition_id`` (a list of pyarrow.RecordBatch)."""
        self.finish_sending(shuffle_id)
        return [pa.record_batch(b) for b in self._engine.receive_partition(shuffle_id,
                                                                           int(partition_id))]

    def get_shuffle_stats(self, shuffle_id=None):
        """The figures of one shuffle (a dict), or of every shuffle (a dict by id)."""
        if shuffle_id is not None:
            return self._engine.stats(shuffle_id)
        return {s["shuffle_id"]: s for s in self._engine.all_stats()}

    def close_shuffle(self, shuffle_id):
        """Releases the shuffle: memory freed, spill files deleted."""
        if self._pending.pop(shuffle_id, None) is not None:
            return
        self._finished.discard(shuffle_id)
        self._engine.close_shuffle(shuffle_id)

    def shutdown(self):
        """Releases every shuffle; later calls fail."""
        self._pending.clear()
        self._engine.shutdown()


__all__ = ["ShuffleService", "ShuffleType"]
