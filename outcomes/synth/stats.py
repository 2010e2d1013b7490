"""Rates the synthetic population produces, to set beside the published figures (context.md)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from outcomes.contract import OUT_OF_WORK_BENEFITS, OUT_OF_WORK_UC_CONDITIONALITY
from outcomes.synth.people import KINDS, OPIATE, TREATMENT

TWO_YEARS = 730


@dataclass(frozen=True)
class Figure:
    measure: str
    value: float
    unit: str  # "%" or "n" or "days"
    imitates: str


class SynthStats:
    def __init__(self, cal) -> None:
        self.cal = cal
        self.c: Counter = Counter()

    def add(self, people, eps, journeys, deaths, offs, spells, causes) -> None:
        c, cal = self.c, self.cal
        for k, name in enumerate(KINDS):
            c[f"persons_{name}"] += int((people.kind == k).sum())
        c["episodes"] += len(eps)
        c["episodes_nfa"] += int((eps.housing_status == "no_fixed_abode").sum())
        c["episodes_housing_problem"] += int((eps.housing_status == "housing_problem").sum())
        in_window = journeys.start >= cal.window_start
        c["journeys_new"] += int(in_window.sum())
        c["journeys_new_opiate"] += int((in_window & (people.group[journeys.row] == OPIATE)).sum())
        age_at_start = (journeys.start - people.dob[journeys.row]) / 365.25
        c["journeys_new_40plus"] += int((in_window & (age_at_start >= 40)).sum())
        exits = (journeys.end >= cal.window_start) & (journeys.end <= cal.window_end)
        c["exits"] += int(exits.sum())
        c["exits_successful"] += int((exits & journeys.successful).sum())
        # Re-presentation within 6 months of a successful completion (a closed window only).
        done = journeys.successful & (journeys.end <= cal.window_end - 183)
        nxt = np.r_[journeys.row[1:] == journeys.row[:-1], False]
        next_start = np.r_[journeys.start[1:], 0]
        c["completions_followed"] += int(done.sum())
        c["completions_representing"] += int((done & nxt & (next_start - journeys.end < 183)).sum())

        c["deaths"] += len(deaths.row)
        treated = people.kind[deaths.row] == TREATMENT
        poison = np.isin(deaths.cause, list(causes.poisoning))
        c["deaths_treated"] += int(treated.sum())
        c["deaths_treated_poisoning"] += int((treated & poison).sum())
        c["deaths_poisoning"] += int(poison.sum())
        c["deaths_poisoning_never_treated"] += int((poison & ~treated).sum())
        c["poisoning_registration_delay_days"] += int((deaths.registration - deaths.day)[poison].sum())

        c["offences"] += len(offs.row)
        c["offences_by_treatment_people"] += int((people.kind[offs.row] == TREATMENT).sum())
        self._before_after(people, journeys, offs)

        c["spells"] += len(spells.row)
        c["spells_by_treatment_people"] += int((people.kind[spells.row] == TREATMENT).sum())
        day = cal.window_start
        out_of_work = np.isin(spells.benefit_type, OUT_OF_WORK_BENEFITS) | (
            (spells.benefit_type == "UC") & np.isin(spells.uc_conditionality.astype(str), OUT_OF_WORK_UC_CONDITIONALITY)
        )
        on = out_of_work & (spells.start <= day) & (spells.end >= day)
        opiate_alive = people.group == OPIATE
        c["opiate_persons"] += int(opiate_alive.sum())
        c["opiate_on_out_of_work"] += len(np.unique(spells.row[on & (people.group[spells.row] == OPIATE)]))

    def _before_after(self, people, journeys, offs) -> None:
        """Convictions in the 24 months before and after a journey start, by retention at 24 months."""
        first = np.r_[True, journeys.row[1:] != journeys.row[:-1]]
        j = np.flatnonzero(
            first
            & (journeys.start >= self.cal.history_start + TWO_YEARS)
            & (journeys.start <= self.cal.window_end - TWO_YEARS)
        )
        start = np.full(len(people), -1, dtype=np.int64)
        start[journeys.row[j]] = journeys.start[j]
        retained = np.zeros(len(people), dtype=bool)
        retained[journeys.row[j]] = journeys.end[j] > journeys.start[j] + TWO_YEARS
        completed = np.zeros(len(people), dtype=bool)
        completed[journeys.row[j]] = journeys.successful[j] & (journeys.end[j] <= journeys.start[j] + TWO_YEARS)
        s = start[offs.row]
        has = s >= 0
        before = has & (offs.offence_day < s) & (offs.offence_day >= s - TWO_YEARS)
        after = has & (offs.offence_day > s) & (offs.offence_day <= s + TWO_YEARS)
        for name, who in (("retained", retained), ("completed", completed)):
            w = who[offs.row]
            self.c[f"before_{name}"] += int((before & w).sum())
            self.c[f"after_{name}"] += int((after & w).sum())

    def figures(self) -> list[Figure]:
        c = self.c

        def pct(a: str, b: str) -> float:
            return 100.0 * c[a] / c[b] if c[b] else float("nan")

        def fall(name: str) -> float:
            b = c[f"before_{name}"]
            return 100.0 * (1 - c[f"after_{name}"] / b) if b else float("nan")

        return [
            Figure("persons", sum(c[f"persons_{k}"] for k in KINDS), "n", "synthetic population size"),
            Figure("persons ever in treatment", c["persons_treatment"], "n", "the rest appear only in other sources"),
            Figure(
                "new journeys that are opiate users",
                pct("journeys_new_opiate", "journeys_new"),
                "%",
                "roughly half of adults in treatment use opiates",
            ),
            Figure(
                "new journeys aged 40 or over",
                pct("journeys_new_40plus", "journeys_new"),
                "%",
                "the 40+ group is the largest group of new presentations",
            ),
            Figure("episodes starting with no fixed abode", pct("episodes_nfa", "episodes"), "%", "9% (2010-11)"),
            Figure(
                "episodes starting with another housing problem",
                pct("episodes_housing_problem", "episodes"),
                "%",
                "15% (2010-11)",
            ),
            Figure(
                "journey exits that are successful completions",
                pct("exits_successful", "exits"),
                "%",
                "about 30,000 completions a year against ~200,000 in treatment",
            ),
            Figure(
                "successful completions re-presenting within 6 months",
                pct("completions_representing", "completions_followed"),
                "%",
                "'nearly one third' complete and do not return",
            ),
            Figure("fall in convictions, retained 2 years", fall("retained"), "%", "47% (2006-07 cohort)"),
            Figure("fall in convictions, completed within 2 years", fall("completed"), "%", "48% (2006-07 cohort)"),
            Figure(
                "opiate users on out-of-work benefits",
                pct("opiate_on_out_of_work", "opiate_persons"),
                "%",
                "about 80% of heroin or crack users on benefits",
            ),
            Figure(
                "convictions of people never in treatment",
                100 - pct("offences_by_treatment_people", "offences"),
                "%",
                "most conviction records match nobody in treatment",
            ),
            Figure(
                "benefit spells of people never in treatment",
                100 - pct("spells_by_treatment_people", "spells"),
                "%",
                "most benefit records match nobody in treatment",
            ),
            Figure(
                "deaths of people never in treatment",
                100 - pct("deaths_treated", "deaths"),
                "%",
                "most death records match nobody in treatment",
            ),
            Figure(
                "deaths after treatment that are drug poisonings",
                pct("deaths_treated_poisoning", "deaths_treated"),
                "%",
                "drug poisoning is the leading cause of death after treatment",
            ),
            Figure(
                "drug poisoning deaths never in treatment",
                pct("deaths_poisoning_never_treated", "deaths_poisoning"),
                "%",
                "about half of drug misuse deaths had no recent treatment",
            ),
            Figure(
                "mean registration delay of drug poisoning deaths",
                c["poisoning_registration_delay_days"] / c["deaths_poisoning"]
                if c["deaths_poisoning"]
                else float("nan"),
                "days",
                "inquests delay registration by months",
            ),
        ]
