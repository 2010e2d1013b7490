"""The Spark engine (OUTCOMES_LINK_ENGINE=spark, linkage.spark) writes what the local engine
writes: the same spine (link events, identities), decisions, blocking statistics and quality
table, for a first run (training the model) and a monthly run (new records, the stored model).
One Spark session (local[2]) for the module."""

from __future__ import annotations

import datetime as dt

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
def population(tmp_path_factory):
    root = tmp_path_factory.mktemp("spark")
    synthesise(SynthConfig(persons=300, seed=8, start="2024-01", months=3), root)
    return root


def _link_twice(folder, population, engine) -> list:
    """Into a fresh warehouse: the first two months, then everything (the third month new)."""
    from linkage.records import records_from_deliveries
    from outcomes.eventstore import connect
    from outcomes.warehouse import resolve_target

    landing, truth = population / "landing", population / "truth"
    with connect(resolve_target(str(folder / "outcomes.duckdb"))) as backend:
        first = engine(backend, truth=truth, as_of=FIRST, records=records_from_deliveries(landing, FIRST)[0])
        records, last = records_from_deliveries(landing)
        return [first, engine(backend, truth=truth, as_of=last, records=records)]


def _tables(folder) -> dict:
    from outcomes.eventstore import connect
    from outcomes.warehouse import resolve_target

    with connect(resolve_target(str(folder / "outcomes.duckdb"))) as backend, backend.transaction() as s:
        return {t: s.fetch(f"select * from {t} order by {order}").to_pylist() for t, order in TABLES.items()}


def test_spark_engine_writes_what_the_local_engine_writes(population, spark, tmp_path):
    from linkage.run import link
    from linkage.spark.engine import link_spark

    local, distributed = tmp_path / "local", tmp_path / "spark"
    expected = _link_twice(local, population, link)
    got = _link_twice(distributed, population, lambda b, **kw: link_spark(b, spark=spark, work=tmp_path / "work", **kw))

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
