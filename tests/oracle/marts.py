"""The eight outcome marts of docs/marts.md, one function each, over a Population.

Each mart first lists its *units* (one dict per counted person, journey or death, with its grain values
and its contribution to each measure), then sums them per grain. Tables with a `la_code` also count every
unit once more in the England row. Rates are computed after the sums.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterable

import pandas as pd

from tests.oracle.codes import ENGLAND
from tests.oracle.dates import ONE_DAY, Period, add_months, age_band, age_in_years, reporting_periods
from tests.oracle.population import Episode, Journey, Population, follow_up, proven_offences

PERIOD_COLUMNS = ["period_type", "period_label", "period_end"]


# ---------------------------------------------------------------------------------------------------------
# Shared helpers


def _sum_units(units: Iterable[dict], grain: list[str], measures: list[str], england: bool) -> list[dict]:
    """Sum `measures` per combination of `grain` values; with `england`, each unit counts once more under
    la_code E92000001."""
    totals: dict[tuple, dict] = {}
    for unit in units:
        areas = [unit["la_code"], ENGLAND] if england else [None]
        for area in areas:
            key = tuple(area if (england and g == "la_code") else unit[g] for g in grain)
            acc = totals.setdefault(key, dict.fromkeys(measures, 0))
            for m in measures:
                acc[m] += unit[m]
    return [dict(zip(grain, key, strict=True)) | acc for key, acc in totals.items()]


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else math.nan


def _frame(rows: list[dict], columns: dict[str, str], sort_by: list[str]) -> pd.DataFrame:
    """A DataFrame with exactly `columns` (name -> kind: date, str, int, float, bool), rows sorted."""
    frame = pd.DataFrame(rows, columns=list(columns))
    for name, kind in columns.items():
        if kind == "int":
            frame[name] = frame[name].astype("int64")
        elif kind == "float":
            frame[name] = frame[name].astype("float64")
        elif kind == "bool":
            frame[name] = frame[name].astype("bool")
        else:
            frame[name] = frame[name].astype("object")
    if len(frame):
        frame = frame.sort_values(sort_by, kind="mergesort").reset_index(drop=True)
    return frame


def _by_period(
    pop: Population,
    units_of: Callable[[Population, Period], list[dict]],
    grain: list[str],
    measures: list[str],
) -> list[dict]:
    """Summed units of every reporting period, with the period columns and `as_of`. Financial- and
    calendar-year rows repeat the rolling row of the same period end."""
    rows = []
    summed_by_end: dict[dt.date, list[dict]] = {}
    for period in reporting_periods(pop.first_extract_date, pop.as_of):
        if period.end not in summed_by_end:
            summed_by_end[period.end] = _sum_units(units_of(pop, period), grain, measures, england=True)
        for row in summed_by_end[period.end]:
            rows.append(
                {
                    "as_of": pop.as_of,
                    "period_type": period.period_type,
                    "period_label": period.period_label,
                    "period_end": period.end,
                    **row,
                }
            )
    return rows


def _period_frame(rows: list[dict], grain: list[str], measures: dict[str, str]) -> pd.DataFrame:
    columns = {"as_of": "date", "period_type": "str", "period_label": "str", "period_end": "date"}
    columns |= dict.fromkeys(grain, "str") | measures
    return _frame(rows, columns, sort_by=["period_end", "period_type", *grain])


def _episodes_in(journeys: list[Journey], period: Period) -> list[tuple[Episode, Journey]]:
    return [(e, j) for j in journeys for e in j.episodes if e.overlaps(period.start, period.end)]


def _latest_episode_in(journeys: list[Journey], period: Period) -> tuple[Episode, Journey] | None:
    """The person's latest episode overlapping the period, by (treatment_start_date, record_id)."""
    overlapping = _episodes_in(journeys, period)
    if not overlapping:
        return None
    return max(overlapping, key=lambda ej: (ej[0].start, ej[0].record_id))


def _latest_exit_in(journeys: list[Journey], period: Period, exit_type: str | None = None) -> Journey | None:
    """The journey with the latest exit dated in the period (by exit date, then journey start)."""
    exits = [
        j for j in journeys if j.exits_in(period.start, period.end) and (exit_type is None or j.exit_type == exit_type)
    ]
    return max(exits, key=lambda j: (j.exit_date, j.start)) if exits else None


def _provisional(period_end: dt.date, months: int, as_of: dt.date) -> bool:
    return add_months(period_end, months) > as_of


# ---------------------------------------------------------------------------------------------------------
# 1. successful_completion


def _successful_completion_units(pop: Population, period: Period) -> list[dict]:
    units = []
    for person_id, journeys in pop.journeys.items():
        latest = _latest_episode_in(journeys, period)
        if latest is None:
            continue
        episode, journey = latest
        last_exit = _latest_exit_in(journeys, period)
        successful = last_exit is not None and last_exit.exit_type == "successful"
        not_representing = successful and not pop.journey_starts_in(person_id, *follow_up(last_exit.exit_date, 6))
        units.append(
            {
                "la_code": episode.la_code,
                "substance_group": journey.substance_group,
                "in_treatment": 1,
                "successful_completions": int(successful),
                "not_representing": int(not_representing),
            }
        )
    return units


def successful_completion(pop: Population) -> pd.DataFrame:
    grain = ["la_code", "substance_group"]
    counts = ["in_treatment", "successful_completions", "not_representing"]
    rows = _by_period(pop, _successful_completion_units, grain, counts)
    for r in rows:
        r["rate"] = _ratio(r["not_representing"], r["in_treatment"])
        r["provisional"] = _provisional(r["period_end"], 6, pop.as_of)
    return _period_frame(rows, grain, dict.fromkeys(counts, "int") | {"rate": "float", "provisional": "bool"})


# ---------------------------------------------------------------------------------------------------------
# 2. sustained_recovery

RECOVERY_FLAGS = ["no_representation", "no_reoffending", "alive", "off_out_of_work_benefits", "sustained_recovery"]


def _sustained_recovery_units(pop: Population, period: Period) -> list[dict]:
    units = []
    for person_id, journeys in pop.journeys.items():
        journey = _latest_exit_in(journeys, period, exit_type="successful")
        if journey is None:
            continue
        f, f12 = follow_up(journey.exit_date, 12)
        f6 = add_months(f, 6)
        death = pop.person_death(person_id)
        flags = {
            "no_representation": not pop.journey_starts_in(person_id, f, f12),
            "no_reoffending": not proven_offences(pop.offences.get(person_id, []), f, f12),
            "alive": not (death is not None and f <= death.date_of_death < f12),
            "off_out_of_work_benefits": not any(
                s.start < f12 and (s.end is None or s.end >= f6) for s in pop.out_of_work_spells(person_id)
            ),
        }
        flags["sustained_recovery"] = all(flags.values())
        units.append(
            {
                "la_code": journey.exit_episode.la_code,
                "substance_group": journey.substance_group,
                "cohort": 1,
                **{k: int(v) for k, v in flags.items()},
            }
        )
    return units


def sustained_recovery(pop: Population) -> pd.DataFrame:
    grain = ["la_code", "substance_group"]
    counts = ["cohort", *RECOVERY_FLAGS]
    rows = _by_period(pop, _sustained_recovery_units, grain, counts)
    for r in rows:
        for flag in RECOVERY_FLAGS:
            r[f"{flag}_rate"] = _ratio(r[flag], r["cohort"])
        r["provisional"] = _provisional(r["period_end"], 18, pop.as_of)
    measures = dict.fromkeys(counts, "int") | {f"{f}_rate": "float" for f in RECOVERY_FLAGS} | {"provisional": "bool"}
    return _period_frame(rows, grain, measures)


# ---------------------------------------------------------------------------------------------------------
# 3. proven_reoffending and convictions_before_after


def _reoffending_index_journey(pop: Population, person_id: str, period: Period) -> Journey | None:
    """The person's earliest journey starting in the period with an active non-breach offence disposed of in
    the 24 months before its start."""
    offences = [o for o in pop.offences.get(person_id, []) if o.offence_group != "breach"]
    for journey in sorted(pop.journeys[person_id], key=lambda j: j.start):
        if not period.contains(journey.start):
            continue
        s = journey.start
        two_years_before = add_months(s, -24)
        if any(two_years_before <= o.disposal_date < s for o in offences):
            return journey
    return None


def _state_at(journey: Journey, end_of_follow_up: dt.date) -> str:
    """`still_in_treatment` when open or exiting after the date, else `successful` or `other`."""
    if journey.is_open or journey.exit_date > end_of_follow_up:
        return "still_in_treatment"
    return "successful" if journey.exit_type == "successful" else "other"


def _proven_reoffending_units(pop: Population, period: Period) -> list[dict]:
    units = []
    for person_id in pop.journeys:
        journey = _reoffending_index_journey(pop, person_id, period)
        if journey is None:
            continue
        f, f12 = follow_up(journey.start, 12)
        state = _state_at(journey, f12 - ONE_DAY)
        reoffences = proven_offences(pop.offences.get(person_id, []), f, f12)
        units.append(
            {
                "la_code": journey.first_episode.la_code,
                "substance_group": journey.substance_group,
                "exit_type": "unsuccessful" if state == "other" else state,
                "cohort": 1,
                "reoffenders": int(bool(reoffences)),
                "reoffences": len(reoffences),
            }
        )
    return units


def proven_reoffending(pop: Population) -> pd.DataFrame:
    grain = ["la_code", "substance_group", "exit_type"]
    counts = ["cohort", "reoffenders", "reoffences"]
    rows = _by_period(pop, _proven_reoffending_units, grain, counts)
    for r in rows:
        r["rate"] = _ratio(r["reoffenders"], r["cohort"])
        r["reoffences_per_reoffender"] = _ratio(r["reoffences"], r["reoffenders"])
        r["provisional"] = _provisional(r["period_end"], 18, pop.as_of)
    measures = dict.fromkeys(counts, "int") | {
        "rate": "float",
        "reoffences_per_reoffender": "float",
        "provisional": "bool",
    }
    return _period_frame(rows, grain, measures)


def _convictions_before_after_units(pop: Population, period: Period) -> list[dict]:
    units = []
    retention_name = {"still_in_treatment": "retained", "successful": "completed", "other": "left"}
    for person_id in pop.journeys:
        journey = _reoffending_index_journey(pop, person_id, period)
        if journey is None:
            continue
        s = journey.start
        f, f24 = follow_up(s, 24)
        retention = retention_name[_state_at(journey, f24 - ONE_DAY)]
        offences = pop.offences.get(person_id, [])
        for scope in ("all", "trigger"):
            trigger_only = scope == "trigger"
            units.append(
                {
                    "la_code": journey.first_episode.la_code,
                    "substance_group": journey.substance_group,
                    "retention": retention,
                    "offence_scope": scope,
                    "cohort": 1,
                    "offences_before": len(proven_offences(offences, add_months(s, -24), s, trigger_only)),
                    "offences_after": len(proven_offences(offences, f, f24, trigger_only)),
                }
            )
    return units


def convictions_before_after(pop: Population) -> pd.DataFrame:
    grain = ["la_code", "substance_group", "retention", "offence_scope"]
    counts = ["cohort", "offences_before", "offences_after"]
    rows = _by_period(pop, _convictions_before_after_units, grain, counts)
    for r in rows:
        r["percent_change"] = _ratio(100 * (r["offences_after"] - r["offences_before"]), r["offences_before"])
        r["provisional"] = _provisional(r["period_end"], 30, pop.as_of)
    measures = dict.fromkeys(counts, "int") | {"percent_change": "float", "provisional": "bool"}
    return _period_frame(rows, grain, measures)


# ---------------------------------------------------------------------------------------------------------
# 4. drug_related_deaths and deaths_after_treatment


def treatment_status_at_death(pop: Population, person_id: str, d: dt.date) -> str:
    journeys = pop.journeys.get(person_id, [])
    episodes = [e for j in journeys for e in j.episodes]
    if any(e.start <= d and (e.discharge is None or e.discharge >= d) for e in episodes) or any(
        e.reason == "died" for e in episodes
    ):
        return "in_treatment"
    exits_before = [j.exit_date for j in journeys if j.exit_date is not None and j.exit_date < d]
    if exits_before:
        return "left_within_1_year" if max(exits_before) >= add_months(d, -12) else "left_over_1_year"
    return "never_in_treatment"


def drug_related_deaths(pop: Population) -> pd.DataFrame:
    units = []
    for death in pop.deaths:
        poisoning, misuse = death.is_drug_poisoning, death.is_drug_misuse
        if not (poisoning or misuse):
            continue
        common = {
            "la_code": death.la_code,
            "sex": death.sex,
            "age_band": age_band(age_in_years(death.date_of_birth, death.date_of_death)),
            "treatment_status": treatment_status_at_death(pop, death.person_id, death.date_of_death),
            "drug_poisoning_deaths": int(poisoning),
            "drug_misuse_deaths": int(misuse),
        }
        units.append({"year": death.date_of_registration.year, "year_basis": "registration", **common})
        units.append({"year": death.date_of_death.year, "year_basis": "occurrence", **common})
    grain = ["year", "year_basis", "la_code", "sex", "age_band", "treatment_status"]
    measures = ["drug_poisoning_deaths", "drug_misuse_deaths"]
    rows = [{"as_of": pop.as_of, **r} for r in _sum_units(units, grain, measures, england=True)]
    columns = {"as_of": "date", "year": "int", **dict.fromkeys(grain[1:], "str"), **dict.fromkeys(measures, "int")}
    return _frame(rows, columns, sort_by=grain)


TIME_BANDS = [("0-28d", 1, 28), ("29-365d", 29, 365), ("1-2y", 366, 730), ("2-5y", 731, None)]


def _band_of_day(k: int) -> str:
    for name, low, high in TIME_BANDS:
        if k >= low and (high is None or k <= high):
            return name
    raise ValueError(k)


def _deaths_after_treatment_units(pop: Population) -> list[dict]:
    units = []
    for person_id, journeys in pop.journeys.items():
        death = pop.person_death(person_id)
        for journey in journeys:
            if journey.exit_type not in ("successful", "unsuccessful", "transferred"):
                continue  # open journeys have no exit; exits by death are not at risk
            exit_date = journey.exit_date
            ends = [add_months(exit_date + ONE_DAY, 60) - ONE_DAY, pop.as_of]
            if death is not None:
                ends.append(death.date_of_death)
            next_start = pop.next_journey_start(journey)
            if next_start is not None:
                ends.append(next_start - ONE_DAY)
            last_day = min(ends)
            days_followed = (last_day - exit_date).days  # follow-up days k = 1 .. days_followed
            counted_death = death is not None and exit_date < death.date_of_death <= last_day
            death_band = _band_of_day((death.date_of_death - exit_date).days) if counted_death else None
            for name, low, high in TIME_BANDS:
                days = min(days_followed, high if high is not None else days_followed) - low + 1
                if days <= 0:
                    continue
                in_band = death_band == name
                units.append(
                    {
                        "exit_year": exit_date.year,
                        "exit_type": journey.exit_type,
                        "substance_group": journey.substance_group,
                        "time_since_exit": name,
                        "days": days,
                        "deaths_all_cause": int(in_band),
                        "deaths_drug_poisoning": int(in_band and death.is_drug_poisoning),
                    }
                )
    return units


def deaths_after_treatment(pop: Population) -> pd.DataFrame:
    grain = ["exit_year", "exit_type", "substance_group", "time_since_exit"]
    measures = ["days", "deaths_all_cause", "deaths_drug_poisoning"]
    rows = []
    for r in _sum_units(_deaths_after_treatment_units(pop), grain, measures, england=False):
        person_years = r.pop("days") / 365.25
        rows.append(
            {
                "as_of": pop.as_of,
                **r,
                "person_years": person_years,
                "rate_all_cause_per_1000py": _ratio(1000 * r["deaths_all_cause"], person_years),
                "rate_drug_poisoning_per_1000py": _ratio(1000 * r["deaths_drug_poisoning"], person_years),
            }
        )
    columns = {
        "as_of": "date",
        "exit_year": "int",
        "exit_type": "str",
        "substance_group": "str",
        "time_since_exit": "str",
        "person_years": "float",
        "deaths_all_cause": "int",
        "deaths_drug_poisoning": "int",
        "rate_all_cause_per_1000py": "float",
        "rate_drug_poisoning_per_1000py": "float",
    }
    return _frame(rows, columns, sort_by=grain)


# ---------------------------------------------------------------------------------------------------------
# 5. treatment_flow

FLOW_COUNTS = [
    "in_treatment",
    "new_journeys",
    "effective_treatment",
    "exits_successful",
    "exits_unsuccessful",
    "exits_transferred",
    "exits_died",
]
EFFECTIVE_DAYS = 84


def _flow_unit(episode: Episode, journey: Journey, **counts: int) -> dict:
    return {
        "la_code": episode.la_code,
        "substance_group": journey.substance_group,
        "setting": episode.setting,
        "housing_status": episode.housing_status,
        "age_band": age_band(age_in_years(episode.date_of_birth, episode.start)),
        **dict.fromkeys(FLOW_COUNTS, 0),
        **counts,
    }


def _treatment_flow_units(pop: Population, period: Period) -> list[dict]:
    units = []
    for journeys in pop.journeys.values():
        latest = _latest_episode_in(journeys, period)
        if latest is not None:
            units.append(_flow_unit(*latest, in_treatment=1))
        for journey in journeys:
            if period.contains(journey.start):
                lasted_until = pop.as_of if journey.is_open else journey.exit_date
                effective = (lasted_until - journey.start).days >= EFFECTIVE_DAYS or journey.exit_type == "successful"
                units.append(
                    _flow_unit(journey.first_episode, journey, new_journeys=1, effective_treatment=int(effective))
                )
            if journey.exits_in(period.start, period.end):
                units.append(_flow_unit(journey.exit_episode, journey, **{f"exits_{journey.exit_type}": 1}))
    return units


def treatment_flow(pop: Population) -> pd.DataFrame:
    grain = ["la_code", "substance_group", "setting", "housing_status", "age_band"]
    rows = _by_period(pop, _treatment_flow_units, grain, FLOW_COUNTS)
    return _period_frame(rows, grain, dict.fromkeys(FLOW_COUNTS, "int"))


# ---------------------------------------------------------------------------------------------------------
# 6. benefits_outcome


def _benefits_outcome_units(pop: Population, period: Period) -> list[dict]:
    units = []
    for person_id, journeys in pop.journeys.items():
        journey = _latest_exit_in(journeys, period)
        if journey is None:
            continue
        spells = pop.out_of_work_spells(person_id)

        def on_benefit(t: dt.date, spells=spells) -> int:
            return int(any(s.covers(t) for s in spells))

        units.append(
            {
                "la_code": journey.exit_episode.la_code,
                "substance_group": journey.substance_group,
                "exit_type": journey.exit_type,
                "cohort": 1,
                "oow_at_start": on_benefit(journey.start),
                "oow_at_6_months": on_benefit(add_months(journey.exit_date, 6)),
                "oow_at_12_months": on_benefit(add_months(journey.exit_date, 12)),
            }
        )
    return units


def benefits_outcome(pop: Population) -> pd.DataFrame:
    grain = ["la_code", "substance_group", "exit_type"]
    counts = ["cohort", "oow_at_start", "oow_at_6_months", "oow_at_12_months"]
    rows = _by_period(pop, _benefits_outcome_units, grain, counts)
    for r in rows:
        r["rate_at_start"] = _ratio(r["oow_at_start"], r["cohort"])
        r["rate_at_6_months"] = _ratio(r["oow_at_6_months"], r["cohort"])
        r["rate_at_12_months"] = _ratio(r["oow_at_12_months"], r["cohort"])
        r["provisional"] = _provisional(r["period_end"], 12, pop.as_of)
    measures = dict.fromkeys(counts, "int") | {
        "rate_at_start": "float",
        "rate_at_6_months": "float",
        "rate_at_12_months": "float",
        "provisional": "bool",
    }
    return _period_frame(rows, grain, measures)


MARTS: dict[str, Callable[[Population], pd.DataFrame]] = {
    "successful_completion": successful_completion,
    "sustained_recovery": sustained_recovery,
    "proven_reoffending": proven_reoffending,
    "convictions_before_after": convictions_before_after,
    "drug_related_deaths": drug_related_deaths,
    "deaths_after_treatment": deaths_after_treatment,
    "treatment_flow": treatment_flow,
    "benefits_outcome": benefits_outcome,
}
