"""Sabot(mode="local") streams against independent references (pyarrow, DuckDB)."""

import datetime
import glob

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.dataset as ds
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest

import sabot
from sabot import Sabot, count, max, mean, min, session, sliding, sum, tumbling


def sorted_rows(table, keys):
    return table.sort_by([(k, "ascending") for k in keys]).to_pylist()


def orders(n=20000):
    ids = list(range(n))
    return pa.table({
        "order_id": pa.array(ids, pa.int64()),
        "customer_id": pa.array([(i * 7919) % 97 for i in ids], pa.int64()),
        "amount": pa.array([((i * 31) % 200) - 50.5 for i in ids], pa.float64()),
        "country": pa.array([["FR", "DE", "US"][i % 3] for i in ids]),
    })


def duck(sql, **tables):
    """The result of `sql` over `tables` as a pyarrow Table."""
    con = duckdb.connect()
    for name, t in tables.items():
        con.register(name, t)
    return con.sql(sql).to_arrow_table()


def close_rows(got, want, float_keys):
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.keys() == w.keys()
        for k in g:
            if k in float_keys:
                assert g[k] == pytest.approx(w[k], rel=1e-9, abs=1e-9), (g, w)
            else:
                assert g[k] == w[k], (g, w)


# --- the seed pipeline --------------------------------------------------------------------------


def enrich(batch):
    """The seeds' map: a Python function RecordBatch -> RecordBatch."""
    usd = pc.multiply(batch.column("amount"), 1.1)
    return batch.append_column("amount_usd", usd)


def test_seed_pipeline_equals_duckdb(app):
    source = sabot.transactions(rows=600_000, batch_rows=16384, key_cardinality=1000)
    stream = (app.stream(source, parallelism=4, event_time="event_time",
                         max_out_of_orderness=datetime.timedelta(seconds=2))
              .map(enrich, parallelism=4)
              .filter(pc.field("amount") > 0)
              .key_by("user_id")
              .window(tumbling(minutes=5))
              .aggregate(sum("amount"), sum("amount_usd"), count(), parallelism=5))
    got = stream.collect()
    assert got.column_names == ["user_id", "window_start", "window_end", "sum_amount",
                                "sum_amount_usd", "count"]

    # The reference: the same generated rows (the generator is deterministic), through DuckDB.
    generated = app.stream(source, parallelism=4).collect()
    assert generated.num_rows == 600_000
    t = generated.set_column(generated.schema.get_field_index("event_time"), "event_time",
                             pc.cast(generated["event_time"], pa.timestamp("us")))
    con = duckdb.connect()
    con.register("t", t)
    want = con.execute("""
        SELECT user_id,
               epoch_ms(time_bucket(INTERVAL 5 minute, event_time, TIMESTAMP '1970-01-01')) AS s,
               s + 300000 AS e, sum(amount) AS sa, sum(amount * 1.1) AS su, count(*) AS c
        FROM t WHERE amount > 0 GROUP BY user_id, s ORDER BY user_id, s""").fetchall()
    assert len({row[1] for row in want}) >= 2  # several windows
    starts = pc.cast(got["window_start"], pa.int64())
    ends = pc.cast(got["window_end"], pa.int64())
    got_rows = sorted(zip(got["user_id"].to_pylist(), starts.to_pylist(), ends.to_pylist(),
                          got["sum_amount"].to_pylist(), got["sum_amount_usd"].to_pylist(),
                          got["count"].to_pylist()))
    assert len(got_rows) == len(want)
    for g, w in zip(got_rows, want):
        assert g[:3] == w[:3]
        assert g[3] == pytest.approx(w[3], rel=1e-9)
        assert g[4] == pytest.approx(w[4], rel=1e-9)
        assert g[5] == w[5]


# --- sources ------------------------------------------------------------------------------------


class CStreamOnly:
    """An object that only speaks the Arrow C stream protocol."""

    def __init__(self, table):
        self.table = table

    def __arrow_c_stream__(self, requested_schema=None):
        return self.table.__arrow_c_stream__(requested_schema)


def test_in_memory_sources(app):
    t = orders(5000)
    want = sorted_rows(t, ["order_id"])
    for source in [t, t.to_reader(), CStreamOnly(t), t.to_batches(max_chunksize=700),
                   t.to_batches()[0]]:
        got = app.stream(source, parallelism=3).collect()
        assert got.schema == t.schema
        assert sorted_rows(got, ["order_id"]) == want, type(source)


def test_file_sources_path_glob_and_formats(app, tmp_path):
    t = orders(6000)
    want = sorted_rows(t, ["order_id"])
    parts = [t.slice(0, 2000), t.slice(2000, 2000), t.slice(4000, 2000)]
    for i, part in enumerate(parts):
        pq.write_table(part, tmp_path / f"part-{i}.parquet")
        feather.write_feather(part, tmp_path / f"part-{i}.arrow")
        pacsv.write_csv(part, tmp_path / f"part-{i}.csv")
    for source in [str(tmp_path / "part-*.parquet"), [str(tmp_path / f"part-{i}.parquet")
                                                       for i in range(3)],
                   str(tmp_path / "part-*.arrow"), str(tmp_path / "part-*.csv")]:
        got = app.stream(source, parallelism=2).collect()
        assert sorted_rows(got.select(t.column_names), ["order_id"]) == want, source
    # A directory of one format.
    d = tmp_path / "dir"
    d.mkdir()
    pq.write_table(t, d / "all.parquet")
    got = app.stream(str(d)).collect()
    assert sorted_rows(got, ["order_id"]) == want


def test_generator_source(app):
    got = app.stream(sabot.transactions(rows=10_000, key_cardinality=10), parallelism=2).collect()
    assert got.num_rows == 10_000
    assert got.schema.names == ["user_id", "amount", "event_time"]
    assert set(got["user_id"].to_pylist()) <= set(range(10))


def test_bad_sources_are_refused(app):
    with pytest.raises(TypeError, match="cannot read a stream"):
        app.stream(42)
    with pytest.raises(ValueError, match="file format"):
        app.stream("/nonexistent/dir/without/format").collect()


# --- operators ----------------------------------------------------------------------------------


def test_expression_map_and_filter_equal_pyarrow(app):
    t = orders()
    got = (app.stream(t, parallelism=2)
           .map({"doubled": pc.field("amount") * 2, "big": pc.field("amount") > 100},
                parallelism=3)
           .filter((pc.field("country") == "FR") & ~(pc.field("amount") < 0))
           .map(plus_one=pc.field("customer_id") + 1)
           .collect())
    mask = pc.and_(pc.equal(t["country"], "FR"), pc.invert(pc.less(t["amount"], 0)))
    want = t.filter(mask)
    want = want.append_column("doubled", pc.multiply(want["amount"], 2))
    want = want.append_column("big", pc.greater(want["amount"], 100))
    want = want.append_column("plus_one", pc.add(want["customer_id"], 1))
    assert sorted_rows(got, ["order_id"]) == sorted_rows(want, ["order_id"])


def test_text_expressions(app):
    t = orders(3000)
    got = app.stream(t).filter("amount between 0 and 10").map(x="amount * 10").collect()
    want = duck("SELECT *, amount * 10 AS x FROM t WHERE amount BETWEEN 0 AND 10", t=t)
    assert sorted_rows(got, ["order_id"]) == sorted_rows(want, ["order_id"])


def test_keyed_aggregate_equals_duckdb(app):
    t = orders()
    got = (app.stream(t, parallelism=3).key_by("customer_id")
           .aggregate(sum("amount"), count(), mean("amount"), min("amount"), max("order_id"),
                      parallelism=4)
           .collect())
    want = duck("""SELECT customer_id, sum(amount) AS sum_amount, count(*) AS count,
        avg(amount) AS mean_amount, min(amount) AS min_amount, max(order_id) AS max_order_id
        FROM t GROUP BY customer_id""", t=t)
    assert got.column_names == want.column_names
    close_rows(sorted_rows(got, ["customer_id"]), sorted_rows(want, ["customer_id"]),
               {"sum_amount", "mean_amount"})


def test_windows_equal_duckdb(app):
    n = 5000
    t = pa.table({"k": pa.array([i % 5 for i in range(n)], pa.int64()),
                  "v": pa.array([float(i) for i in range(n)]),
                  "ts": pa.array([i * 997 for i in range(n)], pa.timestamp("ms"))})
    # Sliding: 10 s windows every 5 s; each row is in the two windows starting at the multiple of
    # 5 s at or below it and 5 s before that (DuckDB does the grouping).
    got = (app.stream(t, event_time="ts").key_by("k")
           .window(sliding(datetime.timedelta(seconds=10), datetime.timedelta(seconds=5)))
           .aggregate(sum("v"), count(), parallelism=2).collect())
    rows = [(k, (i * 997) // 5000 * 5000 - shift, float(i))
            for i, k in enumerate(t["k"].to_pylist()) for shift in (0, 5000)]
    assigned = pa.table({"k": [r[0] for r in rows], "ws": [r[1] for r in rows],
                         "v": [r[2] for r in rows]})
    con = duckdb.connect()
    con.register("assigned", assigned)
    want = con.sql("SELECT k, ws, sum(v), count(*) FROM assigned GROUP BY k, ws "
                   "ORDER BY k, ws").fetchall()
    rows = sorted(zip(got["k"].to_pylist(), pc.cast(got["window_start"], pa.int64()).to_pylist(),
                      got["sum_v"].to_pylist(), got["count"].to_pylist()))
    assert rows == [tuple(r) for r in want]
    # Session: a gap of 3 s splits each key's rows where its timestamps jump.
    t2 = pa.table({"k": pa.array([1, 1, 1, 2, 2, 1], pa.int64()),
                   "ts": pa.array([0, 1000, 2000, 500, 9000, 10000], pa.timestamp("ms"))})
    got = (app.stream(t2, event_time="ts", max_out_of_orderness=datetime.timedelta(seconds=10))
           .key_by("k").window(session(seconds=3))
           .aggregate(count()).collect())
    rows = sorted(zip(got["k"].to_pylist(), got["count"].to_pylist()))
    assert rows == [(1, 1), (1, 3), (2, 1), (2, 1)]


def test_join_equals_duckdb(app):
    o = orders(5000)
    customers = pa.table({"customer_id": pa.array(range(0, 97, 2), pa.int64()),
                          "name": pa.array([f"c{i}" for i in range(0, 97, 2)])})
    for how in ["inner", "left"]:
        got = (app.stream(o, parallelism=2)
               .join(app.stream(customers), on="customer_id", how=how, parallelism=3)
               .collect())
        want = duck(f"""SELECT o.*, c.name FROM o {how} JOIN c
                        ON o.customer_id = c.customer_id""", o=o, c=customers)
        assert got.num_rows == want.num_rows, how
        assert sorted_rows(got.select(want.column_names), ["order_id"]) == \
            sorted_rows(want, ["order_id"]), how


def test_sink_writes_parquet_files(app, tmp_path):
    t = orders(10000)
    out = tmp_path / "out"
    summary = app.stream(t, parallelism=2).filter(pc.field("amount") > 0).sink(str(out) + "/",
                                                                               parallelism=3)
    assert "rows" in summary
    files = sorted(glob.glob(str(out / "*.parquet")))
    assert len(files) == 3
    got = ds.dataset(files).to_table()
    assert sorted_rows(got, ["order_id"]) == sorted_rows(t.filter(pc.greater(t["amount"], 0)),
                                                         ["order_id"])


def test_explain_and_plan(app):
    s = (app.stream(orders(10), parallelism=2).map(lambda b: b, parallelism=2)
         .filter(pc.field("amount") > 0).key_by("customer_id").aggregate(count(), parallelism=3))
    text = s.explain(print_=False)
    for word in ["table_source", "function_map", "filter", "HASH(customer_id)", "aggregate",
                 "collect_sink", "(`amount` > 0.0)"]:
        assert word in text, (word, text)
    assert '"function_map"' in s.plan_json()


def test_fan_out_one_stream_two_jobs(app):
    base = app.stream(orders(1000)).filter(pc.field("amount") > 0)
    a = base.map(x=pc.field("amount") * 2).collect()
    b = base.collect()
    assert a.num_rows == b.num_rows > 0
    assert "x" in a.column_names and "x" not in b.column_names


# --- zero copy ----------------------------------------------------------------------------------


def test_collected_columns_are_the_producers_buffers(app):
    t = pa.table({"x": pa.array(range(200_000), pa.int64()),
                  "s": pa.array([str(i % 10) for i in range(200_000)])})
    base_x = t["x"].chunk(0).buffers()[1].address
    base_s = t["s"].chunk(0).buffers()[2].address
    got = app.stream(t, batch_rows=50_000).collect()
    assert got.num_rows == t.num_rows
    offsets = []
    for chunk_x, chunk_s in zip(got["x"].chunks, got["s"].chunks):
        # Slices of the producer's arrays: the same buffers, at an offset.
        assert chunk_x.buffers()[1].address == base_x
        assert chunk_s.buffers()[2].address == base_s
        offsets.append(chunk_x.offset)
    assert sorted(offsets) == [0, 50_000, 100_000, 150_000]
    assert got.equals(t)


# --- errors -------------------------------------------------------------------------------------


def test_errors_are_sabot_errors_by_status_code(app):
    t = orders(10)
    with pytest.raises(sabot.SabotKeyError) as e:
        app.stream(t).filter("no_such_column > 1").collect()
    assert "operator 'filter' (filter)" in str(e.value)
    with pytest.raises(sabot.SabotInvalid) as e:
        app.stream(t).key_by("customer_id").aggregate(count(), parallelism=0).collect()
    assert isinstance(e.value, sabot.SabotError) and isinstance(e.value, ValueError)
    assert "parallelism" in str(e.value)
    with pytest.raises(sabot.SabotNotImplemented, match="utf8_upper"):
        app.stream(t).map(u=pc.utf8_upper(pc.field("country"))).collect()
    with pytest.raises(ValueError, match="coordinator"):
        Sabot(mode="distributed")
    # A coordinator that does not answer: the submission fails naming it.
    unreachable = Sabot(mode="distributed", coordinator="grpc+tcp://127.0.0.1:1")
    with pytest.raises(sabot.SabotError, match="coordinator at grpc"):
        unreachable.stream(sabot.transactions(rows=10)).collect()


# --- pyarrow.compute expressions: translated, then evaluated by the core ------------------------


def typed_table():
    n = 1000
    return pa.table({
        "i": pa.array([i - 500 for i in range(n)], pa.int64()),
        "i32": pa.array([i % 50 for i in range(n)], pa.int32()),
        "f": pa.array([None if i % 17 == 0 else i / 7.0 for i in range(n)], pa.float64()),
        "s": pa.array([["it's", "b\\c", "x\ny", None][i % 4] for i in range(n)]),
        "b": pa.array([i % 3 == 0 for i in range(n)]),
        "ts": pa.array([i * 1000 for i in range(n)], pa.timestamp("ms")),
        "d": pa.array([i for i in range(n)], pa.date32()),
    })


PREDICATES = [
    pc.field("i") > 0,
    (pc.field("i") >= -3) & (pc.field("i") < 40),
    (pc.field("i32") == 7) | ~pc.field("b"),
    pc.field("f").is_null(),
    pc.field("f").is_valid() & (pc.field("f") * 2.5 > 100.25),
    pc.field("s") == "it's",
    pc.field("s") == "b\\c",
    pc.field("s") == "x\ny",
    pc.field("s").isin(["it's", "x\ny"]),
    pc.field("i32").isin([1, 2, 3]),
    pc.field("ts") >= pa.scalar(500_000, pa.timestamp("ms")),
    pc.field("d") < pa.scalar(30, pa.date32()),
    pc.field("i32") - pa.scalar(3, pa.int32()) > pa.scalar(10, pa.int32()),
    pc.abs(pc.field("i")) < 5,
    pc.negate(pc.field("i")) > 490,
    pc.field("f") / 2 < -0.5e-1,
    pc.field("i") * 3 + 1 == 31,
]


@pytest.mark.parametrize("predicate", PREDICATES, ids=[str(p) for p in PREDICATES])
def test_pyarrow_predicates_equal_pyarrow(app, predicate):
    t = typed_table()
    got = app.stream(t).filter(predicate).collect()
    want = t.filter(predicate)
    assert got.num_rows == want.num_rows
    assert got.equals(want)


def test_pyarrow_projections_equal_pyarrow(app):
    t = typed_table()
    exprs = {"a": pc.field("i") * 2 - 1, "b2": pc.field("f") + 0.5,
             "d2": pc.coalesce(pc.field("f"), 0.0), "e": pc.field("i") / 7}
    got = app.stream(t).map(exprs).collect()
    want = ds.dataset(t).to_table(columns=exprs)
    for name in exprs:
        g, w = got[name].to_pylist(), want[name].to_pylist()
        assert len(g) == len(w), name
        for x, y in zip(g, w):
            assert (x is None and y is None) or x == pytest.approx(y, rel=1e-12), (name, x, y)
    # What pyarrow cannot put into Substrait (here an implicit cast) is refused, naming it; the
    # same expression as text runs.
    with pytest.raises(sabot.SabotNotImplemented, match="as text"):
        app.stream(t).map(c=pc.field("i32") * 1.5).collect()
    got = app.stream(t).map(c="i32 * 1.5").collect()
    assert got["c"].to_pylist() == [v * 1.5 for v in t["i32"].to_pylist()]


def test_a_bad_parallelism_names_the_argument():
    app = sabot.Sabot(mode="local")
    table = pa.table({"a": [1, 2]})
    for bad, words in ((10**12, "between 1 and 1024"), ("3", "must be an integer"),
                       (2.0, "must be an integer"), (True, "must be an integer"),
                       (0, "between 1 and 1024")):
        with pytest.raises(sabot.SabotInvalid) as e:
            app.stream(table, parallelism=bad).map({"b": "a + 1"}, parallelism=1).collect()
        assert words in str(e.value) and "parallelism" in str(e.value), (bad, str(e.value))
