"""Linkage on a population it was not tuned to: `outcomes synth --noise 0` rewritten by the
independent error model (`errormodel`, other code and other assumptions) at its default rates.
Precision, recall per error class, namesakes kept apart.

The floors per class are what the linker reaches today (docs/linkage.md, 5,000 people), with a
margin for a smaller sample; the classes below the issue's bar (0.99) are named there: a second
person key under an alias name or date looks like a twin or a father to the model and goes to
clerical review."""

from __future__ import annotations

import pytest

from errormodel import generate
from linkage import evaluate as ev
from linkage.records import records_from_deliveries
from linkage.run import link
from outcomes.eventstore import connect
from outcomes.synth.generator import SynthConfig, synthesise
from outcomes.warehouse import resolve_target
from tests.linkage_england import through_linkage
from tests.oracle import default_as_of

# Recall floor per error class (pairs of one person's records that differ by the class).
FLOORS = {
    "dob_day_month_swap": 0.97,
    "dob_missing": 0.97,
    "dob_year_off": 0.96,
    "duplicate_key": 0.70,
    "duplicate_key_alias": 0.35,
    "forename_initial_only": 0.80,
    "nickname": 0.97,
    "person_key_missing": 0.97,
    "postcode_missing": 0.97,
    "postcode_moved": 0.97,
    "sex_unknown": 0.95,
    "surname_change_marriage": 0.95,
    "typing_error": 0.96,
}


@pytest.fixture(scope="module")
def linked(tmp_path_factory):
    work = tmp_path_factory.mktemp("errormodel")
    synthesise(SynthConfig(persons=3_000, seed=5, start="2024-01", months=12, noise=0.0), work / "clean")
    generate(work / "clean", work / "eval", scale=1.0, seed=1)
    records, as_of = records_from_deliveries(work / "eval" / "landing")
    with connect(resolve_target(str(work / "w.duckdb"))) as backend:
        link(backend, records=records, as_of=as_of)
        spine = ev.spine(backend)
    spine.to_parquet(work / "spine.parquet")
    return spine, work / "eval" / "truth"


def test_precision_for_every_source_pair(linked):
    spine, truth = linked
    q = ev.per_source_pair(spine, truth)
    assert q["precision"].min() >= 0.995, q.to_string()
    assert q["recall"].min() >= 0.95, q.to_string()


@pytest.mark.parametrize("error_class", sorted(FLOORS))
def test_recall_per_error_class(linked, error_class):
    spine, truth = linked
    by_class = ev.recall_by_class(spine, truth).set_index("error_class")
    assert error_class in by_class.index, f"no pairs of {error_class} in this sample"
    assert by_class.loc[error_class, "recall"] >= FLOORS[error_class], by_class.to_string()


def test_england_figures_through_the_linkage_are_within_one_percent_of_the_truth(linked):
    """Proven reoffending (cohort, reoffenders), drug poisoning deaths by treatment status and
    person-years after treatment, by the oracle over the spine and over the truth. On 3,000
    people a figure under a hundred moves by a whole person for one missed link, so those may
    be off by one person at most."""
    _, truth = linked
    work = truth.parent.parent
    figures = through_linkage(
        work / "eval" / "landing", truth, work / "spine.parquet", default_as_of(work / "eval" / "landing")
    )
    assert len(figures) >= 6
    allowed = (0.01 * figures["truth"]).clip(lower=1.0)
    off = figures[(figures["linked"] - figures["truth"]).abs() > allowed]
    assert off.empty, figures.to_string()


def test_namesakes_stay_apart(linked):
    spine, truth = linked
    names = ev.namesake_false_links(spine, truth)
    assert len(names) > 0
    assert not names["joined"].any(), names[names["joined"]].to_string()
