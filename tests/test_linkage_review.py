"""Clerical review end to end: the queue exported (CSV and HTML, no tokens), decisions imported
through the command, applied by the next run and never overridden; a reviewer's non-match
splits a person (a split link event, a new person id); the spine as of a date before each
decision is unchanged."""

from __future__ import annotations

import csv
import datetime as dt

import pandas as pd
import pytest
from typer.testing import CliRunner

from linkage.records import records_from_deliveries
from linkage.run import link
from linkage.schema import spine_as_of_sql
from outcomes.cli import app
from outcomes.eventstore import connect
from outcomes.synth.generator import SynthConfig, synthesise
from outcomes.warehouse import resolve_target

runner = CliRunner()


@pytest.fixture(scope="module")
def population(tmp_path_factory):
    out = tmp_path_factory.mktemp("review") / "pop"
    synthesise(SynthConfig(persons=1_500, seed=11, start="2024-01", months=6), out)
    return out


def _spine(backend, as_of=None) -> pd.DataFrame:
    with backend.transaction() as s:
        if as_of is None:
            t = s.fetch("select source, record_id, person_id from linkage.person_records")
        else:
            t = s.fetch(spine_as_of_sql(), {"as_of": as_of})
    return t.to_pandas().sort_values(["source", "record_id"]).reset_index(drop=True)


def _person(spine: pd.DataFrame, source: str, record_id: str) -> str:
    return spine.loc[(spine["source"] == source) & (spine["record_id"] == record_id), "person_id"].item()


def test_review_round_trip_and_split(population, tmp_path):
    warehouse = str(tmp_path / "w.duckdb")
    truth = pd.read_parquet(population / "truth" / "records.parquet", columns=["source", "record_id", "person_id"])
    true_person = dict(zip(zip(truth["source"], truth["record_id"], strict=True), truth["person_id"], strict=True))
    early, early_day = records_from_deliveries(population / "landing", as_of=dt.date(2024, 5, 31))
    everything, last_day = records_from_deliveries(population / "landing")
    with connect(resolve_target(warehouse)) as backend:
        first = link(backend, records=early, as_of=early_day)
        assert first.reviews > 0
        before = _spine(backend)
        with backend.transaction() as s:
            tokens = s.fetch("select forename_token, surname_token, source_person_key from linkage.identities")
            linked = s.fetch(
                "select left_source, left_record_id, right_source, right_record_id from linkage.pair_decisions "
                "where decision = 'link' order by weight desc limit 1"
            ).to_pylist()[0]

    # The queue, as CSV to fill in and as HTML to read: levels and weights, no token or key.
    queue_csv, queue_html = tmp_path / "queue.csv", tmp_path / "queue.html"
    for path in (queue_csv, queue_html):
        res = runner.invoke(app, ["review", "export", "--out", str(path), "--warehouse", warehouse])
        assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(queue_csv.open()))
    assert len(rows) > 0 and {"forename_level", "forename_weight", "key_weight", "left_birth_year"} <= set(rows[0])
    # one pair per two persons, each still two (linkage.cluster.review_queue, linkage.review.queue)
    persons = [
        tuple(sorted(_person(before, row[f"{side}_source"], row[f"{side}_record_id"]) for side in ("left", "right")))
        for row in rows
    ]
    assert len(set(persons)) == len(rows) and all(a != b for a, b in persons)
    # below the link level, only pairs the model holds one person at least as likely as two
    below = [float(row["probability"]) for row in rows if row["reason"].startswith("weight between")]
    assert all(p >= 0.5 for p in below)
    text = queue_csv.read_text() + queue_html.read_text()
    secrets = {v for col in tokens.column_names for v in tokens[col].to_pylist() if v}
    assert not [v for v in secrets if v in text]
    assert "<table" in queue_html.read_text() and "<script" not in queue_html.read_text()

    # Decide every queued pair from the truth; and say "non-match" of a pair the model linked.
    decided_at = dt.datetime(2024, 6, 15, 10, 30)
    for row in rows:
        same = (
            true_person[(row["left_source"], row["left_record_id"])]
            == true_person[(row["right_source"], row["right_record_id"])]
        )
        row.update(decision="match" if same else "non-match", reviewer="reviewer-a", decided_at=decided_at.isoformat())
    split_pair = {**{k: "" for k in rows[0]}, **linked, "decision": "non-match", "reviewer": "reviewer-b"}
    split_pair["decided_at"] = decided_at.isoformat()
    bad = {**split_pair, "left_record_id": "NO-SUCH-RECORD", "decision": "non-match"}
    undecided = {**split_pair, "decision": ""}
    with queue_csv.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows([*rows, split_pair, bad, undecided])
    res = runner.invoke(app, ["review", "import", str(queue_csv), "--warehouse", warehouse])
    assert res.exit_code == 0, res.output
    assert f"{len(rows) + 1} decisions recorded, 1 rows left undecided, 1 rejected" in res.output
    assert "names a record the linkage does not hold" in res.output

    with connect(resolve_target(warehouse)) as backend:
        # The spine before any decision is applied is the first run's.
        assert _spine(backend).equals(before)
        second = link(backend, records=everything, as_of=last_day)  # new records and the decisions
        after = _spine(backend)
        assert second.splits > 0
        held = set(zip(everything["source"], everything["record_id"], strict=True))
        for row in rows:
            if not {(row["left_source"], row["left_record_id"]), (row["right_source"], row["right_record_id"])} <= held:
                continue  # a record withdrawn since (gone from the later snapshot): nothing to decide
            a = _person(after, row["left_source"], row["left_record_id"])
            b = _person(after, row["right_source"], row["right_record_id"])
            assert (a == b) == (row["decision"] == "match"), row["pair"]
        left = _person(after, linked["left_source"], linked["left_record_id"])
        right = _person(after, linked["right_source"], linked["right_record_id"])
        assert left != right
        was = _person(before, linked["left_source"], linked["left_record_id"])
        assert was in (left, right)  # one part keeps the id, the other is a new person
        with backend.transaction() as s:
            events = s.fetch(
                "select event, decided_by, as_of, person_id, previous_person_id from linkage.link_events "
                "where run_id = :run and event = 'split'",
                {"run": second.run_id},
            ).to_pandas()
        assert len(events) == second.splits and set(events["decided_by"]) == {"review"}
        assert (events["previous_person_id"] == was).any()
        assert (pd.to_datetime(events["as_of"]).dt.date >= decided_at.date()).all()
        # As of a day before the decisions (and the new records), the spine is the first run's.
        assert _spine(backend, dt.date(2024, 6, 14)).equals(before)

        # No later model run overrides a decision: a retrained model with nothing new to link.
        third = link(backend, records=everything, as_of=last_day, retrain=True)
        assert third.records_new == 0
        assert _spine(backend).equals(after)

    # A later decision joins the split parts again: a merge by review, as a link event.
    again = tmp_path / "again.csv"
    with again.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=[*linked, "decision", "reviewer", "decided_at"])
        w.writeheader()
        w.writerow({**linked, "decision": "match", "reviewer": "reviewer-c", "decided_at": "2024-07-01T09:00:00"})
    assert runner.invoke(app, ["review", "import", str(again), "--warehouse", warehouse]).exit_code == 0
    with connect(resolve_target(warehouse)) as backend:
        fourth = link(backend, records=everything, as_of=last_day)
        final = _spine(backend)
        assert _person(final, linked["left_source"], linked["left_record_id"]) == _person(
            final, linked["right_source"], linked["right_record_id"]
        )
        assert fourth.merges > 0
        assert _spine(backend, dt.date(2024, 6, 30)).equals(after)


def test_import_refuses_a_file_without_the_columns(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("pair,decision\nx,match\n")
    res = runner.invoke(app, ["review", "import", str(path), "--warehouse", str(tmp_path / "w.duckdb")])
    assert res.exit_code == 2
    assert "lacks the columns" in res.output
