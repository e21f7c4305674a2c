"""Sabot(mode=...) and its streams: a fluent description of a dataflow job.

A Stream records the call that made it; a terminal call (collect, sink, explain) replays the
recorded calls into the C++ PlanBuilder, which validates and builds the LogicalPlan, and the C++
local executor runs it. Nothing here computes on data: pyarrow.compute expressions are handed to
the core as Substrait and become plan expressions there; Python functions given to ``map`` are
called by the core's function_map operator, one batch at a time, with the GIL held only inside
the call.
"""

from __future__ import annotations

import builtins
import datetime as _dt
import glob as _glob
import itertools
import os
import uuid

import pyarrow as pa

from . import _sabot
from .errors import SabotError, SabotInvalid, SabotNotImplemented

_MIB = 1024 * 1024
_ids = itertools.count(1)


# --- windows and aggregates -------------------------------------------------------------------


def _ms(value=None, **kwargs):
    if value is None:
        value = _dt.timedelta(**kwargs)
    elif kwargs:
        raise TypeError("give a duration either as a timedelta or as keywords, not both")
    if isinstance(value, _dt.timedelta):
        ms = value / _dt.timedelta(milliseconds=1)
        if ms != int(ms):
            raise ValueError(f"durations are whole milliseconds, got {value}")
        return int(ms)
    if isinstance(value, int):
        return value
    raise TypeError(f"expected a datetime.timedelta, got {type(value).__name__}")


class Window:
    """An event-time window assigner: tumbling(...), sliding(...) or session(...)."""

    def __init__(self, type_, size_ms=0, slide_ms=0, gap_ms=0, allowed_lateness_ms=0,
                 time_column=""):
        self.type = type_
        self.size_ms = size_ms
        self.slide_ms = slide_ms
        self.gap_ms = gap_ms
        self.allowed_lateness_ms = allowed_lateness_ms
        self.time_column = time_column

    def __repr__(self):
        return (f"Window({self.type}, size_ms={self.size_ms}, slide_ms={self.slide_ms}, "
                f"gap_ms={self.gap_ms})")


def tumbling(size=None, *, allowed_lateness=None, time_column="", **duration):
    """Tumbling windows of ``size`` (a timedelta, or keywords: ``tumbling(minutes=5)``)."""
    return Window("tumbling", size_ms=_ms(size, **duration),
                  allowed_lateness_ms=_ms(allowed_lateness) if allowed_lateness else 0,
                  time_column=time_column)


def sliding(size, slide, *, allowed_lateness=None, time_column=""):
    """Sliding windows of ``size`` every ``slide`` (timedeltas)."""
    return Window("sliding", size_ms=_ms(size), slide_ms=_ms(slide),
                  allowed_lateness_ms=_ms(allowed_lateness) if allowed_lateness else 0,
                  time_column=time_column)


def session(gap=None, *, allowed_lateness=None, time_column="", **duration):
    """Session windows closed by a gap of ``gap`` without rows of the key."""
    return Window("session", gap_ms=_ms(gap, **duration),
                  allowed_lateness_ms=_ms(allowed_lateness) if allowed_lateness else 0,
                  time_column=time_column)


class Aggregate:
    """One aggregate output column (sum("amount"), count(), ...)."""

    def __init__(self, function, column="", alias=""):
        self.function = function
        self.column = column
        self.alias = alias

    def __repr__(self):
        alias = f" as {self.alias}" if self.alias else ""
        return f"{self.function}({self.column or '*'}){alias}"


def count(column="", *, alias=""):
    """count() counts rows (as "count"); count("c") counts the non-null values of c."""
    return Aggregate("count", column, alias)


def sum(column, *, alias=""):  # noqa: A001 - the seeds' name
    return Aggregate("sum", column, alias)


def mean(column, *, alias=""):
    return Aggregate("mean", column, alias)


def min(column, *, alias=""):  # noqa: A001
    return Aggregate("min", column, alias)


def max(column, *, alias=""):  # noqa: A001
    return Aggregate("max", column, alias)


def count_distinct(column, *, alias=""):
    return Aggregate("count_distinct", column, alias)


# --- sources ----------------------------------------------------------------------------------


class GeneratorSource:
    """A generated table of the core's generator source (no data leaves C++)."""

    def __init__(self, table, rows, key_cardinality, batch_rows, seed, rows_per_second):
        self.table = table
        self.rows = rows
        self.key_cardinality = key_cardinality
        self.batch_rows = batch_rows
        self.seed = seed
        self.rows_per_second = rows_per_second


def transactions(rows=1_000_000, *, key_cardinality=1000, batch_rows=64 * 1024, seed=42,
                 rows_per_second=0.0):
    """The generator's transactions table: user_id int64, amount float64, event_time
    timestamp[ms]. ``rows`` over all tasks of the source; 0 = unbounded (needs a rate)."""
    return GeneratorSource("transactions", rows, key_cardinality, batch_rows, seed,
                           rows_per_second)


_FORMATS = {".parquet": "parquet", ".pq": "parquet", ".arrow": "ipc", ".ipc": "ipc",
            ".feather": "ipc", ".csv": "csv"}


def _file_format(paths, given):
    if given:
        return given
    formats = set()
    for p in paths:
        ext = os.path.splitext(p.rstrip("/"))[1].lower()
        if ext in _FORMATS:
            formats.add(_FORMATS[ext])
        elif os.path.isdir(p):
            for f in _glob.glob(os.path.join(p, "**", "*"), recursive=True):
                e = os.path.splitext(f)[1].lower()
                if e in _FORMATS:
                    formats.add(_FORMATS[e])
    if len(formats) != 1:
        raise ValueError(f"cannot tell the file format of {paths} (found {sorted(formats)}); "
                         "pass format='parquet', 'ipc' or 'csv'")
    return formats.pop()


def _as_table(source):
    """An in-memory source as a pyarrow Table, without copying its buffers."""
    if isinstance(source, pa.Table):
        return source
    if isinstance(source, pa.RecordBatch):
        return pa.Table.from_batches([source])
    if isinstance(source, pa.RecordBatchReader):
        return source.read_all()
    if isinstance(source, (list, tuple)):
        if not source:
            raise ValueError("a list source needs at least one batch (its schema)")
        return pa.Table.from_batches(list(source))
    if hasattr(source, "__arrow_c_stream__"):
        return pa.RecordBatchReader.from_stream(source).read_all()
    return None


# --- expressions ------------------------------------------------------------------------------


def _is_pc_expression(value):
    import pyarrow.compute as pc
    return isinstance(value, pc.Expression)


def _to_text(exprs, schema):
    """{name: pyarrow.compute.Expression or text} -> [(name, text)] in the plan's language."""
    out = []
    pending = {}
    for name, e in exprs.items():
        if isinstance(e, str):
            out.append((name, e))
        elif _is_pc_expression(e):
            pending[name] = e
            out.append((name, None))
        else:
            raise TypeError(f"expression {name!r}: expected a pyarrow.compute.Expression or "
                            f"text, got {type(e).__name__}")
    if pending:
        import pyarrow.substrait as ps
        try:
            serialized = ps.serialize_expressions(list(pending.values()),
                                                  list(pending.keys()), schema)
        except (pa.ArrowNotImplementedError, pa.ArrowInvalid) as e:
            # pyarrow cannot express it in Substrait (a function without a Substrait mapping, an
            # implicit safe cast such as int32 * 1.5).
            raise SabotNotImplemented(
                f"expressions {list(pending.values())} cannot travel as Substrait ({e}); write "
                "them as text in Sabot's expression language (docs/expressions.md)") from e
        texts = dict(_sabot.substrait_to_text(bytes(serialized)))
        out = [(n, t if t is not None else texts[n]) for n, t in out]
    return out


# --- streams ----------------------------------------------------------------------------------


def _check_parallelism(kind, parallelism):
    """A parallelism is None (the default) or an int the core can take; the core checks its
    range (1 to 1024) and names the operator."""
    if parallelism is None:
        return
    if isinstance(parallelism, bool) or not isinstance(parallelism, int):
        raise SabotInvalid(f"{kind}: parallelism must be an integer, got {parallelism!r} "
                           f"({type(parallelism).__name__})")
    if not -2**31 <= parallelism < 2**31:
        raise SabotInvalid(f"{kind}: parallelism must be between 1 and 1024, got {parallelism}")


class Stream:
    """The output of one operator of a job under construction. Immutable: every call returns a
    new Stream; one Stream may feed several (fan-out) and each terminal call runs its own job."""

    def __init__(self, app, kind, inputs=(), **args):
        _check_parallelism(kind, args.get("parallelism"))
        self._app = app
        self._kind = kind
        self._inputs = tuple(inputs)
        self._args = args
        self._id = next(_ids)
        self._texts = None  # translated expressions, once known

    # Operators.
    def map(self, fn=None, parallelism=None, *, schema=None, name="", **columns):
        """A Python function RecordBatch -> RecordBatch (``schema``: its output schema; by
        default learned by calling it once on an empty batch), or computed columns given as a
        dict / keywords of pyarrow.compute expressions or expression text."""
        if callable(fn) and not _is_pc_expression(fn):
            if columns:
                raise TypeError("map takes a function or columns, not both")
            return Stream(self._app, "function_map", [self], fn=fn, schema=schema,
                          parallelism=parallelism, name=name)
        if isinstance(fn, dict):
            columns = {**fn, **columns}
        elif fn is not None:
            raise TypeError("map(fn) needs a callable; computed columns are given as a dict or "
                            "keywords: map(amount_usd=pc.field('amount') * 1.1)")
        if not columns:
            raise TypeError("map needs a function or at least one column")
        return Stream(self._app, "map", [self], columns=columns, parallelism=parallelism,
                      name=name)

    def filter(self, predicate, parallelism=None, *, name=""):
        """Keeps the rows for which ``predicate`` (a pyarrow.compute expression or text) holds."""
        return Stream(self._app, "filter", [self], predicate=predicate, parallelism=parallelism,
                      name=name)

    def key_by(self, *keys, name=""):
        """Partitions by hash of the key columns (``key_by("user_id")``)."""
        flat = []
        for k in keys:
            flat.extend([k] if isinstance(k, str) else list(k))
        return Stream(self._app, "key_by", [self], keys=flat, name=name)

    def window(self, window, parallelism=None, *, name=""):
        if not isinstance(window, Window):
            raise TypeError("window() takes tumbling(...), sliding(...) or session(...)")
        return Stream(self._app, "window", [self], window=window, parallelism=parallelism,
                      name=name)

    def aggregate(self, *aggregates, parallelism=None, name=""):
        if not aggregates or not all(isinstance(a, Aggregate) for a in aggregates):
            raise TypeError("aggregate() takes sum(...), count(), mean(...), min(...), max(...)")
        return Stream(self._app, "aggregate", [self], aggregates=list(aggregates),
                      parallelism=parallelism, name=name)

    def join(self, other, on=None, how="inner", *, left_on=None, right_on=None,
             parallelism=None, name=""):
        """This stream (left) joined with ``other`` (right) on equal keys."""
        if not isinstance(other, Stream) or other._app is not self._app:
            raise TypeError("join() takes a stream of the same Sabot app")
        left = left_on if left_on is not None else on
        right = right_on if right_on is not None else on
        if left is None or right is None:
            raise TypeError("join() needs on= (or left_on= and right_on=)")
        as_list = lambda k: [k] if isinstance(k, str) else list(k)  # noqa: E731
        return Stream(self._app, "join", [self, other], left_keys=as_list(left),
                      right_keys=as_list(right), how=how, parallelism=parallelism, name=name)

    # Terminal calls.
    def collect(self):
        """Runs the job and returns its output as a pyarrow.Table (the buffers the core made,
        not copies)."""
        if self._app.mode == "distributed":
            return self._collect_distributed()
        job = _Job(self._app)
        job.add_sink(self, "collect")
        result = job.run()
        handle = result.collected.get("collect")
        if handle is None:
            raise SabotError("the collect sink returned nothing")
        return pa.table(handle)

    def _collect_distributed(self):
        """Distributed collect: rows cannot come back from agents in memory, so the job writes
        Parquet files into a fresh folder under the app's collect_directory (a filesystem every
        agent and this process share), which is read back and removed."""
        import shutil
        import tempfile

        import pyarrow.parquet as pq
        base = self._app.collect_directory or None
        folder = tempfile.mkdtemp(prefix="sabot-collect-", dir=base)
        try:
            job = _Job(self._app)
            job.add_sink(self, "file", directory=os.path.join(folder, "out"), format="parquet",
                         name="collect")
            job.run()
            files = sorted(_glob.glob(os.path.join(folder, "out", "**", "*.parquet"),
                                      recursive=True))
            tables = [pq.read_table(f) for f in files]
            return pa.concat_tables(tables) if tables else job.schema_of(self).empty_table()
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def sink(self, directory, *, format="parquet", parallelism=None, name=""):  # noqa: A002
        """Runs the job, writing files of ``format`` into ``directory`` (one per sink task,
        committed when the job succeeds); returns the job's summary text."""
        job = _Job(self._app)
        job.add_sink(self, "file", directory=os.fspath(directory), format=format,
                     parallelism=parallelism, name=name)
        return job.run().summary

    def explain(self, print_=True):
        """The job's graph (tasks and shuffles) as text, with a collect sink at the end."""
        job = _Job(self._app)
        job.add_sink(self, "collect")
        text = job.plan().explain()
        if print_:
            print(text, end="")
        return text

    def plan_json(self):
        """The job's plan, with a collect sink at the end, in its JSON form
        (docs/plan-format.md)."""
        job = _Job(self._app)
        job.add_sink(self, "collect")
        return job.plan().to_json()

    def schema(self):
        """The schema of this stream's rows (the job is bound, not run)."""
        job = _Job(self._app)
        return job.schema_of(self)

    def __repr__(self):
        return f"<sabot.Stream {self._kind} #{self._id}>"


_IN_MEMORY_REFUSED = (
    "Sabot(mode='distributed'): an in-memory source ({}) cannot reach the cluster's agents, "
    "which run in other processes; write it to Parquet/IPC/CSV files on a filesystem every "
    "agent reads and stream from their paths, or use a generator (sabot.transactions(...))")


class _Job:
    """One terminal call: the recorded streams replayed into a C++ PlanBuilder."""

    def __init__(self, app):
        self.app = app
        self.builder = _sabot.PlanBuilder()
        self.index = {}          # stream id -> builder stream index
        self.names = {}          # stream id -> operator name
        self.used_names = {}
        self.tables = {}         # name -> pyarrow.Table
        self.functions = {}      # name -> (call, output_schema)
        self.errors = []         # Python exceptions raised inside map functions
        self.sinks = []

    def _name(self, stream, kind):
        if stream._args.get("name"):
            return stream._args["name"]
        n = self.used_names.get(kind, 0) + 1
        self.used_names[kind] = n
        return kind if n == 1 else f"{kind}_{n}"

    def schema_of(self, stream):
        """The output schema of `stream`: its recorded calls replayed with a collect sink,
        bound (not run)."""
        sub = _Job(self.app)
        sub.add_sink(stream, "collect")
        plan = sub.plan()
        schemas = _sabot.output_schemas(plan, sub.tables, sub.functions)
        return pa.schema(schemas[sub.names[stream._id]])

    def add(self, s):
        if s._id in self.index:
            return self.index[s._id]
        a = s._args
        par = a.get("parallelism")
        if s._kind == "source":
            i = self._add_source(s)
        else:
            ins = [self.add(x) for x in s._inputs]
            name = self._name(s, s._kind)
            b = self.builder
            if s._kind == "map":
                if s._texts is None:
                    s._texts = _to_text(a["columns"], self.schema_of(s._inputs[0]))
                i = b.map(ins[0], s._texts, par, name)
            elif s._kind == "filter":
                if s._texts is None:
                    p = a["predicate"]
                    s._texts = (p if isinstance(p, str) else
                                _to_text({"predicate": p}, self.schema_of(s._inputs[0]))[0][1])
                i = b.filter(ins[0], s._texts, par, name)
            elif s._kind == "function_map":
                if self.app.mode == "distributed":
                    # Agents load the function by reference (sabot.agent).
                    from .agent import function_reference
                    if a["schema"] is not None:
                        raise SabotNotImplemented(
                            f"map({getattr(a['fn'], '__name__', a['fn'])!r}, schema=...): in "
                            "distributed mode the output schema is learned on the agents by "
                            "calling the function on an empty batch; drop schema=")
                    fname = function_reference(a["fn"])
                else:
                    fname = f"py_{s._id}"
                self.functions[fname] = self._function(a["fn"], a["schema"])
                i = b.function_map(ins[0], fname, par, name)
            elif s._kind == "key_by":
                i = b.key_by(ins[0], a["keys"], name)
            elif s._kind == "window":
                w = a["window"]
                i = b.window(ins[0], w.type, w.size_ms, w.slide_ms, w.gap_ms,
                             w.allowed_lateness_ms, w.time_column, par, name)
            elif s._kind == "aggregate":
                i = b.aggregate(ins[0], [(g.function, g.column, g.alias) for g in a["aggregates"]],
                                par, name)
            elif s._kind == "join":
                i = b.join(ins[0], ins[1], a["left_keys"], a["right_keys"], a["how"], par, name)
            else:
                raise AssertionError(s._kind)
            self.names[s._id] = name
        self.index[s._id] = i
        return i

    def _add_source(self, s):
        a = s._args
        src = a["source"]
        par = a["parallelism"]
        et = a["event_time"]
        late = a["max_out_of_orderness_ms"]
        b = self.builder
        if isinstance(src, GeneratorSource):
            name = self._name(s, "generator_source")
            i = b.generator_source(src.table, src.rows, src.key_cardinality, src.batch_rows,
                                   src.seed, src.rows_per_second, et, late, par, name)
        elif isinstance(src, list) and src and all(isinstance(p, (str, os.PathLike)) for p in src) \
                or isinstance(src, (str, os.PathLike)):
            paths = [os.fspath(p) for p in (src if isinstance(src, list) else [src])]
            name = self._name(s, "file_source")
            i = b.file_source(_file_format(paths, a.get("format")), paths, et, late, par, name)
        else:
            if self.app.mode == "distributed":
                raise SabotInvalid(_IN_MEMORY_REFUSED.format(type(src).__name__))
            table = a["table"]
            name = self._name(s, "table_source")
            tname = f"t{s._id}"
            self.tables[tname] = table
            i = b.table_source(tname, a["batch_rows"], et, late, par, name)
        self.names[s._id] = name
        return i

    def _function(self, fn, schema):
        errors = self.errors

        def call(handle):
            batch = pa.record_batch(handle)
            try:
                out = fn(batch)
            except BaseException as e:
                errors.append(e)
                raise
            if isinstance(out, pa.Table):
                out = out.combine_chunks()
                out = (out.to_batches()[0] if out.num_rows else
                       pa.RecordBatch.from_pylist([], schema=out.schema))
            if not isinstance(out, pa.RecordBatch):
                e = TypeError(f"map function {getattr(fn, '__name__', fn)!r} returned "
                              f"{type(out).__name__}, expected a pyarrow.RecordBatch")
                errors.append(e)
                raise e
            return out

        def output_schema(handle):
            if schema is not None:
                return pa.schema(schema)
            empty = pa.RecordBatch.from_pylist([], schema=pa.schema(handle))
            return call(empty).schema

        return (call, output_schema)

    def add_sink(self, stream, kind, directory=None, format="parquet", parallelism=None,
                 name=""):  # noqa: A002
        i = self.add(stream)
        if kind == "collect":
            self.builder.collect_sink(i, "collect")
        else:
            self.builder.file_sink(i, format, directory, parallelism, name or f"{format}_sink")

    def plan(self):
        return self.builder.build()

    def run(self):
        app = self.app
        plan = self.plan()
        if app.mode == "distributed":
            return app._cluster.run(plan, "python", app.memory_budget_per_agent,
                                    app.state_budget_per_task)
        job_id = "py-" + uuid.uuid4().hex[:12]
        try:
            return _sabot.run_local(plan, self.tables, self.functions, job_id, app.threads,
                                    app.memory_budget, app.state_budget_per_task,
                                    app.spill_directory)
        except SabotError as e:
            if self.errors:
                raise e from self.errors[0]
            raise


class Sabot:
    """The Sabot engine of this process (the seeds' ``Sabot(mode=...)``).

    mode="local": jobs run in this process on a bounded pool of threads (``threads``, 0 = the
    machine's cores) under ``memory_budget`` bytes for their shuffles.

    mode="distributed": jobs are submitted to the coordinator at ``coordinator``
    ("grpc+tcp://host:port" or "grpc+tls://host:port") and run on its agents; the call waits
    for the job's end (Ctrl-C cancels it). ``token`` (or ``token_file``) is the cluster's bearer
    token; ``tls_ca`` the PEM roots that sign the coordinator's certificate, ``tls_cert`` and
    ``tls_key`` this client's certificate under mutual TLS. Sources are files every agent reads
    or generators; ``collect()`` goes through Parquet files in a temporary folder under
    ``collect_directory`` (default: the system's temporary folder; it must be on a filesystem
    the agents share with this process), removed after reading. ``memory_budget`` (default:
    256 MiB locally) is then each agent's budget for the job (default 0: the agent's own). Python functions given to ``map`` run on
    agents started from Python (``python -m sabot agent``): docs/python.md.
    """

    def __init__(self, mode="local", *, coordinator=None, threads=0, memory_budget=None,
                 state_budget_per_task=0, spill_directory="", token="", token_file="",
                 tls_ca="", tls_cert="", tls_key="", collect_directory=""):
        if mode not in ("local", "distributed"):
            raise ValueError(f"unknown mode {mode!r} (expected 'local' or 'distributed')")
        self.mode = mode
        self.threads = threads
        if memory_budget is None:
            memory_budget = 256 * _MIB if mode == "local" else 0
        self.memory_budget = memory_budget
        self.state_budget_per_task = state_budget_per_task
        self.spill_directory = spill_directory
        self.collect_directory = collect_directory
        self._service = None
        self._cluster = None
        if mode == "distributed":
            if not coordinator:
                raise ValueError("Sabot(mode='distributed') needs coordinator="
                                 "'grpc+tcp://host:port'")
            self.coordinator = coordinator
            self._cluster = _sabot.Cluster(coordinator, token=token, token_file=token_file,
                                           tls_ca=tls_ca, tls_cert=tls_cert, tls_key=tls_key)

    @property
    def memory_budget_per_agent(self):
        return self.memory_budget

    def jobs(self):
        """Distributed mode: the coordinator's jobs, newest first (id, name, state, error)."""
        if self._cluster is None:
            raise SabotInvalid("jobs() needs Sabot(mode='distributed')")
        return self._cluster.jobs()

    def agents(self):
        """Distributed mode: the coordinator's agents (id, location, slots, lost)."""
        if self._cluster is None:
            raise SabotInvalid("agents() needs Sabot(mode='distributed')")
        return self._cluster.agents()

    def stream(self, source, parallelism=1, *, event_time=None, max_out_of_orderness=None,
               batch_rows=64 * 1024, format=None, name=""):  # noqa: A002
        """A stream reading ``source``: a pyarrow Table, RecordBatch, RecordBatchReader, any
        object with __arrow_c_stream__, a list of batches, a path / glob / directory of Parquet,
        IPC or CSV files (or a list of them), or a generator (sabot.transactions(...)).
        ``event_time`` names the event-time column; rows may be ``max_out_of_orderness`` (a
        timedelta) behind the largest event time seen."""
        late = _ms(max_out_of_orderness) if max_out_of_orderness is not None else 0
        args = dict(source=source, parallelism=parallelism, event_time=event_time,
                    max_out_of_orderness_ms=late, batch_rows=batch_rows, format=format,
                    name=name)
        if not isinstance(source, (GeneratorSource, str, os.PathLike)) and not (
                isinstance(source, list) and source
                and builtins.all(isinstance(p, (str, os.PathLike)) for p in source)):
            if self.mode == "distributed":
                raise SabotInvalid(_IN_MEMORY_REFUSED.format(type(source).__name__))
            table = _as_table(source)
            if table is None:
                raise TypeError(f"cannot read a stream from {type(source).__name__}: expected a "
                                "pyarrow Table, RecordBatchReader, an __arrow_c_stream__ "
                                "object, a list of batches, a path, or sabot.transactions()")
            args["table"] = table
        return Stream(self, "source", **args)

    @property
    def shuffle_service(self):
        """This engine's ShuffleService (sabot.orchestrator.shuffle), created on first use."""
        if self._service is None:
            from .orchestrator.shuffle import ShuffleService
            self._service = ShuffleService(mode=self.mode, memory_budget=self.memory_budget)
        return self._service

    _shuffle_service = shuffle_service

    def shutdown(self):
        if self._service is not None:
            self._service.shutdown()
            self._service = None
