"""Fixtures of the sabot package's tests (pytest; scripts/test.sh runs them)."""

import pytest

import sabot


@pytest.fixture
def app():
    # Two worker threads: the suite runs on small machines next to other builds.
    a = sabot.Sabot(mode="local", threads=2)
    yield a
    a.shutdown()
