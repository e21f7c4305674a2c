"""sabot.orchestrator.shuffle.ShuffleService over the C++ ShuffleService (local mode)."""

import pyarrow as pa
import pytest

import sabot
from sabot.orchestrator.shuffle import ShuffleService, ShuffleType


def batch(start, n):
    return pa.record_batch({"user_id": pa.array([(start + i) % 37 for i in range(n)], pa.int64()),
                            "seq": pa.array(range(start, start + n), pa.int64())})


def test_hash_shuffle_delivers_every_row_once_by_key():
    service = ShuffleService()
    service.create_shuffle("s1", ShuffleType.HASH, num_partitions=4, keys=["user_id"])
    for start in range(0, 10_000, 1000):
        service.send("s1", batch(start, 1000))
    seen, owner = [], {}
    for p in range(4):
        parts = service.receive_partitions("s1", partition_id=p)
        assert all(isinstance(b, pa.RecordBatch) for b in parts)
        for b in parts:
            seen.extend(b["seq"].to_pylist())
            for user in b["user_id"].to_pylist():
                # Every row of one key in one partition.
                assert owner.setdefault(user, p) == p
    assert sorted(seen) == list(range(10_000))
    assert len(set(owner.values())) > 1
    stats = service.get_shuffle_stats("s1")
    assert stats["rows_written"] == 10_000
    assert sum(stats["partition_rows"]) == 10_000
    assert "s1" in service.get_shuffle_stats()
    service.close_shuffle("s1")
    with pytest.raises(sabot.SabotError):
        service.get_shuffle_stats("s1")
    service.shutdown()


def test_send_partition_and_explicit_schema():
    service = ShuffleService()
    schema = batch(0, 1).schema
    service.create_shuffle("s2", ShuffleType.REBALANCE, num_partitions=2, schema=schema)
    service.send_partition("s2", 1, batch(0, 100), None)
    service.send_partition("s2", 0, batch(100, 50))
    got0 = service.receive_partitions("s2", partition_id=0)
    got1 = service.receive_partitions("s2", partition_id=1)
    assert [r for b in got0 for r in b["seq"].to_pylist()] == list(range(100, 150))
    assert [r for b in got1 for r in b["seq"].to_pylist()] == list(range(100))
    # In local mode this process is the one agent, "agent_0" (the seeds' call); others are refused.
    service.create_shuffle("s3", ShuffleType.HASH, num_partitions=2, keys=["user_id"],
                           schema=schema)
    service.send_partition("s3", 0, batch(0, 3), "agent_0")
    assert [r for b in service.receive_partitions("s3", partition_id=0)
            for r in b["seq"].to_pylist()] == [0, 1, 2]
    service.create_shuffle("s4", ShuffleType.HASH, num_partitions=2, keys=["user_id"],
                           schema=schema)
    with pytest.raises(sabot.SabotInvalid) as e:
        service.send_partition("s4", 0, batch(0, 1), "agent_1")
    assert "agent_1" in str(e.value) and "s4" in str(e.value)
    service.shutdown()


def test_errors_carry_the_shuffle():
    service = ShuffleService()
    with pytest.raises(sabot.SabotError) as e:
        service.receive_partitions("missing", partition_id=0)
    assert "missing" in str(e.value)
    service.create_shuffle("s4", ShuffleType.HASH, num_partitions=2, keys=["no_such_key"])
    with pytest.raises(sabot.SabotError) as e:
        service.send("s4", batch(0, 10))
    assert "no_such_key" in str(e.value)
    service.shutdown()


def test_the_engine_exposes_its_shuffle_service():
    app = sabot.Sabot(mode="local")
    service = app.shuffle_service
    assert isinstance(service, ShuffleService) and app._shuffle_service is service
    service.create_shuffle("s5", ShuffleType.BROADCAST, num_partitions=3)
    service.send("s5", batch(0, 10))
    for p in range(3):
        assert sum(b.num_rows for b in service.receive_partitions("s5", partition_id=p)) == 10
    app.shutdown()
