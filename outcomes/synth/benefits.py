"""DWP benefit spells: legacy out-of-work benefits, Universal Credit, disability and carer benefits."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from outcomes.contract import codes
from outcomes.synth.calendar import DeliveryCalendar, to_days
from outcomes.synth.people import (
    ALCOHOL,
    CLAIMANT,
    DECEDENT,
    NON_OPIATE,
    NON_OPIATE_ALCOHOL,
    OFFENDER,
    OPIATE,
    People,
)
from outcomes.synth.sampling import choice, lognormal_days
from outcomes.synth.treatment import Journeys, treatment_status_at

# Share who claim at all (heroin or crack users: about 80% on benefits, context.md).
CLAIM_P = {OPIATE: 0.92, NON_OPIATE: 0.55, ALCOHOL: 0.6, NON_OPIATE_ALCOHOL: 0.7}
KIND_CLAIM_P = {OFFENDER: 0.5, CLAIMANT: 1.0, DECEDENT: 0.15}
UC_FULL_SERVICE = to_days(dt.date(2018, 6, 1))  # natural migration from here ...
UC_MANAGED_END = to_days(dt.date(2024, 12, 31))  # ... managed migration done by here
PIP_START = to_days(dt.date(2013, 4, 8))
LEGACY = ("JSA", "ESA", "IS")
LEGACY_P = (0.35, 0.48, 0.17)
LEGACY_MEDIAN = {"JSA": 150.0, "ESA": 700.0, "IS": 500.0, "IB": 2500.0}
ADULT = int(16 * 365.25)  # nobody claims, offends or starts treatment before 16
UC_P = (0.35, 0.30, 0.05, 0.08, 0.17, 0.05)


@dataclass
class Spells:
    row: np.ndarray
    benefit_type: np.ndarray
    uc_conditionality: np.ndarray
    start: np.ndarray
    end: np.ndarray  # NEVER-like large value while open at the end of the run


def make_spells(
    rng: np.random.Generator, people: People, journeys: Journeys, death_day: np.ndarray, cal: DeliveryCalendar
) -> Spells:
    n = len(people)
    p = np.select(
        [people.group == g for g in CLAIM_P] + [people.kind == k for k in KIND_CLAIM_P],
        list(CLAIM_P.values()) + list(KIND_CLAIM_P.values()),
        0.0,
    )
    claims = np.flatnonzero(rng.random(n) < p)
    heavy = np.isin(people.group[claims], (OPIATE, NON_OPIATE_ALCOHOL))  # long spells, short gaps
    uc_day = rng.integers(UC_FULL_SERVICE, UC_MANAGED_END, len(claims))
    end_of_life = np.minimum(death_day[claims], cal.window_end + 3650)
    # Some long-term claimants have been on Incapacity Benefit or Income Support since the 2000s.
    long_term = rng.random(len(claims)) < 0.08
    t = np.where(
        long_term,
        rng.integers(to_days(dt.date(2004, 1, 1)), to_days(dt.date(2008, 10, 27)), len(claims)),
        cal.history_start - rng.integers(0, 4 * 365, len(claims)),
    )
    adult = people.dob[claims] + ADULT
    t = np.maximum(t, adult)
    parts = []
    for step in range(40):
        live = np.flatnonzero((t <= cal.window_end) & (t < end_of_life))
        if not len(live):
            break
        s = t[live]
        uc = s >= uc_day[live]
        btype = np.where(uc, "UC", choice(rng, LEGACY, LEGACY_P, len(live)))
        if step == 0:
            btype = np.where(long_term[live] & ~uc, choice(rng, ("IB", "IS"), (0.7, 0.3), len(live)), btype)
        median = np.array([LEGACY_MEDIAN.get(b, 300.0) for b in btype])
        median = np.where(heavy[live], median * 3.0, median)
        e = s + np.maximum(lognormal_days(rng, median, 0.9, len(live)), 7).astype(np.int64)
        # Legacy claims move to UC on the person's migration date.
        migrate = ~uc & (e >= uc_day[live])
        e = np.where(migrate, uc_day[live] - 1, e)
        e = np.minimum(e, end_of_life[live])
        cond = np.where(btype == "UC", choice(rng, codes.UC_CONDITIONALITY, UC_P, len(live)), None)
        parts.append((claims[live], btype, cond, s, e))
        # Off benefits for a while; longer after a successful treatment exit.
        status = treatment_status_at(journeys, claims[live], e)
        gap_median = np.where(heavy[live], 30.0, 250.0) * np.where(status == 2, 3.0, 1.0)
        gap = lognormal_days(rng, gap_median, 1.0, len(live)).astype(np.int64)
        t[live] = np.where(migrate, uc_day[live], e + 1 + gap)

    # Disability and carer benefits run beside the out-of-work ones.
    extra = claims[rng.random(len(claims)) < 0.2]
    older = np.flatnonzero((people.kind == DECEDENT) & (rng.random(n) < 0.5))
    extra_rows = np.concatenate([extra, older])
    s = np.maximum(cal.history_start - rng.integers(0, 6 * 365, len(extra_rows)), people.dob[extra_rows] + ADULT)
    btype = np.where(
        np.isin(extra_rows, older),
        "PC",
        np.where(s < PIP_START, "DLA", choice(rng, ("PIP", "CA"), (0.8, 0.2), len(extra_rows))),
    )
    e = s + lognormal_days(rng, 2000.0, 0.8, len(extra_rows)).astype(np.int64)
    e = np.minimum(e, death_day[extra_rows])
    alive = s < death_day[extra_rows]  # no claim starts after death
    parts.append((extra_rows[alive], btype[alive], np.full(int(alive.sum()), None, dtype=object), s[alive], e[alive]))

    row = np.concatenate([q[0] for q in parts]).astype(np.int64)
    return Spells(
        row=row,
        benefit_type=np.concatenate([q[1] for q in parts]).astype(object),
        uc_conditionality=np.concatenate([q[2] for q in parts]).astype(object),
        start=np.concatenate([q[3] for q in parts]).astype(np.int64),
        end=np.concatenate([q[4] for q in parts]).astype(np.int64),
    )
