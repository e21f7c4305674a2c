"""Map functions of the distributed tests: module-level, so that Python agents import them by
reference (their PYTHONPATH has this folder)."""

import pyarrow.compute as pc


def enrich(batch):
    """The seeds' map: amount_usd = amount * 1.1."""
    return batch.append_column("amount_usd", pc.multiply(batch.column("amount"), 1.1))
