"""Linkage on a population it was not tuned to: `outcomes synth --noise 0` rewritten by the
independent error model (`errormodel`, other code and other assumptions) at its default rates.
Precision, recall per error class, namesakes kept apart.

The floors per class are what the linker reaches today on this 3,000-person population (link at
probability 0.95), less a margin: they catch a regression, they are not the issue's bar (0.99),
which the two second-key classes do not reach (docs/linkage.md has the 20,000-person figures). A
second person key under an alias forename is, to the comparisons and to the persons' sources, a
twin; the learned probability that such a pair is one person (0.86 here for a lone second PNC
id, 0.91 at 20,000 people) is below the link level, so these pairs go to clerical review."""

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
    "dob_day_month_swap": 0.98,
    "dob_missing": 0.98,
    "dob_year_off": 0.98,
    "duplicate_key": 0.84,
    "duplicate_key_alias": 0.65,
    "forename_initial_only": 0.98,
    "nickname": 0.98,
    "person_key_missing": 0.98,
    "postcode_missing": 0.98,
    "postcode_moved": 0.98,
    "sex_unknown": 0.97,
    "surname_change_marriage": 0.98,
    "typing_error": 0.98,
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
    assert q["recall"].min() >= 0.96, q.to_string()


@pytest.mark.parametrize("error_class", sorted(FLOORS))
def test_recall_per_error_class(linked, error_class):
    spine, truth = linked
    by_class = ev.recall_by_class(spine, truth).set_index("error_class")
    assert error_class in by_class.index, f"no pairs of {error_class} in this sample"
    assert by_class.loc[error_class, "recall"] >= FLOORS[error_class], by_class.to_string()


def _figures(linked):
    _, truth = linked
    work = truth.parent.parent
    landing = work / "eval" / "landing"
    return through_linkage(landing, truth, work / "spine.parquet", default_as_of(landing))


def test_england_deaths_person_years_and_reoffenders_through_the_linkage(linked):
    """Person-years after treatment and the proven reoffenders within 1% of the truth; drug
    poisoning deaths by treatment status (counts under a hundred here) within one death."""
    figures = _figures(linked)
    assert len(figures) >= 6
    years = figures[figures["figure"].str.startswith("person-years")]
    assert len(years) == 1 and (years["relative_difference"].abs() <= 0.01).all(), figures.to_string()
    reoffenders = figures[figures["figure"].str.endswith("reoffenders")]
    assert len(reoffenders) >= 1 and (reoffenders["relative_difference"].abs() <= 0.01).all(), figures.to_string()
    deaths = figures[figures["figure"].str.startswith("drug poisoning deaths")]
    assert len(deaths) >= 3 and ((deaths["linked"] - deaths["truth"]).abs() <= 1).all(), figures.to_string()
    # the cohort: within 2% (regression check); the 1% is the test below
    cohort = figures[figures["figure"].str.endswith("cohort")]
    assert len(cohort) >= 1 and (cohort["relative_difference"].abs() <= 0.02).all(), figures.to_string()


def test_england_cohort_through_the_linkage_within_one_percent(linked):
    """Issue 11's bar for the reoffending cohort, through the linkage alone (178 of 179 here). It
    was 177 (-1.1%, an xfail) while the lone second PNC ids whose records follow the person's
    (`single-later:convictions`, 18 pairs here) were shrunk towards the twins' configurations and
    went to review; shrunk towards their kind in time (`linkage.cluster.relative_probabilities`)
    they link."""
    figures = _figures(linked)
    cohort = figures[figures["figure"].str.endswith("cohort")]
    assert len(cohort) >= 1
    assert (cohort["relative_difference"].abs() <= 0.01).all(), figures.to_string()


def test_namesakes_stay_apart(linked):
    spine, truth = linked
    names = ev.namesake_false_links(spine, truth)
    assert len(names) > 0
    assert not names["joined"].any(), names[names["joined"]].to_string()


@pytest.fixture(scope="module")
def reviewed(linked):
    """The same warehouse after one round of clerical review: the queue the run left decided as
    reviewers who get every pair right would, imported, and applied by the next run."""
    _, truth = linked
    work = truth.parent.parent
    records, as_of = records_from_deliveries(work / "eval" / "landing")
    with connect(resolve_target(str(work / "w.duckdb"))) as backend:
        decided = ev.review_from_truth(backend, truth, as_of, work / "review.csv")
        link(backend, records=records, as_of=as_of)
        spine = ev.spine(backend)
    spine.to_parquet(work / "spine_reviewed.parquet")
    return spine, decided


def test_england_through_the_linkage_and_one_round_of_review_within_one_percent(linked, reviewed):
    """Issue 11's bar for England's figures holds once the review queue is worked: what the
    linkage alone leaves (second keys that look like twins, test above) is in the queue, and the
    decisions bring the cohort, reoffenders and person-years within 1% of the truth; precision
    stays at the bar."""
    spine, decided = reviewed
    _, truth = linked
    assert decided > 0
    work = truth.parent.parent
    landing = work / "eval" / "landing"
    figures = through_linkage(landing, truth, work / "spine_reviewed.parquet", default_as_of(landing))
    moved = figures[figures["figure"].str.startswith(("reoffending", "person-years"))]
    assert len(moved) >= 3 and (moved["relative_difference"].abs() <= 0.01).all(), figures.to_string()
    q = ev.per_source_pair(spine, truth)
    assert q["precision"].min() >= 0.995 and q["recall"].min() >= 0.99, q.to_string()
