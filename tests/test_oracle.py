"""The independent oracle of the outcome marts (tests/oracle): edge cases of every definition on tiny
hand-made landing folders, and a smoke test on a 2,000-person synthetic population."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import math
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.oracle import MARTS, compute_marts, compute_marts_from, default_as_of, load_population
from tests.oracle.codes import ENGLAND, columns, is_drug_misuse, is_drug_poisoning
from tests.oracle.dates import add_months, age_band, age_in_years, reporting_periods
from tests.oracle.population import Episode, build_journeys, substance_group_of

D = dt.date
ARROW_TYPES = {"string": pa.string(), "date": pa.date32(), "bool": pa.bool_(), "list": pa.list_(pa.string())}
DEFAULTS = {
    "treatment": {
        "la_code": "E06000001",
        "setting": "community",
        "referral_source": "self",
        "substance_1": "heroin",
        "injecting_status": "never",
        "housing_status": "no_problem",
        "date_of_birth": D(1980, 1, 1),
        "sex": "M",
    },
    "convictions": {
        "offence_group": "theft",
        "trigger_offence": True,
        "disposal_type": "fine",
        "record_status": "active",
        "date_of_birth": D(1980, 1, 1),
        "sex": "M",
    },
    "benefits": {"benefit_type": "JSA", "record_status": "active", "date_of_birth": D(1980, 1, 1), "sex": "M"},
    "deaths": {
        "underlying_cause": "X42",
        "contributory_causes": [],
        "drugs_mentioned": [],
        "controlled_drug_mentioned": True,
        "la_code": "E06000001",
        "record_status": "active",
        "date_of_birth": D(1980, 1, 1),
        "sex": "M",
    },
}


class Landing:
    """A tiny landing folder and its truth, written the way a provider would (data file + manifest)."""

    def __init__(self, root: Path):
        self.landing = root / "landing"
        self.truth = root / "truth"
        self.landing.mkdir()
        self.truth.mkdir()
        self.person_of: dict[tuple[str, str], str] = {}

    def deliver(self, source: str, extract_date: dt.date, rows: list[dict], seq: int = 1, fmt: str = "parquet"):
        """Write one delivery. Each row names its true person in `person` (kept out of the file)."""
        cols = columns(source)
        full_rows = []
        for row in rows:
            row = dict(row)
            self.person_of[(source, row["record_id"])] = row.pop("person")
            if source == "deaths":
                row.setdefault("date_of_registration", row["date_of_death"])
            full_rows.append({name: row.get(name, DEFAULTS[source].get(name)) for name in cols})
        stem = f"{source}_{extract_date:%Y%m%d}_{seq:02d}"
        path = self.landing / f"{stem}.{fmt}"
        if fmt == "parquet":
            schema = pa.schema([(name, ARROW_TYPES[kind]) for name, kind in cols.items()])
            pq.write_table(pa.Table.from_pylist(full_rows, schema=schema), path)
        else:
            with path.open("w", encoding="utf-8", newline="") as f:
                writer = csv.writer(f)
                writer.writerow(list(cols))
                for row in full_rows:
                    writer.writerow([_csv_text(row[name]) for name in cols])
        manifest = {
            "source": source,
            "spec_version": 1,
            "extract_date": extract_date.isoformat(),
            "delivery_type": "full" if source == "treatment" else "delta",
            "row_count": len(full_rows),
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "producer": "test_oracle",
        }
        (self.landing / f"{stem}.manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
        self._write_truth()
        return path

    def _write_truth(self):
        rows = [{"source": s, "record_id": r, "person_id": p} for (s, r), p in sorted(self.person_of.items())]
        schema = pa.schema([("source", pa.string()), ("record_id", pa.string()), ("person_id", pa.string())])
        pq.write_table(pa.Table.from_pylist(rows, schema=schema), self.truth / "records.parquet")

    def marts(self, as_of: dt.date | None = None) -> dict[str, pd.DataFrame]:
        return compute_marts(self.landing, self.truth, as_of or default_as_of(self.landing))


def _csv_text(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "|".join(value) if value else None
    return value.isoformat() if isinstance(value, dt.date) else str(value)


def episode(rid: str, person: str, start: dt.date, discharge: dt.date | None = None, reason: str | None = None, **kw):
    if discharge is not None and reason is None:
        reason = "dropped_out"
    return {
        "record_id": rid,
        "person": person,
        "treatment_start_date": start,
        "discharge_date": discharge,
        "discharge_reason": reason,
        **kw,
    }


def offence(rid: str, person: str, offence_date: dt.date, disposal_date: dt.date, **kw):
    return {"record_id": rid, "person": person, "offence_date": offence_date, "disposal_date": disposal_date, **kw}


def death(rid: str, person: str, date_of_death: dt.date, **kw):
    return {"record_id": rid, "person": person, "date_of_death": date_of_death, **kw}


def spell(rid: str, person: str, start: dt.date, end: dt.date | None = None, **kw):
    return {"record_id": rid, "person": person, "spell_start": start, "spell_end": end, **kw}


def row(frame: pd.DataFrame, **where) -> pd.Series:
    """The single row of `frame` matching every column = value in `where`."""
    mask = pd.Series(True, index=frame.index)
    for column, value in where.items():
        mask &= frame[column] == value
    matched = frame[mask]
    assert len(matched) == 1, f"{len(matched)} rows match {where}"
    return matched.iloc[0]


def rolling(frame: pd.DataFrame, period_end: dt.date, **where) -> pd.Series:
    return row(frame, period_type="rolling_12_months", period_end=period_end, **where)


# ---------------------------------------------------------------------------------------------------------
# Dates and periods


def test_add_months_clips_to_month_end_and_ages_are_whole_years():
    assert add_months(D(2024, 1, 31), 1) == D(2024, 2, 29)
    assert add_months(D(2023, 1, 31), 1) == D(2023, 2, 28)
    assert add_months(D(2024, 2, 29), -12) == D(2023, 2, 28)
    assert add_months(D(2024, 3, 31), -1) == D(2024, 2, 29)
    assert age_in_years(D(1980, 6, 15), D(2000, 6, 14)) == 19
    assert age_in_years(D(1980, 6, 15), D(2000, 6, 15)) == 20
    assert [age_band(a) for a in (None, 19, 20, 29, 30, 49, 50, 69, 70)] == [
        "unknown", "<20", "20-29", "20-29", "30-39", "40-49", "50-69", "50-69", "70+",
    ]  # fmt: skip


def test_reporting_periods_roll_monthly_with_financial_and_calendar_years():
    periods = reporting_periods(D(2023, 3, 15), D(2024, 4, 29))
    rolling_ends = [p.end for p in periods if p.period_type == "rolling_12_months"]
    assert rolling_ends[0] == D(2023, 3, 31) and rolling_ends[-1] == D(2024, 3, 31) and len(rolling_ends) == 13
    years = [(p.period_type, p.period_label, p.end) for p in periods if p.period_type != "rolling_12_months"]
    assert years == [
        ("financial_year", "2022-23", D(2023, 3, 31)),
        ("calendar_year", "2023", D(2023, 12, 31)),
        ("financial_year", "2023-24", D(2024, 3, 31)),
    ]
    leap = next(p for p in periods if p.end == D(2024, 2, 29))
    assert (leap.start, leap.period_label) == (D(2023, 3, 1), "2024-02")


# ---------------------------------------------------------------------------------------------------------
# Journeys


def _ep(rid: str, start: dt.date, discharge: dt.date | None = None, reason: str = "dropped_out", subs=("heroin",)):
    return Episode(rid, "P1", start, discharge, reason if discharge else None, "E06000001", "community",
                   "no_problem", None, subs)  # fmt: skip


def test_journey_21_day_rule():
    # 21 days after the latest discharge joins the journey; 22 days starts a new one.
    joined = build_journeys([_ep("A", D(2024, 1, 1), D(2024, 2, 1), "transferred_not_in_custody"),
                             _ep("B", D(2024, 2, 22), D(2024, 5, 1), "completed_drug_free")])  # fmt: skip
    assert [[e.record_id for e in j.episodes] for j in joined] == [["A", "B"]]
    assert (joined[0].exit_date, joined[0].exit_type) == (D(2024, 5, 1), "successful")
    split = build_journeys([_ep("A", D(2024, 1, 1), D(2024, 2, 1), "transferred_not_in_custody"),
                            _ep("B", D(2024, 2, 23), D(2024, 5, 1))])  # fmt: skip
    assert [[e.record_id for e in j.episodes] for j in split] == [["A"], ["B"]]
    assert split[0].exit_type == "transferred" and split[1].exit_type == "unsuccessful"
    # The latest discharge of all earlier episodes counts, not the last episode's.
    nested = build_journeys([_ep("A", D(2024, 1, 1), D(2024, 6, 1)), _ep("B", D(2024, 2, 1), D(2024, 3, 1)),
                             _ep("C", D(2024, 6, 20))])  # fmt: skip
    assert len(nested) == 1 and nested[0].is_open and nested[0].exit_date is None


def test_open_episode_absorbs_later_episodes_and_exit_is_latest_discharge():
    journeys = build_journeys([
        _ep("A", D(2022, 1, 1)),  # open
        _ep("B", D(2023, 1, 1), D(2023, 2, 1)),
        _ep("C", D(2024, 6, 1), D(2024, 7, 1), subs=("alcohol", "cannabis")),
    ])  # fmt: skip
    assert len(journeys) == 1 and journeys[0].is_open
    assert journeys[0].substance_group == "opiate"
    # Closing the open episode: exit = latest (discharge_date, record_id), ties by record_id.
    closed = build_journeys([_ep("A", D(2022, 1, 1), D(2024, 7, 1), "died"), _ep("B", D(2023, 1, 1), D(2023, 2, 1)),
                             _ep("C", D(2024, 6, 1), D(2024, 7, 1), "completed_drug_free")])  # fmt: skip
    assert closed[0].exit_episode.record_id == "C" and closed[0].exit_type == "successful"
    # The exit is the latest discharge, not the last episode to start.
    later = build_journeys([_ep("A", D(2022, 1, 1), D(2024, 8, 1), "died"),
                            _ep("C", D(2024, 6, 1), D(2024, 7, 1), "completed_drug_free")])  # fmt: skip
    assert (later[0].exit_date, later[0].exit_type) == (D(2024, 8, 1), "died")
    assert substance_group_of({"alcohol"}) == "alcohol_only"
    assert substance_group_of({"alcohol", "other"}) == "non_opiate_and_alcohol"
    assert substance_group_of({"crack", "cocaine"}) == "non_opiate_only"
    assert substance_group_of({"alcohol", "methadone_illicit"}) == "opiate"


def test_journey_rule_in_treatment_flow(tmp_path):
    land = Landing(tmp_path)
    land.deliver("treatment", D(2024, 6, 30), [
        # P1: 21 days -> one journey; P2: 22 days -> two; P3: an open episode absorbs a later one.
        episode("T1", "P1", D(2024, 1, 1), D(2024, 2, 1), "transferred_not_in_custody", la_code="E1"),
        episode("T2", "P1", D(2024, 2, 22), D(2024, 3, 1), la_code="E1"),
        episode("T3", "P2", D(2024, 1, 1), D(2024, 2, 1), "transferred_not_in_custody", la_code="E2"),
        episode("T4", "P2", D(2024, 2, 23), D(2024, 3, 1), la_code="E2"),
        episode("T5", "P3", D(2024, 1, 1), la_code="E3"),
        episode("T6", "P3", D(2024, 4, 1), D(2024, 4, 10), la_code="E3"),
    ])  # fmt: skip
    flow = land.marts()["treatment_flow"]
    flow = (
        flow[flow.period_end == D(2024, 6, 30)]
        .groupby("la_code")[["in_treatment", "new_journeys", "exits_unsuccessful", "exits_transferred"]]
        .sum()
    )
    assert flow.loc["E1"].tolist() == [1, 1, 1, 0]
    assert flow.loc["E2"].tolist() == [1, 2, 1, 1]
    assert flow.loc["E3"].tolist() == [1, 1, 0, 0]
    assert flow.loc[ENGLAND].tolist() == [3, 4, 2, 1]


# ---------------------------------------------------------------------------------------------------------
# 1. successful_completion


def test_representation_on_last_day_inside_and_first_day_outside_6_months(tmp_path):
    land = Landing(tmp_path)
    land.deliver("deaths", D(2024, 1, 31), [])  # periods start at the earliest extract date
    exit_day = D(2024, 1, 31)  # follow-up [2024-02-01, 2024-08-01)
    land.deliver("treatment", D(2024, 8, 31), [
        episode("A1", "A", D(2023, 6, 1), exit_day, "completed_drug_free", la_code="EA"),
        episode("A2", "A", D(2024, 7, 31), la_code="EA"),  # last day inside: a re-presentation
        episode("B1", "B", D(2023, 6, 1), exit_day, "completed_alcohol_free", la_code="EB"),
        episode("B2", "B", D(2024, 8, 1), la_code="EB"),  # first day outside
        episode("C1", "C", D(2023, 6, 1), exit_day, "dropped_out", la_code="EC"),
    ])  # fmt: skip
    sc = land.marts()["successful_completion"]
    p = D(2024, 3, 31)
    for la, expected in {"EA": (1, 1, 0), "EB": (1, 1, 1), "EC": (1, 0, 0), ENGLAND: (3, 2, 1)}.items():
        r = rolling(sc, p, la_code=la, substance_group="opiate")
        assert (r.in_treatment, r.successful_completions, r.not_representing) == expected, la
    assert rolling(sc, p, la_code=ENGLAND).rate == pytest.approx(1 / 3)
    # In the period ending 2024-07-31 A's latest episode in the period is A2 (open): area from it.
    assert rolling(sc, D(2024, 7, 31), la_code=ENGLAND).in_treatment == 3


# ---------------------------------------------------------------------------------------------------------
# 3. proven_reoffending and convictions_before_after


def test_offence_proven_inside_and_just_outside_the_waiting_period(tmp_path):
    land = Landing(tmp_path)
    land.deliver("deaths", D(2024, 1, 31), [])
    start = D(2024, 1, 10)  # follow-up [2024-01-11, 2025-01-11), proven when disposed of before 2025-07-11
    land.deliver("treatment", D(2025, 7, 31), [episode("T1", "C", start, la_code="EC")])
    land.deliver("convictions", D(2025, 7, 31), [
        offence("O0", "C", D(2023, 6, 1), D(2023, 7, 1)),  # puts C in the cohort
        offence("O1", "C", D(2024, 12, 1), D(2025, 7, 10)),  # proven: disposal the day before the end
        offence("O2", "C", D(2024, 12, 5), D(2025, 7, 11)),  # not proven: disposal on the end day
        offence("O3", "C", D(2025, 1, 10), D(2025, 2, 1)),  # last day of the window
        offence("O4", "C", D(2025, 1, 11), D(2025, 2, 1)),  # first day after it
        offence("O5", "C", start, D(2024, 3, 1)),  # on the index date: in neither window
        offence("O6", "C", D(2024, 1, 11), D(2024, 2, 1)),  # first day of the window
    ])  # fmt: skip
    marts = land.marts()
    r = rolling(marts["proven_reoffending"], D(2024, 1, 31), la_code="EC")
    assert (r.exit_type, r.cohort, r.reoffenders, r.reoffences) == ("still_in_treatment", 1, 1, 3)
    assert r.rate == 1.0 and r.reoffences_per_reoffender == 3.0
    # The period ending 2024-02-29 also holds the start; one ending 2025-01-31 does not.
    assert rolling(marts["proven_reoffending"], D(2024, 2, 29), la_code="EC").reoffences == 3
    assert marts["proven_reoffending"].period_end.min() == D(2024, 1, 31)
    assert not (marts["proven_reoffending"].period_end == D(2025, 1, 31)).any()


def test_breach_and_quashed_rows_are_not_proven_offences(tmp_path):
    land = Landing(tmp_path)
    land.deliver("deaths", D(2024, 1, 31), [])
    land.deliver("treatment", D(2024, 7, 31), [
        episode("T1", "D", D(2024, 1, 10), la_code="ED"),
        episode("T2", "E", D(2024, 1, 10), la_code="EE"),
    ])  # fmt: skip
    land.deliver("convictions", D(2024, 7, 31), [
        offence("O0", "D", D(2023, 6, 1), D(2023, 7, 1)),
        offence("O1", "D", D(2024, 5, 1), D(2024, 6, 1), offence_group="breach"),
        offence("O2", "D", D(2024, 6, 1), D(2024, 7, 1)),  # quashed later
        offence("O3", "E", D(2023, 6, 1), D(2023, 7, 1), offence_group="breach"),  # E: only a breach before
    ])  # fmt: skip
    land.deliver("convictions", D(2024, 8, 31), [offence("O2", "D", D(2024, 6, 1), D(2024, 7, 1),
                                                          record_status="quashed")])  # fmt: skip
    before_quash = rolling(land.marts(D(2024, 7, 31))["proven_reoffending"], D(2024, 1, 31), la_code="ED")
    assert (before_quash.reoffenders, before_quash.reoffences) == (1, 1)
    pr = land.marts(D(2024, 8, 31))["proven_reoffending"]
    after_quash = rolling(pr, D(2024, 1, 31), la_code="ED")
    assert (after_quash.cohort, after_quash.reoffenders, after_quash.reoffences) == (1, 0, 0)
    assert math.isnan(after_quash.reoffences_per_reoffender)
    assert not (pr.la_code == "EE").any()


def test_reoffending_cohort_needs_an_offence_disposed_of_in_the_24_months_before_the_start(tmp_path):
    land = Landing(tmp_path)
    land.deliver("deaths", D(2024, 1, 31), [])
    start = D(2024, 1, 10)
    people = {"F": D(2022, 1, 10), "G": D(2022, 1, 9), "H": start}  # F in; G a day too early; H on the start
    land.deliver("treatment", D(2024, 1, 31), [episode(f"T{p}", p, start, la_code=f"E{p}") for p in people])
    land.deliver("convictions", D(2024, 1, 31),
                 [offence(f"O{p}", p, D(2021, 12, 1), disposal) for p, disposal in people.items()])  # fmt: skip
    pr = land.marts()["proven_reoffending"]
    assert sorted(pr.la_code.unique()) == [ENGLAND, "EF"]


def test_convictions_before_after_retention_and_scope(tmp_path):
    land = Landing(tmp_path)
    land.deliver("deaths", D(2022, 1, 31), [])
    s = D(2022, 1, 10)  # 24-month follow-up [2022-01-11, 2024-01-11), its last day 2024-01-10
    land.deliver("treatment", D(2024, 7, 31), [
        episode("T1", "J", s, D(2024, 1, 10), "completed_drug_free", la_code="EJ"),  # completed on the last day
        episode("T2", "K", s, D(2024, 1, 11), "completed_drug_free", la_code="EK"),  # still retained then
        episode("T3", "L", s, D(2023, 1, 1), "completed_drug_free", la_code="EL"),
        episode("T4", "L", D(2023, 3, 1), D(2023, 6, 1), la_code="EL"),  # a later journey does not matter
        episode("T5", "M", s, D(2022, 6, 1), "transferred_in_custody", la_code="EM"),
    ])  # fmt: skip
    land.deliver("convictions", D(2024, 7, 31), [
        offence("B1", "J", D(2020, 1, 10), D(2020, 3, 1), trigger_offence=False),  # first day of "before"
        offence("B2", "J", D(2022, 1, 9), D(2022, 7, 9)),  # last day of "before", disposal just in time
        offence("B3", "J", D(2022, 1, 8), D(2022, 7, 10), trigger_offence=False),  # disposed of too late
        offence("A1", "J", D(2023, 5, 1), D(2023, 6, 1), trigger_offence=False),
        offence("B4", "K", D(2021, 1, 1), D(2021, 2, 1)),
        offence("B5", "L", D(2021, 1, 1), D(2021, 2, 1)),
        offence("B6", "M", D(2021, 1, 1), D(2021, 2, 1)),
    ])  # fmt: skip
    cba = land.marts()["convictions_before_after"]
    p = D(2022, 1, 31)
    j_all = rolling(cba, p, la_code="EJ", offence_scope="all")
    assert (j_all.retention, j_all.cohort, j_all.offences_before, j_all.offences_after) == ("completed", 1, 2, 1)
    assert j_all.percent_change == pytest.approx(-50.0)
    j_trigger = rolling(cba, p, la_code="EJ", offence_scope="trigger")
    assert (j_trigger.offences_before, j_trigger.offences_after, j_trigger.percent_change) == (1, 0, -100.0)
    assert rolling(cba, p, la_code="EK", offence_scope="all").retention == "retained"
    assert rolling(cba, p, la_code="EL", offence_scope="all").retention == "completed"
    assert rolling(cba, p, la_code="EM", offence_scope="all").retention == "left"
    england = cba[(cba.period_end == p) & (cba.la_code == ENGLAND) & (cba.offence_scope == "all")]
    assert england.set_index("retention").cohort.to_dict() == {"completed": 2, "left": 1, "retained": 1}
    # proven_reoffending: exit type at the end of the 12-month follow-up (2023-01-10).
    pr = land.marts()["proven_reoffending"]
    assert rolling(pr, p, la_code="EL").exit_type == "successful"
    assert rolling(pr, p, la_code="EJ").exit_type == "still_in_treatment"
    assert rolling(pr, p, la_code="EM").exit_type == "unsuccessful"


# ---------------------------------------------------------------------------------------------------------
# 4. Deaths

INCLUDED = ["F11", "F16", "F18", "F19", "X40", "X44", "X60", "X64", "X85", "Y10", "Y14", "F112", "X420"]
EXCLUDED = ["F10", "F17", "F20", "X39", "X45", "X59", "X65", "X84", "X86", "Y09", "Y15", "T401", "I219"]


def test_icd10_boundaries_of_drug_poisoning():
    assert all(is_drug_poisoning(c) for c in INCLUDED)
    assert not any(is_drug_poisoning(c) for c in EXCLUDED)


def test_misuse_needs_a_misuse_code_or_a_controlled_drug():
    assert is_drug_misuse("F112", False) and is_drug_misuse("F19", None)
    assert is_drug_misuse("X42", True) and not is_drug_misuse("X42", False) and not is_drug_misuse("Y12", None)
    assert not is_drug_misuse("F10", True) and not is_drug_misuse("F17", True) and not is_drug_misuse("T401", True)


def test_drug_related_deaths_counts_by_code_and_controlled_drug(tmp_path):
    land = Landing(tmp_path)
    rows = [death(f"DI{i}", f"PI{i}", D(2024, 1, 5), underlying_cause=c, controlled_drug_mentioned=False)
            for i, c in enumerate(INCLUDED)]  # fmt: skip
    rows += [death(f"DE{i}", f"PE{i}", D(2024, 1, 5), underlying_cause=c, la_code="EX")
             for i, c in enumerate(EXCLUDED)]  # fmt: skip
    rows += [death("DC", "PC", D(2023, 12, 20), date_of_registration=D(2024, 1, 20), underlying_cause="X42",
                   controlled_drug_mentioned=True, la_code="EC", sex="F", date_of_birth=D(2004, 12, 21))]  # fmt: skip
    land.deliver("deaths", D(2024, 1, 31), rows)
    drd = land.marts()["drug_related_deaths"]
    assert not (drd.la_code == "EX").any()
    eng = drd[(drd.la_code == ENGLAND) & (drd.year_basis == "registration")]
    assert eng.drug_poisoning_deaths.sum() == len(INCLUDED) + 1
    assert eng.drug_misuse_deaths.sum() == 5 + 1  # F11, F16, F18, F19, F112 and the controlled X42
    occurred = row(drd, la_code="EC", year_basis="occurrence")
    registered = row(drd, la_code="EC", year_basis="registration")
    assert (occurred.year, registered.year) == (2023, 2024)
    assert (occurred.sex, occurred.age_band, occurred.treatment_status) == ("F", "<20", "never_in_treatment")
    assert (occurred.drug_poisoning_deaths, occurred.drug_misuse_deaths) == (1, 1)


def test_treatment_status_at_death(tmp_path):
    land = Landing(tmp_path)
    d = D(2024, 6, 1)
    land.deliver("treatment", D(2024, 7, 31), [
        episode("T1", "P1", D(2023, 1, 1)),  # open on the date of death
        episode("T2", "P2", D(2023, 1, 1), d),  # discharged on the day
        episode("T3", "P3", D(2022, 1, 1), D(2023, 6, 1)),  # exit on add_months(d, -12)
        episode("T4", "P4", D(2022, 1, 1), D(2023, 5, 31)),
        episode("T6", "P6", D(2022, 1, 1), D(2024, 5, 1), "died"),  # discharged `died` before the death date
        episode("T7", "P7", D(2024, 7, 1)),  # starts after the death
    ])  # fmt: skip
    land.deliver("deaths", D(2024, 7, 31), [death(f"D{i}", f"P{i}", d, la_code=f"E{i}") for i in range(1, 8)])
    drd = land.marts()["drug_related_deaths"]
    occurred = drd[(drd.year_basis == "occurrence") & (drd.la_code != ENGLAND)]
    assert occurred.set_index("la_code").treatment_status.to_dict() == {
        "E1": "in_treatment", "E2": "in_treatment", "E3": "left_within_1_year", "E4": "left_over_1_year",
        "E5": "never_in_treatment", "E6": "in_treatment", "E7": "never_in_treatment",
    }  # fmt: skip
    eng = drd[(drd.year_basis == "occurrence") & (drd.la_code == ENGLAND)]
    assert eng.groupby("treatment_status").drug_poisoning_deaths.sum().to_dict() == {
        "in_treatment": 3, "left_over_1_year": 1, "left_within_1_year": 1, "never_in_treatment": 2,
    }  # fmt: skip


def test_person_time_split_across_bands(tmp_path):
    land = Landing(tmp_path)
    exit_day = D(2020, 1, 31)
    land.deliver("treatment", D(2021, 6, 30), [
        episode("Q1", "Q", D(2019, 1, 1), exit_day, "dropped_out"),  # followed to as_of: 516 days
        episode("R1", "R", D(2019, 1, 1), exit_day, "completed_drug_free"),  # dies on day 30
        episode("S1", "S", D(2019, 1, 1), exit_day, "transferred_in_custody"),  # next journey on day 40
        episode("S2", "S", D(2020, 3, 11)),
        episode("U1", "U", D(2014, 1, 1), D(2015, 1, 31), "dropped_out"),  # 5 years: 1,826 days
        episode("V1", "V", D(2019, 1, 1), exit_day, "died"),  # exits by death are not at risk
    ])  # fmt: skip
    land.deliver("deaths", D(2021, 6, 30), [
        death("DR", "R", D(2020, 3, 1)),
        death("DS", "S", D(2020, 4, 1)),  # after the next journey's start: not counted
        death("DV", "V", exit_day),
    ])  # fmt: skip
    dat = land.marts()["deaths_after_treatment"]
    days = {(r.exit_year, r.exit_type, r.time_since_exit): round(r.person_years * 365.25) for r in dat.itertuples()}
    assert days == {
        (2020, "unsuccessful", "0-28d"): 28, (2020, "unsuccessful", "29-365d"): 337,
        (2020, "unsuccessful", "1-2y"): 151,
        (2020, "successful", "0-28d"): 28, (2020, "successful", "29-365d"): 2,
        (2020, "transferred", "0-28d"): 28, (2020, "transferred", "29-365d"): 11,
        (2015, "unsuccessful", "0-28d"): 28, (2015, "unsuccessful", "29-365d"): 337,
        (2015, "unsuccessful", "1-2y"): 365, (2015, "unsuccessful", "2-5y"): 1096,
    }  # fmt: skip
    r = row(dat, exit_type="successful", time_since_exit="29-365d")
    assert (r.deaths_all_cause, r.deaths_drug_poisoning) == (1, 1)
    assert r.rate_all_cause_per_1000py == pytest.approx(1000 / (2 / 365.25))
    assert dat[dat.exit_type == "transferred"].deaths_all_cause.sum() == 0
    assert dat.deaths_all_cause.sum() == 1


# ---------------------------------------------------------------------------------------------------------
# 2. sustained_recovery and 6. benefits_outcome


def test_sustained_recovery_flags_at_their_window_edges(tmp_path):
    land = Landing(tmp_path)
    land.deliver("deaths", D(2024, 1, 31), [])
    exit_day = D(2024, 1, 31)  # follow-up [2024-02-01, 2025-02-01); months 7-12 from 2024-08-01
    people = [f"S{i}" for i in range(1, 11)]
    land.deliver("treatment", D(2025, 8, 31),
                 [episode(f"T{p}", p, D(2023, 6, 1), exit_day, "completed_drug_free", la_code=f"E{p}")
                  for p in people])  # fmt: skip
    land.deliver("benefits", D(2025, 8, 31), [
        spell("B1", "S1", D(2023, 1, 1), D(2024, 7, 31)),  # ends before month 7: off benefits
        spell("B2", "S2", D(2023, 1, 1), D(2024, 8, 1)),  # ends on the first day of month 7
        spell("B3", "S3", D(2025, 1, 31)),  # starts on the last day of month 12
        spell("B4", "S4", D(2025, 2, 1)),  # starts the day after
        spell("B5", "S5", D(2023, 1, 1), benefit_type="PIP"),  # not an out-of-work benefit
        spell("B6", "S6", D(2023, 1, 1), benefit_type="UC", uc_conditionality="searching_for_work"),
        spell("B7", "S7", D(2023, 1, 1), benefit_type="UC", uc_conditionality="working_with_requirements"),
    ])  # fmt: skip
    land.deliver("deaths", D(2025, 8, 31), [death("D8", "S8", D(2025, 1, 31)), death("D9", "S9", D(2025, 2, 1))])
    land.deliver("convictions", D(2025, 8, 31), [
        offence("O10", "S10", D(2025, 1, 31), D(2025, 7, 31)),  # proven: disposal before 2025-08-01
        offence("O8", "S8", D(2024, 1, 31), D(2024, 3, 1)),  # on the exit date: outside the follow-up
    ])  # fmt: skip
    sr = land.marts()["sustained_recovery"]
    flags = ["no_representation", "no_reoffending", "alive", "off_out_of_work_benefits", "sustained_recovery"]
    got = {p: rolling(sr, exit_day, la_code=f"E{p}")[flags].tolist() for p in people}
    assert got == {
        "S1": [1, 1, 1, 1, 1], "S2": [1, 1, 1, 0, 0], "S3": [1, 1, 1, 0, 0], "S4": [1, 1, 1, 1, 1],
        "S5": [1, 1, 1, 1, 1], "S6": [1, 1, 1, 0, 0], "S7": [1, 1, 1, 1, 1], "S8": [1, 1, 0, 1, 0],
        "S9": [1, 1, 1, 1, 1], "S10": [1, 0, 1, 1, 0],
    }  # fmt: skip
    eng = rolling(sr, exit_day, la_code=ENGLAND)
    assert eng.cohort == 10 and eng.sustained_recovery_rate == pytest.approx(0.5)


def test_benefits_outcome_flags_cover_their_dates(tmp_path):
    land = Landing(tmp_path)
    land.deliver("deaths", D(2024, 1, 31), [])
    exit_day = D(2024, 1, 31)  # 6 months later: 2024-07-31; 12 months: 2025-01-31
    land.deliver("treatment", D(2025, 2, 28), [
        episode("T1", "B1", D(2023, 6, 1), D(2023, 12, 1), la_code="E1"),  # earlier exit, same person
        episode("T2", "B1", D(2024, 1, 1), exit_day, "completed_drug_free", la_code="E1"),
        episode("T3", "B2", D(2023, 6, 1), exit_day, "dropped_out", la_code="E2"),
    ])  # fmt: skip
    land.deliver("benefits", D(2025, 2, 28), [
        spell("S1", "B1", D(2024, 1, 1), D(2024, 7, 31)),  # covers the start and the 6-month date
        spell("S2", "B1", D(2025, 1, 31), benefit_type="DLA"),  # not out of work
        spell("S3", "B2", D(2023, 6, 2), D(2024, 7, 30)),  # starts a day after the start, ends a day early
        spell("S4", "B2", D(2025, 1, 31)),  # covers the 12-month date
        spell("S5", "B2", D(2023, 1, 1), D(2023, 12, 31), record_status="active"),
    ])  # fmt: skip
    land.deliver("benefits", D(2025, 2, 28), [spell("S5", "B2", D(2023, 1, 1), D(2023, 12, 31),
                                                    record_status="withdrawn")], seq=2)  # fmt: skip
    bo = land.marts()["benefits_outcome"]
    b1 = rolling(bo, exit_day, la_code="E1")
    assert (b1.exit_type, b1.cohort, b1.oow_at_start, b1.oow_at_6_months, b1.oow_at_12_months) == (
        "successful", 1, 1, 1, 0)  # fmt: skip
    b2 = rolling(bo, exit_day, la_code="E2")
    assert (b2.exit_type, b2.oow_at_start, b2.oow_at_6_months, b2.oow_at_12_months) == ("unsuccessful", 0, 0, 1)
    assert rolling(bo, exit_day, la_code=ENGLAND, exit_type="successful").rate_at_6_months == 1.0


# ---------------------------------------------------------------------------------------------------------
# 5. treatment_flow


def test_effective_treatment_is_84_days_or_a_successful_exit(tmp_path):
    land = Landing(tmp_path)
    s = D(2024, 1, 1)
    land.deliver("treatment", D(2024, 3, 31), [
        episode("T1", "P1", s, D(2024, 3, 24), la_code="E1", housing_status="no_fixed_abode"),  # 83 days
        episode("T2", "P2", s, D(2024, 3, 25), la_code="E2"),  # 84 days
        episode("T3", "P3", s, D(2024, 1, 20), "completed_occasional_user", la_code="E3"),
        # Open: 84 days to as_of; 29 years old at the start (30 the day after).
        episode("T4", "P4", D(2024, 1, 7), la_code="E4", setting="residential", date_of_birth=D(1994, 1, 8)),
        episode("T5", "P5", D(2024, 1, 8), la_code="E5"),  # open, 83 days at as_of
    ])  # fmt: skip
    flow = land.marts()["treatment_flow"]
    flow = flow[flow.period_type == "rolling_12_months"]
    effective = flow[flow.la_code != ENGLAND].set_index("la_code").effective_treatment.to_dict()
    assert effective == {"E1": 0, "E2": 1, "E3": 1, "E4": 1, "E5": 0}
    assert row(flow, la_code="E1").housing_status == "no_fixed_abode"
    p4 = row(flow, la_code="E4")
    assert (p4.setting, p4.age_band, p4.in_treatment, p4.new_journeys) == ("residential", "20-29", 1, 1)


# ---------------------------------------------------------------------------------------------------------
# Provisional flags and financial-year rows


@pytest.fixture
def long_history(tmp_path) -> Landing:
    land = Landing(tmp_path)
    land.deliver("deaths", D(2023, 3, 31), [])
    land.deliver("treatment", D(2024, 9, 30), [
        episode("T1", "P1", D(2022, 1, 1), D(2023, 3, 15), "completed_drug_free"),
        episode("T2", "P1", D(2023, 4, 10)),
    ])  # fmt: skip
    land.deliver("convictions", D(2024, 9, 30), [offence("O1", "P1", D(2022, 12, 1), D(2023, 1, 1))])
    return land


def test_provisional_flags(long_history):
    as_of = D(2024, 9, 30)
    marts = long_history.marts(as_of)
    months = {"successful_completion": 6, "sustained_recovery": 18, "proven_reoffending": 18,
              "convictions_before_after": 30, "benefits_outcome": 12}  # fmt: skip
    for name, n in months.items():
        frame = marts[name]
        assert len(frame), name
        expected = [add_months(p, n) > as_of for p in frame.period_end]
        assert frame.provisional.tolist() == expected, name
    sc = marts["successful_completion"]
    assert not rolling(sc, D(2024, 3, 31), la_code=ENGLAND).provisional  # 2024-09-30 is not after as_of
    assert rolling(sc, D(2024, 4, 30), la_code=ENGLAND).provisional
    bo = marts["benefits_outcome"]
    assert not rolling(bo, D(2023, 9, 30), la_code=ENGLAND).provisional
    assert rolling(bo, D(2023, 10, 31), la_code=ENGLAND).provisional
    assert not rolling(marts["sustained_recovery"], D(2023, 3, 31), la_code=ENGLAND).provisional


def test_financial_and_calendar_year_rows_repeat_the_rolling_rows(long_history):
    marts = long_history.marts(D(2024, 9, 30))
    for name, frame in marts.items():
        if "period_type" not in frame:
            continue
        labels = set(zip(frame.period_type, frame.period_label, frame.period_end, strict=True))
        years = {x for x in labels if x[0] != "rolling_12_months"}
        assert years <= {("financial_year", "2022-23", D(2023, 3, 31)), ("financial_year", "2023-24",
                         D(2024, 3, 31)), ("calendar_year", "2023", D(2023, 12, 31))}, name  # fmt: skip
        for period_type, _, end in years:
            same = frame[frame.period_end == end]
            yearly = same[same.period_type == period_type].drop(columns=["period_type", "period_label"])
            rolling_rows = same[same.period_type == "rolling_12_months"].drop(columns=["period_type", "period_label"])
            pd.testing.assert_frame_equal(yearly.reset_index(drop=True), rolling_rows.reset_index(drop=True))
    sc = marts["successful_completion"]
    assert set(sc.period_label[sc.period_type == "financial_year"]) == {"2022-23", "2023-24"}
    fy = row(sc, period_type="financial_year", period_label="2022-23", la_code=ENGLAND)
    assert (fy.in_treatment, fy.successful_completions, fy.not_representing) == (1, 1, 0)  # re-presented


# ---------------------------------------------------------------------------------------------------------
# Deliveries: snapshots, deltas, as-of, quarantine, rejection


def test_deleted_and_corrected_episodes_and_as_of(tmp_path):
    land = Landing(tmp_path)
    land.deliver("treatment", D(2024, 1, 31), [
        episode("E1", "A", D(2023, 6, 1), la_code="E06000001"),
        episode("E2", "B", D(2023, 7, 1), la_code="E06000001"),
    ])  # fmt: skip
    land.deliver("treatment", D(2024, 2, 29), [episode("E1", "A", D(2023, 6, 1), la_code="E06000009")])
    early = land.marts(D(2024, 1, 31))["successful_completion"]
    assert early.period_end.unique().tolist() == [D(2024, 1, 31)]  # nothing of the later delivery
    assert rolling(early, D(2024, 1, 31), la_code="E06000001").in_treatment == 2
    late = land.marts()["successful_completion"]
    assert default_as_of(land.landing) == D(2024, 2, 29)
    assert set(late.la_code) == {"E06000009", ENGLAND}  # E2 deleted, E1 corrected
    assert rolling(late, D(2024, 1, 31), la_code=ENGLAND).in_treatment == 1
    assert (late.as_of == D(2024, 2, 29)).all()
    # An as_of between deliveries sees the earlier one only.
    assert rolling(land.marts(D(2024, 2, 15))["successful_completion"], D(2024, 1, 31),
                   la_code="E06000001").in_treatment == 2  # fmt: skip


def test_later_delta_rows_amend_and_are_invisible_earlier(tmp_path):
    land = Landing(tmp_path)
    land.deliver("deaths", D(2024, 1, 31), [death("D1", "P1", D(2024, 1, 5), underlying_cause="X42")])
    land.deliver("deaths", D(2024, 2, 29), [
        death("D1", "P1", D(2024, 1, 5), underlying_cause="I219", record_status="amended"),
        death("D2", "P2", D(2024, 2, 5), underlying_cause="F112"),
    ])  # fmt: skip
    early = land.marts(D(2024, 1, 31))["drug_related_deaths"]
    late = land.marts(D(2024, 2, 29))["drug_related_deaths"]
    sel = (early.la_code == ENGLAND) & (early.year_basis == "occurrence")
    assert early[sel].drug_poisoning_deaths.sum() == 1
    sel = (late.la_code == ENGLAND) & (late.year_basis == "occurrence")
    assert late[sel].drug_poisoning_deaths.sum() == 1 and late[sel].drug_misuse_deaths.sum() == 1
    assert (early.as_of == D(2024, 1, 31)).all() and (late.as_of == D(2024, 2, 29)).all()


def test_rows_breaking_a_rule_are_skipped_and_counted(tmp_path):
    land = Landing(tmp_path)
    extract = D(2024, 2, 29)
    land.deliver("treatment", D(2024, 1, 31), [episode("E1", "A", D(2023, 6, 1), la_code="E06000001")])
    land.deliver("treatment", extract, [
        episode("E1", "A", D(2023, 6, 1), D(2024, 3, 1), la_code="E06000002"),  # discharge after extract date
        episode("E2", "B", D(2023, 6, 1), substance_1=None),  # a not-null column is null
        episode("E3", "C", D(2023, 6, 1), setting="hospital"),  # a code outside its list
        episode("E4", "D", D(2023, 6, 1), D(2023, 5, 1)),  # discharge before start
        episode("E5", "E", D(2023, 6, 1), la_code="E06000005"),  # valid
    ])  # fmt: skip
    land.deliver("convictions", extract, [
        offence("O1", "A", D(2024, 1, 1), D(2023, 12, 1)),  # disposal before offence
        offence("O2", "A", D(2023, 1, 1), D(2023, 2, 1)),
        offence("O2", "A", D(2023, 1, 1), D(2023, 2, 1)),  # record_id repeats: both rows
    ])  # fmt: skip
    land.deliver("deaths", extract, [death("D1", "F", D(2024, 1, 1), underlying_cause="X4")])  # malformed ICD-10
    pop = load_population(land.landing, land.truth, extract)
    rules = sorted(r for q in pop.landing_state.quarantined for r in q.rules)
    assert rules == sorted([
        "date_after_extract:discharge_date", "not_null:substance_1", "code_list:setting",
        "date_order:discharge_date<treatment_start_date", "date_order:disposal_date<offence_date",
        "duplicate:record_id", "duplicate:record_id", "icd10_malformed:underlying_cause",
    ])  # fmt: skip
    # The quarantined snapshot row is neither a change nor a deletion: E1 keeps its last valid version.
    episodes = {e.record_id: e for js in pop.journeys.values() for j in js for e in j.episodes}
    assert sorted(episodes) == ["E1", "E5"] and episodes["E1"].la_code == "E06000001"
    assert not pop.offences and not pop.deaths


def test_rejected_delivery_and_a_repeated_file_change_nothing(tmp_path):
    land = Landing(tmp_path)
    land.deliver("deaths", D(2024, 1, 31), [death("D1", "P1", D(2024, 1, 5))])
    bad = land.deliver("deaths", D(2024, 2, 29), [death("D2", "P2", D(2024, 2, 5))])
    manifest = bad.with_name(bad.name.replace(".parquet", ".manifest.json"))
    manifest.write_text(manifest.read_text().replace('"row_count": 1', '"row_count": 2'))
    same = (land.landing / "deaths_20240131_01.parquet").read_bytes()
    (land.landing / "deaths_20240331_01.parquet").write_bytes(same)  # the same data file again
    (land.landing / "deaths_20240331_01.manifest.json").write_text(
        (land.landing / "deaths_20240131_01.manifest.json").read_text().replace("2024-01-31", "2024-03-31")
    )
    pop = load_population(land.landing, land.truth, D(2024, 3, 31))
    assert [r.file for r in pop.landing_state.rejected] == ["deaths_20240229_01.parquet"]
    assert [d.data_path.name for d in pop.landing_state.duplicates] == ["deaths_20240331_01.parquet"]
    assert [d.record_id for d in pop.deaths] == ["D1"]
    assert default_as_of(land.landing) == D(2024, 1, 31)  # a no-op repeat is not an applied delivery


def test_csv_delivery_reads_as_the_parquet_one(tmp_path):
    rows = [
        episode("E1", "A", D(2023, 6, 1), D(2024, 1, 10), "completed_drug_free", substance_2="alcohol"),
        episode("E2", "B", D(2023, 6, 1), la_code=None),
    ]
    deaths = [death("D1", "A", D(2024, 1, 20), contributory_causes=["T401", "F112"], drugs_mentioned=["heroin"])]
    frames = []
    for fmt in ("parquet", "csv"):
        (tmp_path / fmt).mkdir()
        land = Landing(tmp_path / fmt)
        land.deliver("treatment", D(2024, 1, 31), rows, fmt=fmt)
        land.deliver("deaths", D(2024, 1, 31), deaths, fmt=fmt)
        frames.append(land.marts())
    for name in MARTS:
        pd.testing.assert_frame_equal(frames[0][name], frames[1][name], obj=name)
    assert "unknown" in set(frames[1]["successful_completion"].la_code)
    assert len(frames[1]["drug_related_deaths"]) and len(frames[1]["deaths_after_treatment"])


# ---------------------------------------------------------------------------------------------------------
# Smoke test on a synthetic population

EXPECTED_COLUMNS = {
    "successful_completion": ["in_treatment", "successful_completions", "not_representing", "rate", "provisional"],
    "sustained_recovery": ["cohort", "no_representation", "no_reoffending", "alive", "off_out_of_work_benefits",
                           "sustained_recovery", "no_representation_rate", "no_reoffending_rate", "alive_rate",
                           "off_out_of_work_benefits_rate", "sustained_recovery_rate", "provisional"],
    "proven_reoffending": ["exit_type", "cohort", "reoffenders", "reoffences", "rate", "reoffences_per_reoffender",
                           "provisional"],
    "convictions_before_after": ["retention", "offence_scope", "cohort", "offences_before", "offences_after",
                                 "percent_change", "provisional"],
    "treatment_flow": ["setting", "housing_status", "age_band", "in_treatment", "new_journeys",
                       "effective_treatment", "exits_successful", "exits_unsuccessful", "exits_transferred",
                       "exits_died"],
    "benefits_outcome": ["exit_type", "cohort", "oow_at_start", "oow_at_6_months", "oow_at_12_months",
                         "rate_at_start", "rate_at_6_months", "rate_at_12_months", "provisional"],
}  # fmt: skip
PERIOD_GRAIN = ["as_of", "period_type", "period_label", "period_end", "la_code", "substance_group"]


@pytest.fixture(scope="module")
def clean_marts(clean_population):
    landing, truth = clean_population / "landing", clean_population / "truth"
    pop = load_population(landing, truth, default_as_of(landing))
    return pop, compute_marts_from(pop)


def test_smoke_on_a_clean_synthetic_population(clean_marts):
    pop, marts = clean_marts
    assert pop.as_of == D(2025, 3, 31)
    state = pop.landing_state
    assert (len(state.applied), state.rejected, state.quarantined) == (48, [], [])
    assert not pop.unmatched_records
    assert list(marts) == list(MARTS)
    for name, cols in EXPECTED_COLUMNS.items():
        assert list(marts[name].columns) == PERIOD_GRAIN + cols, name
    assert list(marts["drug_related_deaths"].columns) == [
        "as_of", "year", "year_basis", "la_code", "sex", "age_band", "treatment_status",
        "drug_poisoning_deaths", "drug_misuse_deaths",
    ]  # fmt: skip
    assert list(marts["deaths_after_treatment"].columns) == [
        "as_of", "exit_year", "exit_type", "substance_group", "time_since_exit", "person_years",
        "deaths_all_cause", "deaths_drug_poisoning", "rate_all_cause_per_1000py", "rate_drug_poisoning_per_1000py",
    ]  # fmt: skip
    for name, frame in marts.items():
        assert len(frame) > 0, name
        assert (frame.as_of == pop.as_of).all(), name
        for column in frame.columns:
            if column in ("as_of", "period_end"):
                assert all(type(v) is dt.date for v in frame[column]), (name, column)
            elif "rate" in column or column in ("person_years", "percent_change", "reoffences_per_reoffender"):
                assert frame[column].dtype == "float64", (name, column)
            elif column == "provisional":
                assert frame[column].dtype == "bool", (name, column)
            elif frame[column].dtype != object:
                assert frame[column].dtype == "int64", (name, column)
        if "la_code" in frame:
            # England counts every person once: with one area per person, it is the sum of the areas.
            counts = [c for c in frame.columns if frame[c].dtype == "int64" and c != "year"]
            keys = [c for c in frame.columns if (frame[c].dtype == object or c == "year") and c != "la_code"]
            areas = frame[frame.la_code != ENGLAND].groupby(keys)[counts].sum().sort_index()
            england = frame[frame.la_code == ENGLAND].set_index(keys)[counts].sort_index()
            pd.testing.assert_frame_equal(areas, england, obj=name)
    periods = sorted(set(marts["successful_completion"].period_end))
    assert len(periods) == 12 and periods[-1] == D(2025, 3, 31)
    sc = marts["successful_completion"]
    eng = sc[(sc.la_code == ENGLAND) & (sc.period_type == "financial_year")]
    assert eng.period_label.unique().tolist() == ["2024-25"]
    assert 200 < eng.in_treatment.sum() < 2000 and 0 < eng.rate.max() < 1
    assert (eng.successful_completions >= eng.not_representing).all()
    flow = marts["treatment_flow"]
    assert (flow.new_journeys >= flow.effective_treatment).all()
    dat = marts["deaths_after_treatment"]
    assert dat.deaths_all_cause.sum() > 0 and dat.person_years.sum() > 100
    assert (marts["drug_related_deaths"].drug_poisoning_deaths >= 0).all()
