"""The Spark engine (OUTCOMES_LINK_ENGINE=spark, linkage.spark) writes what the local engine
writes: the same spine (link events, identities), decisions, blocking statistics and quality
table, for a first run (training the model) and a monthly run (new records, the stored model).
One Spark session (local[2]) for the module."""

from __future__ import annotations

import datetime as dt
import shutil

import pytest

from outcomes.synth.generator import SynthConfig, synthesise

TABLES = {
    "linkage.link_events": "run_id, source, record_id, event, person_id",
    "linkage.identities": "source, record_id",
    "linkage.pair_decisions": "run_id, left_source, left_record_id, right_source, right_record_id, decision",
    "linkage.quality": "run_id, source_a, source_b",
    "linkage.blocking_passes": "run_id, pass_order",
}
FIRST = dt.date(2024, 2, 29)  # the first run links the first two months; the second, the third


@pytest.fixture(scope="module")
def spark():
    from linkage.spark.session import spark_session

    session = spark_session("local[2]", {"spark.sql.shuffle.partitions": "2", "spark.default.parallelism": "2"})
    yield session
    session.stop()


@pytest.fixture(scope="module")
def ingested(tmp_path_factory):
    from outcomes.eventstore import connect
    from outcomes.ingest import Ingestor
    from outcomes.warehouse import resolve_target

    root = tmp_path_factory.mktemp("spark")
    synthesise(SynthConfig(persons=300, seed=8, start="2024-01", months=3), root / "synth")
    with connect(resolve_target(str(root / "w" / "outcomes.duckdb"))) as backend:
        Ingestor(backend, root / "archive").ingest(root / "synth" / "landing")
    return root


def _link_twice(folder, truth, engine) -> list:
    from outcomes.eventstore import connect
    from outcomes.warehouse import resolve_target

    with connect(resolve_target(str(folder / "outcomes.duckdb"))) as backend:
        return [engine(backend, truth=truth, as_of=FIRST), engine(backend, truth=truth)]


def _tables(folder) -> dict:
    from outcomes.eventstore import connect
    from outcomes.warehouse import resolve_target

    with connect(resolve_target(str(folder / "outcomes.duckdb"))) as backend, backend.transaction() as s:
        return {t: s.fetch(f"select * from {t} order by {order}").to_pylist() for t, order in TABLES.items()}


def test_spark_engine_writes_what_the_local_engine_writes(ingested, spark, tmp_path):
    from linkage.run import link
    from linkage.spark.engine import link_spark

    local, distributed = tmp_path / "local", tmp_path / "spark"
    shutil.copytree(ingested / "w", local)
    shutil.copytree(ingested / "w", distributed)
    truth = ingested / "synth" / "truth"
    expected = _link_twice(local, truth, link)
    got = _link_twice(distributed, truth, lambda b, **kw: link_spark(b, spark=spark, work=tmp_path / "work", **kw))

    for one, other in zip(expected, got, strict=True):
        assert other.records_new > 0 and other.links > 0  # each run had something to link
        fields = ("records_new", "candidate_pairs", "links", "reviews", "merges", "splits", "persons_new")
        assert [getattr(other, f) for f in fields] == [getattr(one, f) for f in fields]
        assert other.blocking == one.blocking
    assert got[1].records_new < got[0].records_new  # the second run linked only the new month
    a, b = _tables(local), _tables(distributed)
    for table in TABLES:
        assert b[table] == a[table], table
    assert not any((tmp_path / "work").iterdir())  # the identities' Parquet is removed after each run
