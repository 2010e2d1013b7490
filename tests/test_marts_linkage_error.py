"""On a population with the default identifier noise the marts differ from the truth only by what
the linkage gets wrong.

The independent implementation (tests/oracle) is run twice: with each record's true person, and
with the person the linkage spine gave it. The marts must equal the second exactly — so on noisy
data too the SQL is right, and every difference from the truth is the linkage's. England's rates
must then stay within what the linkage errors can move them: a rate k/n changes only through the
people the linkage split or merged, so |rate - true rate| <= 2 c / n, with c the number of those
people (true persons not found as exactly one spine person, and spine persons holding records of
more than one true person). The differences are reported (python -m tests.oracle.linkage_effect).
"""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from linkage.run import link
from outcomes.eventstore import connect
from outcomes.ingest import Ingestor
from outcomes.marts import build
from outcomes.marts.build import OUTCOME_MARTS
from outcomes.warehouse import resolve_target
from tests.oracle import compute_marts
from tests.oracle.compare import compare
from tests.oracle.linkage_effect import england_rate_differences, linked_records, misclustered_people


@pytest.fixture(scope="module")
def noisy(small_population, tmp_path_factory):
    work = tmp_path_factory.mktemp("linkage_error")
    target = resolve_target(str(work / "w.duckdb"))
    with connect(target) as backend:
        Ingestor(backend, work / "archive").ingest(small_population / "landing")
        link(backend, truth=small_population / "truth")
    result = build(target)
    spine = work / "spine.parquet"
    with connect(target) as backend:
        pq.write_table(linked_records(backend), spine)
        marts = {}
        with backend.transaction() as s:
            for mart in OUTCOME_MARTS:
                marts[mart] = s.fetch(f"select * from marts.{mart}").to_pandas()
    landing = small_population / "landing"
    return {
        "marts": marts,
        "linked": compute_marts(landing, spine, result.as_of),
        "true": compute_marts(landing, small_population / "truth", result.as_of),
        "misclustered": misclustered_people(spine, small_population / "truth" / "records.parquet"),
    }


def test_marts_equal_the_independent_computation_over_the_linkage_spine(noisy):
    problems = []
    for mart in OUTCOME_MARTS:
        problems += compare(noisy["marts"][mart], noisy["linked"][mart], mart)
    assert not problems, "\n".join(problems)


def test_the_linkage_errors_move_the_marts(noisy):
    """Not vacuous: with identifier noise the spine is imperfect and some England cell moves."""
    assert noisy["misclustered"] > 0
    differences = england_rate_differences(noisy["marts"], noisy["true"])
    assert (differences["difference"].abs() > 0).any()


def test_england_rates_stay_within_what_the_linkage_errors_explain(noisy):
    differences = england_rate_differences(noisy["marts"], noisy["true"])
    assert len(differences) > 100
    bound = 2 * noisy["misclustered"] / differences["denominator"]
    outside = differences[differences["difference"].abs() > bound + 1e-12]
    assert outside.empty, outside.head().to_dict("records")
    # And in practice far inside it: at this noise, half the England cells do not move at all.
    assert (differences["difference"] == 0).mean() >= 0.5
