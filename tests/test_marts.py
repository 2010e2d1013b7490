"""Outcome marts: dbt builds as of a date, byte-identical rebuilds, publication safe to release.

One warehouse is built once per module: the first half of a population's deliveries is ingested,
linked and built as of its last extract date (a full build); then the rest arrives and is linked,
a past date is linked after it, a reviewer's non-match splits a person, and the same date is
rebuilt and the latest date built (incremental builds), then the latest again in full.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
import shutil

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from linkage.review import import_decisions
from linkage.run import link
from outcomes.eventstore import connect
from outcomes.ingest import Ingestor
from outcomes.marts import build, increments, publish
from outcomes.marts.build import MARTS, hash_tables, node_name
from outcomes.marts.increments import begin, plan_build
from outcomes.warehouse import resolve_target
from outcomes.warehouse.target import WarehouseError
from tests.deliveries import copy_until, extract_dates
from tests.disclosure_attack import COUNTS, LABELS, RELATIONS, LinkedSystem, narrowed_published, recovered_cells

ENGLAND = "E92000001"


@pytest.fixture(scope="module")
def warehouse(small_population, tmp_path_factory):
    work = tmp_path_factory.mktemp("marts")
    target = resolve_target(str(work / "w.duckdb"))
    landing = small_population / "landing"
    dates = extract_dates(landing)
    first = dates[len(dates) // 2 - 1]
    with connect(target) as backend:
        Ingestor(backend, work / "archive").ingest(copy_until(landing, work / "early", first))
        link(backend, truth=small_population / "truth")
    early = build(target)
    early_published = publish(target)  # the next publish reuses what this one solved
    with connect(target) as backend:
        Ingestor(backend, work / "archive").ingest(landing)
        link(backend, truth=small_population / "truth")
        link(backend, as_of=_date(dates[-3]))  # a past date linked after a later one
        split = _split_a_person(backend, work / "review.csv", _date(dates[-1]))
        link(backend)  # applies the decision: split link events as of the latest date
    again = build(target, as_of=early.as_of)
    before = _rows(target, KEPT_MODELS)
    _mark_marts(target)
    latest = build(target)
    marks = _marks(target)
    after = _rows(target, KEPT_MODELS)
    changed = "person_id in (select person_id from marts_state.changed_persons)"
    in_scope = _rows(target, KEPT_MODELS, f"{changed} or period_end > date '{early.as_of}'")
    with connect(target) as backend:
        inner, _ = hash_tables(backend, ("staging", "intermediate"))
        with backend.transaction() as s:
            left_behind = s.scalar(
                "select count(*) from information_schema.tables where table_schema = 'marts_state' "
                "and (table_name like '%replaced' or table_name like '%added')"
            )
            recomputed = set(s.fetch("select person_id from marts_state.changed_persons").column(0).to_pylist())
            comments = s.fetch(
                "select t.table_name, t.comment as table_comment, c.column_name, c.comment as column_comment "
                "from duckdb_tables() t join duckdb_columns() c using (schema_name, table_name) "
                "where t.schema_name in ('staging', 'intermediate', 'research')"
            ).to_pandas()
    full = build(target, full_refresh=True)
    with connect(target) as backend:
        full_inner, _ = hash_tables(backend, ("staging", "intermediate"))
    published = publish(target)
    return {
        "target": target,
        "early": early,
        "again": again,
        "latest": latest,
        "full": full,
        "inner": (inner, full_inner),
        "split": split,
        "recomputed": recomputed,
        "published": published,
        "early_published": early_published,
        "comments": comments,
        "marks": marks,
        "left_behind": left_behind,
        "kept_rows": (before, after, in_scope),
    }


KEPT_MODELS = (
    "int_persons_in_treatment",
    "int_journey_flows",
    "int_reoffending_cohort",
    "int_sustained_recovery_cohort",
    "int_benefits_cohort",
)


def _rows(target, models, where: str = "true") -> dict[str, int]:
    with connect(target) as backend, backend.transaction() as s:
        return {m: int(s.scalar(f"select count(*) from intermediate.{m} where {where}")) for m in models}


MARK = "a table the incremental build did not replace"


def _mark_marts(target) -> None:
    """A comment on every mart table, which a table dbt creates anew replaces with its description."""
    with connect(target) as backend, backend.transaction() as s:
        for mart in MARTS:
            s.execute(f"comment on table marts.{mart} is '{MARK}'")


def _marks(target) -> dict[str, bool]:
    with connect(target) as backend, backend.transaction() as s:
        rows = s.fetch("select table_name, comment from duckdb_tables() where schema_name = 'marts'").to_pylist()
    return {r["table_name"]: r["comment"] == MARK for r in rows}


def _date(yyyymmdd: str) -> dt.date:
    return dt.datetime.strptime(yyyymmdd, "%Y%m%d").date()


def _split_a_person(backend, path, day: dt.date) -> dict:
    """A reviewer's non-match of two treatment records the model linked, decided on `day`; their
    person before the split."""
    with backend.transaction() as s:
        pair = s.fetch(
            "select d.left_source, d.left_record_id, d.right_source, d.right_record_id, p.person_id "
            "from linkage.pair_decisions d join linkage.person_records p "
            "on p.source = d.left_source and p.record_id = d.left_record_id "
            "where d.decision = 'link' and d.left_source = 'treatment' and d.right_source = 'treatment' "
            "order by d.weight desc, d.left_record_id limit 1"
        ).to_pylist()[0]
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=[*list(pair)[:4], "decision", "reviewer", "decided_at"])
        w.writeheader()
        w.writerow(
            {
                **{k: pair[k] for k in list(pair)[:4]},
                "decision": "non-match",
                "reviewer": "r",
                "decided_at": f"{day}T12:00",
            }
        )
    assert import_decisions(backend, path).recorded == 1
    return pair


def _fetch(target, sql: str) -> pd.DataFrame:
    with connect(target) as backend, backend.transaction() as s:
        return s.fetch(sql).to_pandas()


def test_build_as_of_a_past_date_is_byte_identical_after_later_deliveries(warehouse):
    early, again, latest = warehouse["early"], warehouse["again"], warehouse["latest"]
    assert early.as_of < latest.as_of
    assert set(early.hashes) == {f"marts.{m}" for m in MARTS} | {
        "research.sustained_recovery",
        "research.reoffending",
        "research.deaths_after_treatment",
    }
    assert again.hashes == early.hashes
    # ...and the later deliveries did change what is known now.
    assert latest.hashes["marts.successful_completion"] != early.hashes["marts.successful_completion"]


def test_an_incremental_build_gives_the_tables_of_a_full_build(warehouse):
    early, again, latest, full = (warehouse[k] for k in ("early", "again", "latest", "full"))
    assert early.mode == "full" and "no complete earlier build" in early.plan
    assert again.mode == latest.mode == "incremental"
    assert f"incremental build since {early.as_of}" in latest.plan
    assert full.mode == "full" and "--full-refresh" in full.plan
    assert latest.hashes == full.hashes
    inner, full_inner = warehouse["inner"]
    assert len(inner) >= 15 and inner == full_inner  # staging and intermediate, row for row


KEPT_PER_CELL = (
    "successful_completion",
    "treatment_flow",
    "sustained_recovery",
    "proven_reoffending",
    "convictions_before_after",
    "benefits_outcome",
)


def test_an_incremental_build_keeps_the_period_marts_per_cell(warehouse):
    """The period marts of an incremental build are the tables of the last build with the cells
    the changed rows fall in rewritten (not new tables), and the person-level rows those replaced
    were kept for it; the result is a full build's (test above)."""
    marks = warehouse["marks"]
    assert warehouse["latest"].mode == "incremental"
    # Every mart table stays: the six kept per cell, the three others with every row replaced.
    assert {mart for mart, kept in marks.items() if kept} == set(MARTS)
    replaced = warehouse["latest"].replaced
    assert set(replaced) == {
        "int_persons_in_treatment",
        "int_journey_flows",
        "int_reoffending_cohort",
        "int_sustained_recovery_cohort",
        "int_benefits_cohort",
    }
    assert all(replaced[m] > 0 for m in ("int_persons_in_treatment", "int_journey_flows", "int_reoffending_cohort"))
    assert warehouse["left_behind"] == 0  # their copies are dropped when the build ends
    assert warehouse["early"].replaced == {}  # a full build replaces nothing


def test_an_incremental_build_writes_only_the_person_level_rows_that_differ(warehouse):
    """The models kept per cell delete the rows the build replaced and insert the rows it added, not
    every row it recomputed: a changed person's earlier periods mostly come out the same."""
    latest = warehouse["latest"]
    before, after, in_scope = warehouse["kept_rows"]
    assert latest.mode == "incremental" and set(latest.added) == set(KEPT_MODELS)
    for model in KEPT_MODELS:
        assert before[model] - latest.replaced[model] + latest.added[model] == after[model], model
        assert latest.added[model] <= in_scope[model], model
    # Recomputed rows that came out unchanged were not written again.
    assert sum(latest.added.values()) < sum(in_scope.values())
    assert warehouse["early"].added == {}


def test_an_incremental_build_keeps_the_comments_of_the_tables_it_writes_into(warehouse):
    """An incremental build writes no comments on the tables of incremental models (the build that
    created them did, with the same descriptions): after one, they are still there."""
    comments = warehouse["comments"].set_index(["table_name", "column_name"])
    assert warehouse["latest"].mode == "incremental"
    for table, column in [
        ("int_persons_in_treatment", "person_id"),
        ("stg_convictions__offences", "offence_id"),
        ("int_exit_follow_up", "follow_up_limit"),
        ("deaths_after_treatment", "research_exit_id"),
    ]:
        row = comments.loc[(table, column)]
        assert row["table_comment"] and row["column_comment"], (table, column)
    assert comments["table_comment"].notna().all() and (comments["table_comment"] != "").all()


def test_a_split_by_review_recomputes_both_parts_of_the_person(warehouse):
    split = warehouse["split"]
    with connect(warehouse["target"]) as backend, backend.transaction() as s:
        spine = s.fetch(
            "select record_id, person_id from staging.stg_linkage__person_records where source = 'treatment' "
            "and record_id in (:a, :b)",
            {"a": split["left_record_id"], "b": split["right_record_id"]},
        ).to_pylist()
        split_events = s.scalar("select count(*) from linkage.link_events where event = 'split'")
        past_runs = s.scalar("select count(*) from linkage.runs where as_of < (select max(as_of) from linkage.runs)")
    parts = {r["person_id"] for r in spine}
    assert len(spine) == 2 and len(parts) == 2 and split["person_id"] in parts
    assert split_events and past_runs >= 2
    assert parts <= warehouse["recomputed"]


def _copy(warehouse, tmp_path):
    """The module's warehouse copied, for tests that change it."""
    path = tmp_path / "copy.duckdb"
    shutil.copy(warehouse["target"].path, path)
    return resolve_target(str(path))


def test_a_build_falls_back_to_a_full_one_when_the_last_cannot_vouch_for_the_tables(warehouse, tmp_path, monkeypatch):
    last, early = warehouse["full"].as_of, warehouse["early"].as_of
    with connect(_copy(warehouse, tmp_path)) as backend:
        same = plan_build(backend, last)
        assert same.incremental and same.changed_records == same.changed_persons == 0
        earlier = plan_build(backend, early)
        assert not earlier.incremental
        assert earlier.line() == f"full build: as of {early}, earlier than the last build's {last}"
        monkeypatch.setattr(increments, "model_version", lambda: "another project")
        assert plan_build(backend, last).reason == "the dbt project or its code changed since the last build"
        monkeypatch.undo()
        with backend.transaction() as s:  # a delivery dated before the first: the periods start earlier
            first = s.scalar("select min(extract_date) from events.deliveries where status = 'applied'")
            s.execute(
                "insert into events.deliveries (ledger_id, delivery_id, file_name, source, extract_date, status, "
                "ingested_at) select max(ledger_id) + 1, 'late', 'late.csv', 'deaths', :d, 'applied', now() "
                "from events.deliveries",
                {"d": dt.date(first.year, first.month, 1) - dt.timedelta(days=1)},
            )
        assert plan_build(backend, last).reason.startswith(f"the first extract date moved from {first} to ")
        with backend.transaction() as s:
            s.execute("delete from events.deliveries where delivery_id = 'late'")
            s.execute("drop table staging.stg_linkage__person_records")
        assert plan_build(backend, last).reason == "the last build's staging tables are missing"
        begin(backend)  # as a build does before dbt runs: one that fails part-way leaves no watermark
        assert plan_build(backend, last).reason == "no complete earlier build to start from"


def test_an_incremental_build_refuses_a_changed_record_missing_from_the_spine(warehouse, tmp_path):
    last = warehouse["full"].as_of
    with connect(_copy(warehouse, tmp_path)) as backend:
        with backend.transaction() as s:
            run = s.fetch("select * from linkage.runs order by run_id desc limit 1").to_pylist()[0]
            record = s.fetch(
                "select episode_id, person_id from staging.stg_treatment__episodes order by episode_id limit 1"
            ).to_pylist()[0]
            s.insert("linkage.runs", pa.Table.from_pylist([{**run, "run_id": run["run_id"] + 1}]))
            unlink = {
                "run_id": run["run_id"] + 1,
                "as_of": last,
                "source": "treatment",
                "record_id": record["episode_id"],
                "person_id": record["person_id"],
                "previous_person_id": record["person_id"],
                "event": "unlink",
                "decided_by": "test",
                "model_version": run["model_version"],
            }
            s.insert("linkage.link_events", pa.Table.from_pylist([unlink]))
        with pytest.raises(WarehouseError, match=r"^1 applied records are not in the person spine .*\(1 treatment\)"):
            plan_build(backend, last)


def test_a_build_reports_the_time_of_every_dbt_model_and_test(warehouse):
    latest, full = warehouse["latest"], warehouse["full"]
    models = {name.rsplit(".", 1)[-1] for name in latest.node_seconds if name.startswith("model.")}
    assert set(MARTS) <= models
    # The checks are constraints of the tables and statements of the models: no data-test nodes.
    assert not any(name.startswith("test.") for name in latest.node_seconds)
    # Unit tests run in full builds; an incremental one skips them (its project is the last build's).
    assert any(name.startswith("unit_test.outcomes.int_exit_follow_up.") for name in full.node_seconds)
    assert not any(name.startswith("unit_test.") for name in latest.node_seconds)
    slowest = latest.slowest(3)
    assert len(slowest) == 3 and slowest[0][1] >= slowest[1][1] >= slowest[2][1] > 0
    assert all(not name.startswith(("model.", "test.")) for name, _ in slowest)


def test_dbt_node_names_are_readable():
    assert node_name("model.outcomes.int_journeys") == "int_journeys"
    assert node_name("test.outcomes.not_null_int_journeys_journey_id.5a1b2c3d4e") == "not_null_int_journeys_journey_id"
    assert node_name("unit_test.outcomes.int_periods.fy_periods") == "int_periods.fy_periods"


def test_every_mart_has_rows_as_of_the_build_date_and_england_rows(warehouse):
    target, latest = warehouse["target"], warehouse["latest"]
    for mart in MARTS:
        frame = _fetch(target, f"select * from marts.{mart}")
        assert len(frame), mart
        assert set(frame["as_of"]) == {latest.as_of}, mart
        if "la_code" in frame and mart != "linkage_quality":
            assert ENGLAND in set(frame["la_code"]), mart


def test_england_rows_count_every_person_once(warehouse):
    frame = _fetch(
        warehouse["target"], "select * from marts.successful_completion where period_type = 'rolling_12_months'"
    )
    england = frame[frame["la_code"] == ENGLAND].set_index(["period_end", "substance_group"])
    areas = (
        frame[frame["la_code"] != ENGLAND]
        .groupby(["period_end", "substance_group"])[["in_treatment", "successful_completions", "not_representing"]]
        .sum()
    )
    pd.testing.assert_frame_equal(
        england[["in_treatment", "successful_completions", "not_representing"]].sort_index(), areas.sort_index()
    )


def test_financial_year_rows_repeat_the_march_rolling_rows(warehouse):
    frame = _fetch(warehouse["target"], "select * from marts.sustained_recovery")
    fy = frame[frame["period_type"] == "financial_year"]
    assert len(fy) and all(d.month == 3 and d.day == 31 for d in fy["period_end"])
    assert all(label[:4] == str(d.year - 1) for label, d in zip(fy["period_label"], fy["period_end"], strict=True))
    rolling = frame[frame["period_type"] == "rolling_12_months"]
    keys = ["period_end", "la_code", "substance_group"]
    joined = fy.merge(rolling, on=keys, suffixes=("", "_r"))
    assert len(joined) == len(fy)
    assert (joined["cohort"] == joined["cohort_r"]).all()


def test_research_tables_hold_no_identity_fields_or_ids(warehouse):
    target = warehouse["target"]
    identity = {"record_id", "person_id", "source_person_key", "date_of_birth", "postcode_district"}
    with connect(target) as backend, backend.transaction() as s:
        cols = s.fetch(
            "select table_schema, column_name from information_schema.columns "
            "where table_schema in ('marts', 'research', 'published')"
        ).to_pylist()
        research_ids = s.fetch("select research_person_id from research.sustained_recovery").column(0).to_pylist()
        person_ids = set(s.fetch("select person_id from linkage.person_records").column(0).to_pylist())
    names = {c["column_name"] for c in cols}
    assert not names & identity
    assert not any(n.endswith(("_token", "_bloom", "_initial")) for n in names)
    assert research_ids and not set(research_ids) & person_ids


def test_published_tables_hold_no_count_from_1_to_4(warehouse):
    target = warehouse["target"]
    for table, relation in RELATIONS.items():
        frame = _fetch(target, f"select * from published.{table}")
        assert len(frame), table
        for count in relation.counts:
            values = frame[count].dropna()
            assert not values.between(1, 4).any(), (table, count)
        assert frame.loc[frame["suppressed"], relation.counts].isna().any(axis=1).all(), table


def test_no_suppressed_cell_can_be_recovered_from_published_totals(warehouse):
    target = warehouse["target"]
    published = {table: _fetch(target, f"select * from published.{table}") for table in RELATIONS}
    suppressed_total = 0
    for table, relation in RELATIONS.items():
        truth = _fetch(target, f"select * from marts.{table}")
        suppressed_total += int(published[table][relation.counts].isna().sum().sum())
        recovered = recovered_cells(published, table, truth)
        assert not recovered, f"{table}: {len(recovered)} suppressed cells recoverable, e.g. {recovered[:3]}"
    assert suppressed_total > 100  # the attack had something to attack


def test_a_publish_that_reuses_the_last_ones_solutions_equals_a_full_publish(warehouse, tmp_path):
    """The module's last publish reused the components the early publish solved (the marts of the
    later date, more deliveries and links); solving every component again gives the same published
    tables and the same flags, byte for byte, and reuses nothing."""
    early, later = warehouse["early_published"], warehouse["published"]
    solved, reused = (int(n.replace(",", "")) for n in re.findall(r"([\d,]+) (?:solved|reused)", later.disclosure[1]))
    assert reused > 0 and solved > 0, later.disclosure[1]
    assert early.as_of < later.as_of and early.hashes != later.hashes
    copy = _copy(warehouse, tmp_path)
    with connect(copy) as backend:
        flags, _ = hash_tables(backend, ("disclosure",))
    full = publish(copy, full=True)
    assert re.search(r"(?<![\d,])0 reused", full.disclosure[1]), full.disclosure[1]
    assert full.hashes == later.hashes and len(full.hashes) == 23
    with connect(copy) as backend:
        assert hash_tables(backend, ("disclosure",))[0] == flags


def test_rates_built_on_a_suppressed_count_are_suppressed(warehouse):
    frame = _fetch(warehouse["target"], "select * from published.successful_completion")
    hidden = frame["not_representing"].isna() | frame["in_treatment"].isna()
    assert hidden.any()
    assert frame.loc[hidden, "rate"].isna().all()
    assert frame.loc[~hidden, "rate"].notna().all()


def test_build_refuses_clearly_before_anything_is_linked(tmp_path, small_population):
    target = resolve_target(str(tmp_path / "w.duckdb"))
    with pytest.raises(WarehouseError, match="nothing has been ingested"):
        build(target)
    with connect(target) as backend:
        Ingestor(backend, tmp_path / "archive").ingest(
            copy_until(small_population / "landing", tmp_path / "l2", extract_dates(small_population / "landing")[0])
        )
    with pytest.raises(WarehouseError, match="outcomes link"):
        build(target)
    with pytest.raises(WarehouseError, match="outcomes build"):
        publish(target)


def test_the_dbt_docs_site_is_generated(warehouse, tmp_path):
    from outcomes.marts.dbt import run_dbt

    run_dbt(warehouse["target"], ["docs", "generate"], str(warehouse["latest"].as_of), work_dir=tmp_path)
    catalog = (tmp_path / "target" / "catalog.json").read_text()
    assert (tmp_path / "target" / "index.html").exists()
    assert "successful_completion" in catalog and "research_person_id" in catalog


def test_as_of_must_be_a_date_with_a_linkage_run(warehouse):
    with pytest.raises(WarehouseError, match="no linkage run"):
        build(warehouse["target"], as_of=dt.date(2000, 1, 31))


def _published_tables(target) -> dict[str, pd.DataFrame]:
    names = _fetch(target, "select table_name from information_schema.tables where table_schema = 'published'")
    return {n: _fetch(target, f"select * from published.{n}") for n in sorted(names["table_name"])}


def _integer_columns(target, table: str) -> list[str]:
    columns = _fetch(
        target,
        "select column_name, data_type from information_schema.columns "
        f"where table_schema = 'published' and table_name = '{table}'",
    )
    return [c for c, t in zip(columns["column_name"], columns["data_type"], strict=True) if t in ("BIGINT", "INTEGER")]


KEY_NUMBERS = {"run_id", "year", "exit_year"}


def system_keys(frame: pd.DataFrame) -> list[str]:
    from tests.disclosure_attack import _KEYS

    return [c for c in frame.columns if c in _KEYS and c not in LABELS]


def test_every_published_table_holds_no_count_from_1_to_4(warehouse):
    published = _published_tables(warehouse["target"])
    assert {"drug_related_deaths_by_area", "deaths_after_treatment_by_exit_type", "disclosure_summary"} <= set(
        published
    )
    for name, frame in published.items():
        if name == "disclosure_summary":
            continue  # numbers of cells, not of people
        counts = [c for c in _integer_columns(warehouse["target"], name) if c not in KEY_NUMBERS]
        assert counts, name
        for c in counts:
            assert not frame[c].dropna().between(1, 4).any(), (name, c)
        assert frame.loc[frame["suppressed"], counts].isna().any(axis=1).all(), name


def test_no_suppressed_cell_is_narrowed_below_its_range_by_the_lp_attack_on_linked_tables(warehouse):
    target = warehouse["target"]
    published = {
        n: f for n, f in _published_tables(target).items() if n not in ("disclosure_summary", "linkage_quality")
    }
    system = LinkedSystem(published)
    truth = {}
    for name in published:
        frame = _fetch(target, f"select * from disclosure.{name}")
        keys = [c for c in frame.columns if c in system_keys(frame)]
        for count in COUNTS[next(f for f in COUNTS if name == f or name.startswith(f + "_"))]:
            for key, value in zip(frame[keys].itertuples(index=False, name=None), frame[count], strict=True):
                truth[(name, count, tuple(key))] = float(value)
    hidden = [i for i, v in enumerate(system.values) if np.isnan(v) and system.names[i][0] in published]
    base = set(RELATIONS)
    grains = [i for i in hidden if system.names[i][0] not in base]
    fine = [i for i in hidden if system.names[i][0] in base]
    # Every suppressed cell of the coarse tables where there are few, else a spread sample: an LP
    # per cell over clusters of thousands of unknowns is slow.
    targets = grains[:: max(1, len(grains) // 150)] + fine[:: max(1, len(fine) // 50)]
    assert len(grains) > 10 and len(targets) > 100  # the attack had something to attack
    narrowed = narrowed_published(system, truth, targets)
    assert not narrowed, f"{len(narrowed)} suppressed cells narrowed, e.g. {narrowed[:3]}"


def test_publish_reports_the_share_suppressed_of_every_table(warehouse):
    summary = _fetch(warehouse["target"], "select * from published.disclosure_summary")
    published = _published_tables(warehouse["target"])
    assert set(summary["table_name"]) == set(published) - {"disclosure_summary"}
    assert summary["cell_share_suppressed"].between(0, 1).all()
    assert any(line.startswith("  drug_related_deaths_by_area: ") for line in warehouse["published"].disclosure)


def test_dbt_keeps_its_parsed_project_when_the_build_date_changes(tmp_path, monkeypatch):
    """The knowledge date reaches dbt through the environment, not --vars: a run as of another date
    reuses the project parsed by the last run against the same warehouse (outcomes/marts/dbt.py)."""
    import json

    from outcomes.marts.dbt import parse_cache, run_dbt

    monkeypatch.setenv("OUTCOMES_DBT_PARSE_CACHE", str(tmp_path / "cache"))
    target = resolve_target(str(tmp_path / "w.duckdb"))
    run_dbt(target, ["parse"], "2026-01-31", work_dir=tmp_path / "first")
    assert parse_cache(target).exists()
    run_dbt(target, ["parse"], "2026-02-28", work_dir=tmp_path / "second")
    first, second = (json.loads((tmp_path / w / "target" / "perf_info.json").read_text()) for w in ("first", "second"))
    assert first["parsed_path_count"] > 100 and second["parsed_path_count"] == 0


def _statements(log: str, node: str) -> list[str]:
    """The SQL statements dbt's debug log shows for `node` (model.outcomes.<name>)."""
    import re

    chunks = re.split(r"(?m)^\d\d:\d\d:\d\d\.\d+ ", log)
    return [c.split(": ", 1)[1] for c in chunks if f"On {node}: " in c.split("\n", 1)[0]]


def test_an_incremental_build_checks_the_rows_each_model_rewrote(warehouse, tmp_path, monkeypatch):
    """The staging and intermediate models check their rows as they write them (post-hook
    check_rows, not test nodes). With a last build's date, a `replace_changed` model checks the rows
    it rewrote: nulls among them, duplicates among every row sharing a key with them (those its
    write inserted, for a model writing only the rows that differ);
    `int_exit_follow_up` (rows replaced by key) checks its whole table."""
    from outcomes.marts.dbt import run_dbt

    monkeypatch.setenv("OUTCOMES_DBT_PARSE_CACHE", str(tmp_path / "cache"))
    target = _copy(warehouse, tmp_path)
    since = str(warehouse["early"].as_of)
    models = ["stg_convictions__offences", "int_persons_in_treatment", "int_exit_follow_up"]
    results = run_dbt(
        target,
        ["run", "--select", *models],
        str(warehouse["full"].as_of),
        work_dir=tmp_path / "run",
        previous_as_of=since,
    )
    assert {r["unique_id"] for r in results} == {f"model.outcomes.{m}" for m in models}
    assert not any(r["unique_id"].startswith("test.") for r in results)
    log = (tmp_path / "run" / "logs" / "dbt.log").read_text()
    checks = {m: [s for s in _statements(log, f"model.outcomes.{m}") if "as violations limit 1" in s] for m in models}
    assert all(len(c) == 1 for c in checks.values()), checks
    offences, in_treatment, follow_up = (checks[m][0] for m in models)
    assert "offence_id in (select record_id from marts_state.changed_records where source = 'convictions')" in offences
    assert "offence_id is null or person_id is null or offence_date is null or disposal_date is null" in offences
    assert "two rows share the grain (offence_id)" in offences
    # A model writing only the rows that differ checks the rows its write inserted.
    added = "marts_state.int_persons_in_treatment__added"
    assert f"(period_end, person_id) in (select period_end, person_id from {added})" in in_treatment
    assert f"from {added} where period_end is null or person_id is null" in in_treatment
    assert "two rows share the grain (journey_id, time_since_exit)" in follow_up and "marts_state" not in follow_up


def test_a_model_writing_only_the_rows_that_differ_fails_on_a_key_its_write_repeats(warehouse, tmp_path, monkeypatch):
    """int_proven_offences (write_changed_only) recomputing every changed person's offence twice: its
    check, narrowed to the rows the write inserted, still finds the repeated key and fails the model."""
    from outcomes.marts import dbt

    project = tmp_path / "dbt_project"
    shutil.copytree(dbt.PROJECT_DIR, project, ignore=shutil.ignore_patterns("target", "logs"))
    model = project / "models" / "intermediate" / "int_proven_offences.sql"
    source = "from {{ ref('stg_convictions__offences') }}"
    model.write_text(
        model.read_text().replace(source, f"{source} cross join (select 1 union all select 2) as twice(n)")
    )
    monkeypatch.setattr(dbt, "PROJECT_DIR", project)
    monkeypatch.setenv("OUTCOMES_DBT_PARSE_CACHE", str(tmp_path / "cache"))
    target = _copy(warehouse, tmp_path)
    with pytest.raises(WarehouseError, match=re.escape("int_proven_offences: two rows share the grain (offence_id)")):
        dbt.run_dbt(
            target,
            ["run", "--select", "int_proven_offences"],
            str(warehouse["full"].as_of),
            previous_as_of=str(warehouse["early"].as_of),
        )


@pytest.mark.parametrize(
    ("extra_row", "problem"),
    [
        ("(select * from rolling_periods limit 1)", "two rows share the grain (period_type, period_end)"),
        ("select 'rolling_12_months', '1999-12', null, null", "a null in (period_type, period_end)"),
    ],
)
def test_a_model_whose_rows_break_its_grain_or_hold_a_null_fails(warehouse, tmp_path, monkeypatch, extra_row, problem):
    """The check fails the model (and so the build): int_periods with a duplicated or a null row."""
    from outcomes.marts import dbt

    project = tmp_path / "dbt_project"
    shutil.copytree(dbt.PROJECT_DIR, project, ignore=shutil.ignore_patterns("target", "logs"))
    model = project / "models" / "intermediate" / "int_periods.sql"
    sql = model.read_text()
    model.write_text(f"with rolling_periods as (\n{sql}\n)\nselect * from rolling_periods\nunion all\n{extra_row}\n")
    monkeypatch.setattr(dbt, "PROJECT_DIR", project)
    monkeypatch.setenv("OUTCOMES_DBT_PARSE_CACHE", str(tmp_path / "cache"))
    target = _copy(warehouse, tmp_path)
    with pytest.raises(WarehouseError, match=re.escape(f"int_periods: {problem}")):
        dbt.run_dbt(target, ["run", "--select", "int_periods"], str(warehouse["full"].as_of))
    with connect(target) as backend, backend.transaction() as s:  # the model's rows rolled back
        assert s.scalar("select count(*) from intermediate.int_periods where period_end is null") == 0
        assert (
            s.scalar(
                "select count(*) from (select period_type, period_end from intermediate.int_periods "
                "group by all having count(*) > 1)"
            )
            == 0
        )


@pytest.mark.parametrize("kind", ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_table_hashes_are_computed_in_the_warehouse_free_of_row_order(kind, tmp_path):
    """The build's table hash (hash_tables) is the same for the same rows in any order, and
    differs when a value changes, moves to another column or row, or a row is repeated."""
    from tests.backends import warehouse_target

    rows = [
        (1, "E06000001", dt.date(2024, 3, 31), 0.25, True),
        (2, "E06000002", None, None, False),
        (3, "a,b", dt.date(2024, 4, 30), 1.0, None),
    ]

    def hashed(table_rows) -> tuple[str, int]:
        values = ", ".join(
            "("
            + ", ".join("null" if v is None else f"'{v}'" if isinstance(v, str | dt.date) else str(v) for v in r)
            + ")"
            for r in table_rows
        )
        with connect(resolve_target(target)) as backend, backend.transaction() as s:
            s.execute("create schema if not exists marts")
            s.execute("drop table if exists marts.t")
            s.execute("create table marts.t (k integer, la varchar, d date, r double precision, f boolean)")
            s.execute(f"insert into marts.t values {values}")
        with connect(resolve_target(target)) as backend:
            hashes, counts = hash_tables(backend, ("marts",))
        return hashes["marts.t"], counts["marts.t"]

    with warehouse_target(kind, tmp_path) as target:
        first, n = hashed(rows)
        assert n == 3 and hashed(list(reversed(rows))) == (first, 3)
        assert hashed([rows[0], rows[1], (3, "a,b", dt.date(2024, 4, 30), 1.5, None)])[0] != first
        assert (
            hashed([rows[0], (2, "E06000001", None, None, False), (3, "a,b", dt.date(2024, 4, 30), 1.0, None)])[0]
            != first
        )
        assert (
            hashed([rows[0], (2, "E06000002", None, 0.25, False), (3, "a,b", dt.date(2024, 4, 30), 1.0, None)])[0]
            != first
        )
        assert hashed([rows[0], rows[1], (3, "a", dt.date(2024, 4, 30), 1.0, None)])[0] != first
        assert hashed([*rows, rows[1]]) != (first, 3) and hashed([*rows, rows[1]])[1] == 4
        assert hashed([rows[0], rows[0], rows[1], rows[1]])[0] != hashed([rows[0], rows[1]])[0]


def test_the_grain_of_every_mart_and_research_table_is_a_key_the_warehouse_enforces(warehouse):
    """Uniqueness of a table's grain is a primary key written with the table (no test node): a
    repeated row is refused."""
    tables = sorted(warehouse["latest"].hashes)  # every mart and research table the build hashed
    assert len(tables) == 12
    checked = 0
    for table in tables:
        with connect(warehouse["target"]) as backend, backend.transaction() as s:
            if not s.scalar(f"select count(*) from {table}"):
                continue
        with (
            pytest.raises(Exception, match=r"(?i)duplicate|constraint"),
            connect(warehouse["target"]) as backend,
            backend.transaction() as s,
        ):
            s.execute(f"insert into {table} select * from {table} limit 1")
        checked += 1
    assert checked >= len(tables) - 1


def test_a_build_report_names_what_its_hashes_depend_on(warehouse):
    import json

    report = json.loads(warehouse["latest"].to_json())
    assert report["hashed_by"].startswith("duckdb v") and len(report["tables"]) == 12
    assert warehouse["latest"].hashes == warehouse["full"].hashes


def test_linkage_quality_refuses_a_breakdown_outside_its_list(warehouse, tmp_path):
    """The breakdowns of linkage_quality are a check constraint of its table (no test node)."""
    target = _copy(warehouse, tmp_path)
    with connect(target) as backend, backend.transaction() as s:
        assert s.scalar("select count(*) from marts.linkage_quality where breakdown = 'region'") > 0
    with (
        pytest.raises(Exception, match=r"(?i)check"),
        connect(target) as backend,
        backend.transaction() as s,
    ):
        s.execute(
            "insert into marts.linkage_quality select * replace ('postcode' as breakdown) "
            "from marts.linkage_quality where breakdown = 'region' limit 1"
        )
