"""Sabot from Python: dataflow jobs over Arrow data, and the shuffle service.

    from sabot import Sabot, tumbling, sum, count
    app = Sabot(mode="local")
    table = (app.stream(sabot.transactions(rows=100_000), event_time="event_time")
             .key_by("user_id").window(tumbling(minutes=5))
             .aggregate(sum("amount"), count(), parallelism=2)
             .collect())

docs/python.md is the guide. The package only binds the C++ core (sabot._sabot).
"""

# pyarrow first: it loads the Arrow C++ libraries the extension is linked against (the same
# files), so the extension and pyarrow share one Arrow C++.
import pyarrow  # noqa: F401
import pyarrow.compute  # noqa: F401

from . import _sabot  # noqa: F401
from .api import (Aggregate, GeneratorSource, Sabot, Stream, Window, count, count_distinct,
                  max, mean, min, session, sliding, sum, transactions, tumbling)
from .errors import *  # noqa: F401,F403
from .errors import SabotError

__version__ = "0.1.0"

__all__ = ["Sabot", "Stream", "Window", "Aggregate", "GeneratorSource", "tumbling", "sliding",
           "session", "sum", "count", "mean", "min", "max", "count_distinct", "transactions",
           "SabotError"]
