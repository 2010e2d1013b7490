"""The dbt marts equal the independent Python implementation (tests/oracle) on a noise-free
population, for every period end and two as-of dates, on DuckDB and on PostgreSQL; and on
PostgreSQL a researcher reads `research` and `published` but not `linkage` or `events`."""

from __future__ import annotations

import re

import pandas as pd
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from linkage.run import link
from linkage.schema import spine_as_of_sql
from outcomes.eventstore import connect
from outcomes.ingest import Ingestor
from outcomes.marts import build, publish
from outcomes.marts.build import OUTCOME_MARTS
from outcomes.warehouse import resolve_target
from tests.backends import warehouse_target
from tests.deliveries import copy_until, extract_dates
from tests.oracle import compute_marts
from tests.oracle.compare import compare


@pytest.fixture(scope="module", params=["duckdb", "postgres"])
def built(request, clean_population, tmp_path_factory):
    """The noise-free population ingested and linked month by month up to two as-of dates."""
    work = tmp_path_factory.mktemp(f"oracle_{request.param}")
    landing = clean_population / "landing"
    dates = extract_dates(landing)
    middle = dates[len(dates) // 2]
    with warehouse_target(request.param, work) as value:
        target = resolve_target(value)
        for last in (middle, dates[-1]):
            step = copy_until(landing, work / f"landing_{last}", last)
            with connect(target) as backend:
                Ingestor(backend, work / "archive").ingest(step)
                link(backend, truth=clean_population / "truth")
        yield {"kind": request.param, "target": target, "dates": (middle, dates[-1]), "work": work}


def test_marts_equal_the_independent_computation(built, clean_population):
    """Built as of the middle and then the latest date, on DuckDB and on PostgreSQL: the second
    build is incremental (the marts kept per cell, docs/marts.md), the first a full one."""
    middle, latest = built["dates"]
    dates = {"middle": middle, "latest": latest}
    problems = []
    for which, as_of_text in dates.items():
        result = build(built["target"], as_of=pd.Timestamp(as_of_text).date())
        assert result.mode == ("full" if which == "middle" else "incremental"), (which, result.plan)
        # The oracle over the spine as of the build (the person map the marts use): a calibrated
        # linker sends a few noise-free pairs to clerical review (people move), so the truth's map
        # would test the linkage here too (tests/test_linkage.py does, tests/test_marts_linkage_error.py
        # bounds its effect).
        with connect(built["target"]) as backend, backend.transaction() as s:
            spine = s.fetch(spine_as_of_sql(), {"as_of": result.as_of})
        pq.write_table(spine, built["work"] / f"spine_{which}.parquet")
        oracle = compute_marts(clean_population / "landing", built["work"] / f"spine_{which}.parquet", result.as_of)
        with connect(built["target"]) as backend, backend.transaction() as s:
            for mart in OUTCOME_MARTS:
                frame = s.fetch(f"select * from marts.{mart}").to_pandas()
                assert len(frame), (which, mart)
                problems += [f"{which}: {p}" for p in compare(frame, oracle[mart], mart)]
                periods = frame["period_end"].nunique() if "period_end" in frame else 0
                assert mart not in ("successful_completion", "treatment_flow") or periods >= 6, (which, mart)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("built", ["postgres"], indirect=True)  # DuckDB is a single-user file: no roles
def test_a_researcher_reads_research_and_published_but_not_linkage_or_events(built):
    target = built["target"]
    build(target)
    publish(target)
    url = sa.engine.make_url(target.value)
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    user = f"researcher_{url.database[-12:]}"
    with admin.connect() as con:
        con.exec_driver_sql(f"create role {user} login in role outcomes_researcher")
    try:
        researcher = sa.create_engine(url.set(username=user))
        with researcher.connect() as con:
            assert con.exec_driver_sql("select count(*) from research.sustained_recovery").scalar() > 0
            assert con.exec_driver_sql("select count(*) from published.successful_completion").scalar() > 0
        for forbidden in ("linkage.person_records", "linkage.identities", "events.treatment", "marts.treatment_flow"):
            with researcher.connect() as con, pytest.raises(sa.exc.ProgrammingError, match="permission denied"):
                con.exec_driver_sql(f"select count(*) from {forbidden}")
        researcher.dispose()
    finally:
        with admin.connect() as con:
            con.exec_driver_sql(f"drop owned by {user}")
            con.exec_driver_sql(f"drop role {user}")
        admin.dispose()


@pytest.mark.parametrize("built", ["postgres"], indirect=True)
def test_a_second_publish_on_postgresql_reads_the_memo_and_publishes_the_same_tables(built):
    """outcomes publish twice with the same marts: the second takes every component's solution
    from disclosure.solved_components (none solved again) and its published tables are the first's."""
    target = built["target"]
    build(target)
    first = publish(target)
    with connect(target) as backend, backend.transaction() as s:
        memo = s.scalar("select count(*) from disclosure.solved_components")
    second = publish(target)
    solved, reused = (int(n.replace(",", "")) for n in re.findall(r"([\d,]+) (?:solved|reused)", second.disclosure[1]))
    assert memo > 0 and solved == 0 and reused > 0, second.disclosure[1]
    assert second.hashes == first.hashes and len(first.hashes) == 23


@pytest.mark.parametrize("built", ["postgres"], indirect=True)
def test_a_build_on_postgresql_leaves_no_dead_rows_behind(built):
    """An incremental build deletes rows in place (replace_all, replace_changed, write_changed_rows):
    the build vacuums the tables it left dead rows in (increments.vacuum_dead_rows), so a month's
    build does not leave the next one a table of dead rows to scan, with autovacuum off or behind."""
    target = built["target"]
    build(target)
    result = build(target)
    assert result.mode == "incremental"
    with connect(target) as backend, backend.transaction() as s:
        dead = s.fetch(
            "select schemaname || '.' || relname as t, n_dead_tup from pg_stat_user_tables "
            "where schemaname in ('staging', 'intermediate', 'marts', 'research', 'marts_state') and n_dead_tup > 0"
        ).to_pylist()
        analyzed = s.scalar(
            "select count(*) from pg_stat_user_tables where schemaname = 'intermediate' "
            "and relname = 'int_periods' and last_analyze is not null"
        )
    assert dead == [] and analyzed == 1
