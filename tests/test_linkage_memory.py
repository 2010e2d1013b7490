"""A first run under a small memory budget (`link(memory_limit=)`: DuckDB's share and the scoring
chunks) writes what an unbounded one writes: the same spine, decisions, identities, stored keys
and quality tables."""

from __future__ import annotations

import pytest

from outcomes.synth.generator import SynthConfig, synthesise
from tests.linkage_tables import LINK_TABLES as TABLES


@pytest.fixture(scope="module")
def population(tmp_path_factory):
    root = tmp_path_factory.mktemp("memory")
    synthesise(SynthConfig(persons=300, seed=11, start="2024-01", months=2), root)
    return root


def _first_run(population, path, **budget):
    from linkage.records import records_from_deliveries
    from linkage.run import link
    from outcomes.eventstore import connect
    from outcomes.warehouse import resolve_target

    records, last = records_from_deliveries(population / "landing")
    with connect(resolve_target(str(path))) as backend:
        result = link(backend, truth=population / "truth", records=records, as_of=last, **budget)
        setting = backend.con.execute("select current_setting('memory_limit')").fetchall()[0][0]
        with backend.transaction() as s:
            tables = {
                t: s.fetch(f"select * exclude (run_id) from {t} order by {order}").to_pylist()
                if t != "linkage.record_keys"
                else s.fetch(f"select * from {t} order by {order}").to_pylist()
                for t, order in TABLES.items()
            }
    return result, setting, tables


def test_a_first_run_under_a_small_budget_writes_what_an_unbounded_one_writes(population, tmp_path):
    unbounded, _, whole = _first_run(population, tmp_path / "unbounded.duckdb", memory_limit="none")
    small, setting, bounded = _first_run(population, tmp_path / "small.duckdb", memory_limit="512MB", chunk=200)
    assert setting == "244.0 MiB"  # DuckDB holds half the budget
    assert unbounded.chunks == 1 and small.chunks > 2  # the pairs scored in several chunks
    assert small.candidate_pairs == unbounded.candidate_pairs > 0
    counts = [(r.links, r.reviews, r.persons_new) for r in (small, unbounded)]
    assert counts[0] == counts[1]
    for table, rows in whole.items():
        assert rows, table
        assert bounded[table] == rows, table
