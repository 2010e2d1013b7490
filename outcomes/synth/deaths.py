"""Deaths with ONS-style causes, coroners' registration delays, and their effect on treatment."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from outcomes.reference import icd10_causes
from outcomes.synth.calendar import DeliveryCalendar
from outcomes.synth.people import (
    ALCOHOL,
    CLAIMANT,
    DECEDENT,
    NEVER,
    NON_OPIATE,
    NON_OPIATE_ALCOHOL,
    OFFENDER,
    OPIATE,
    TREATMENT,
    People,
)
from outcomes.synth.sampling import lognormal_days
from outcomes.synth.treatment import Episodes, Journeys

CAUSE_GROUPS = (
    "drug_poisoning",
    "alcohol",
    "liver",
    "infection",
    "respiratory",
    "circulatory",
    "cancer",
    "external_other",
    "suicide_other",
    "other",
)
# Contexts: opiate, non-opiate only, alcohol only, non-opiate and alcohol, within 28 days of
# leaving treatment, offender, claimant, general population.
OPIATE_CTX, NON_OPIATE_CTX, ALCOHOL_CTX, NOA_CTX, POST_EXIT_CTX, OFFENDER_CTX, CLAIMANT_CTX, GENERAL_CTX = range(8)
CAUSE_P = np.array(
    [
        # poison alcohol liver infect resp circ cancer ext suicide other
        [0.40, 0.02, 0.09, 0.08, 0.12, 0.10, 0.06, 0.05, 0.05, 0.03],
        [0.30, 0.02, 0.03, 0.04, 0.06, 0.15, 0.06, 0.14, 0.14, 0.06],
        [0.06, 0.30, 0.20, 0.04, 0.08, 0.14, 0.08, 0.04, 0.03, 0.03],
        [0.20, 0.15, 0.12, 0.05, 0.08, 0.14, 0.07, 0.07, 0.08, 0.04],
        [0.78, 0.02, 0.01, 0.02, 0.03, 0.03, 0.00, 0.04, 0.06, 0.01],
        [0.45, 0.04, 0.04, 0.03, 0.06, 0.12, 0.08, 0.08, 0.06, 0.04],
        [0.14, 0.03, 0.05, 0.04, 0.11, 0.22, 0.24, 0.04, 0.03, 0.10],
        [0.00, 0.01, 0.02, 0.05, 0.14, 0.30, 0.30, 0.03, 0.01, 0.14],
    ]
)
TREATMENT_WEIGHTED = {OPIATE_CTX, NON_OPIATE_CTX, ALCOHOL_CTX, NOA_CTX, POST_EXIT_CTX, OFFENDER_CTX}

BASE_HAZARD = {OPIATE: 0.011, NON_OPIATE: 0.004, ALCOHOL: 0.014, NON_OPIATE_ALCOHOL: 0.008}
OFFENDER_HAZARD, CLAIMANT_HAZARD = 0.008, 0.005

# name, controlled under the Misuse of Drugs Act 1971, ICD-10 T-code of the poisoning
DRUGS = (
    ("heroin", True, "T401"),
    ("morphine", True, "T402"),
    ("methadone", True, "T403"),
    ("cocaine", True, "T405"),
    ("diazepam", True, "T424"),
    ("pregabalin", True, "T427"),
    ("gabapentin", True, "T427"),
    ("tramadol", True, "T402"),
    ("codeine", True, "T402"),
    ("mdma", True, "T436"),
    ("amphetamine", True, "T436"),
    ("ketamine", True, "T411"),
    ("paracetamol", False, "T391"),
    ("amitriptyline", False, "T430"),
    ("citalopram", False, "T432"),
    ("mirtazapine", False, "T432"),
    ("propranolol", False, "T447"),
    ("alcohol", False, "T510"),
)
DRUG_P = np.array(
    [  # by substance group of the person; the last row for everyone else
        [22, 10, 14, 6, 8, 6, 3, 2, 2, 0, 0, 0, 1, 1, 1, 0, 0, 4],
        [2, 1, 2, 25, 6, 3, 1, 1, 1, 8, 6, 3, 2, 2, 2, 1, 0, 4],
        [1, 1, 1, 3, 6, 2, 2, 4, 5, 0, 0, 0, 8, 8, 5, 4, 2, 12],
        [4, 2, 3, 14, 6, 3, 2, 2, 3, 4, 3, 2, 4, 3, 2, 2, 1, 8],
        [3, 2, 2, 6, 4, 3, 2, 6, 7, 2, 1, 1, 12, 10, 6, 4, 3, 6],
    ],
    dtype=float,
)
OTHER_CONTRIBUTORY = ("I10", "E119", "J449", "F172", "K746", "B182", "J189", "I251")


@dataclass
class Deaths:
    row: np.ndarray
    day: np.ndarray
    registration: np.ndarray
    cause: np.ndarray
    contributory: list[list[str]]
    drugs: list[list[str]]
    controlled: np.ndarray
    la: np.ndarray
    amended_cause: np.ndarray  # the cause an amendment brings, or None


class CauseTable:
    def __init__(self) -> None:
        causes = icd10_causes()
        self.codes, self.p_general, self.p_treatment = {}, {}, {}
        for group in CAUSE_GROUPS:
            g = causes[causes["cause_group"] == group]
            self.codes[group] = g["icd10_code"].to_numpy(dtype=object)
            for weights, col in ((self.p_general, "weight_general"), (self.p_treatment, "weight_treatment")):
                w = g[col].to_numpy(dtype=float) + 1e-9
                weights[group] = w / w.sum()
        self.poisoning = set(causes.loc[causes["drug_poisoning"], "icd10_code"])

    def sample(self, rng: np.random.Generator, context: np.ndarray) -> np.ndarray:
        out = np.empty(len(context), dtype=object)
        cum = np.cumsum(CAUSE_P, axis=1)
        group_idx = (rng.random(len(context))[:, None] > cum[context]).sum(axis=1).clip(0, len(CAUSE_GROUPS) - 1)
        for gi, group in enumerate(CAUSE_GROUPS):
            for treated in (True, False):
                sel = (group_idx == gi) & (np.isin(context, list(TREATMENT_WEIGHTED)) == treated)
                if sel.any() and len(self.codes[group]):
                    p = (self.p_treatment if treated else self.p_general)[group]
                    out[sel] = rng.choice(self.codes[group], sel.sum(), p=p)
        missing = np.array([c is None for c in out])
        out[missing] = rng.choice(self.codes["other"], missing.sum(), p=self.p_general["other"])
        return out


def _hazard(people: People, cal: DeliveryCalendar) -> np.ndarray:
    age = (cal.window_start - people.dob) / 365.25
    base = np.select(
        [people.group == g for g in BASE_HAZARD] + [people.kind == OFFENDER, people.kind == CLAIMANT],
        [*list(BASE_HAZARD.values()), OFFENDER_HAZARD, CLAIMANT_HAZARD],
        0.0,
    )
    return base * np.exp(0.075 * (age - 45))


def make_deaths(
    rng: np.random.Generator, people: People, journeys: Journeys, cal: DeliveryCalendar, causes: CauseTable
) -> Deaths:
    n = len(people)
    hazard = _hazard(people, cal)
    with np.errstate(divide="ignore"):
        day = cal.history_start + rng.exponential(1.0, n) / hazard * 365.25
    day = np.where(hazard > 0, day, np.inf)
    decedent = people.kind == DECEDENT
    day[decedent] = rng.integers(cal.history_start, cal.window_end + 1, decedent.sum())
    context = np.where(
        people.kind == TREATMENT,
        people.group,
        np.select([people.kind == OFFENDER, people.kind == CLAIMANT], [OFFENDER_CTX, CLAIMANT_CTX], GENERAL_CTX),
    )

    # The weeks after leaving treatment carry a high risk of overdose, opiate users most.
    closed = journeys.end <= cal.window_end
    g = people.group[journeys.row]
    p_exit = np.where(
        g == OPIATE, np.where(journeys.successful, 0.003, 0.008), np.where(journeys.successful, 0.001, 0.003)
    )
    dies = closed & (rng.random(len(journeys.row)) < p_exit)
    exit_death = journeys.end + rng.integers(1, 29, len(journeys.row))
    post = np.full(n, np.inf)
    np.minimum.at(post, journeys.row[dies], exit_death[dies])
    after_exit = post < day
    day = np.where(after_exit, post, day)
    context = np.where(after_exit, POST_EXIT_CTX, context)

    dead = np.flatnonzero(day <= cal.window_end)
    d_day = day[dead].astype(np.int64)
    cause = causes.sample(rng, context[dead])
    poisoning = np.isin(cause, list(causes.poisoning))
    misuse_code = np.array(
        [c[:3] in {"F11", "F12", "F13", "F14", "F15", "F16", "F18", "F19"} for c in cause], dtype=bool
    )
    drug_row = np.where(people.kind[dead] == TREATMENT, people.group[dead], 4).astype(np.int64)
    drugs, contributory, controlled = [], [], np.zeros(len(dead), dtype=bool)
    p_drug = DRUG_P / DRUG_P.sum(axis=1, keepdims=True)
    for i in range(len(dead)):
        if poisoning[i]:
            picks = list(dict.fromkeys(rng.choice(len(DRUGS), 1 + rng.binomial(2, 0.35), p=p_drug[drug_row[i]])))
            if misuse_code[i] and not any(DRUGS[j][1] for j in picks):
                picks.insert(0, 0 if drug_row[i] == OPIATE else 3)
            drugs.append([DRUGS[j][0] for j in picks])
            contributory.append(sorted({DRUGS[j][2] for j in picks}))
            controlled[i] = any(DRUGS[j][1] for j in picks)
        else:
            drugs.append([])
            k = rng.binomial(2, 0.3)
            contributory.append(sorted(set(rng.choice(OTHER_CONTRIBUTORY, k))) if k else [])
    # Coroners' inquests delay registration by months: external causes, drug deaths, some others.
    coroner = (
        poisoning
        | np.isin(np.array([c[0] for c in cause], dtype=object), list("VWXY"))
        | (rng.random(len(dead)) < 0.08)
    )
    delay = np.where(coroner, lognormal_days(rng, 165.0, 0.55, len(dead)), 1 + rng.poisson(4, len(dead)))
    amended = rng.random(len(dead)) < 0.03
    amended_cause = np.where(amended, causes.sample(rng, context[dead]), None)
    return Deaths(
        row=dead,
        day=d_day,
        registration=(d_day + delay).astype(np.int64),
        cause=cause,
        contributory=contributory,
        drugs=drugs,
        controlled=controlled,
        la=people.la_at(dead, d_day),
        amended_cause=amended_cause,
    )


def cut_treatment_at_death(
    rng: np.random.Generator, eps: Episodes, deaths: Deaths, n_people: int, cal: DeliveryCalendar
) -> Episodes:
    """No episode starts after death; one open at death ends with `died` (mostly) on that day."""
    death_day = np.full(n_people, np.iinfo(np.int64).max)
    death_day[deaths.row] = deaths.day
    dd = death_day[eps.row]
    eps = eps.take(eps.start <= dd)
    dd = death_day[eps.row]
    cut = eps.end > dd
    recorded = rng.random(len(eps)) < 0.9
    late_end = dd + rng.integers(30, 121, len(eps))  # the provider notices later
    late_known = late_end <= cal.window_end
    end = np.where(cut & recorded, dd, np.where(cut & late_known, late_end, np.where(cut, NEVER, eps.end)))
    reason = np.where(
        cut & recorded, "died", np.where(cut & late_known, "dropped_out", np.where(cut, None, eps.reason))
    )
    eps.end, eps.reason = end.astype(np.int64), reason
    return eps
