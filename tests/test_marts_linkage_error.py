"""On a population with the default identifier noise the marts differ from the truth only by what
the linkage gets wrong.

The independent implementation (tests/oracle) is run over each record's true person and over the
person the linkage spine gave it. The marts must equal the second exactly — so on noisy data too
the SQL is right, and every difference from the truth is the linkage's. England's rates must then
stay within what the linkage errors can move them: in a cell of n people of whom b were linked
wrong (n' and b' over the truth), |rate - true rate| <= b/n + b'/n' (tests/oracle/linkage_effect.py);
a cell with nobody linked wrong does not move at all.
"""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from outcomes.eventstore import connect
from outcomes.marts import build
from outcomes.marts.build import OUTCOME_MARTS
from outcomes.warehouse import resolve_target
from tests.oracle import compute_marts
from tests.oracle.compare import compare
from tests.oracle.linkage_effect import effect, linked_records, summary


@pytest.fixture(scope="module")
def noisy(small_population, linked_small_population):
    work, _ = linked_small_population  # ingested and linked with the ground truth (tests/conftest.py)
    target = resolve_target(str(work / "w.duckdb"))
    result = build(target)
    with connect(target) as backend:
        spine = linked_records(backend)
        with backend.transaction() as s:
            marts = {mart: s.fetch(f"select * from marts.{mart}").to_pandas() for mart in OUTCOME_MARTS}
    landing, truth = small_population / "landing", small_population / "truth" / "records.parquet"
    differences, wrong = effect(landing, truth, spine, marts, result.as_of)
    return {
        "marts": marts,
        "spine": spine,
        "linked": compute_marts(landing, spine_file(spine, work), result.as_of),
        "differences": differences,
        "wrong": wrong,
    }


def spine_file(spine, work):
    path = work / "spine.parquet"
    pq.write_table(spine, path)
    return path


def test_marts_equal_the_independent_computation_over_the_linkage_spine(noisy):
    problems = []
    for mart in OUTCOME_MARTS:
        problems += compare(noisy["marts"][mart], noisy["linked"][mart], mart)
    assert not problems, "\n".join(problems)


def test_the_linkage_errors_move_some_england_rates(noisy):
    """Not vacuous: with identifier noise some people are linked wrong and some England cell moves."""
    differences = noisy["differences"]
    assert noisy["wrong"] > 0
    assert len(differences) > 100
    assert (differences["difference"] != 0).any()


def test_england_rates_stay_within_what_the_linkage_errors_explain(noisy):
    differences = noisy["differences"]
    outside = differences[differences["difference"].abs() > differences["bound"] + 1e-12]
    assert outside.empty, outside.head().to_dict("records")
    # Cells where nobody was linked wrong do not move at all...
    untouched = differences[differences["bound"] == 0]
    assert len(untouched) > 0
    assert (untouched["difference"] == 0).all()
    # ...and the bound is tight enough to mean something: some cell uses a quarter of it.
    assert (differences["difference"].abs() >= 0.25 * differences["bound"]).where(differences["bound"] > 0).any()
    assert set(summary(differences)["rate"]) >= {"rate", "sustained_recovery_rate", "rate_at_12_months"}
