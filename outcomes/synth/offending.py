"""Proven offences (convictions and cautions) before, during and after treatment."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from outcomes.contract import codes
from outcomes.reference import offence_codes
from outcomes.synth.calendar import DeliveryCalendar
from outcomes.synth.people import (
    ALCOHOL,
    CLAIMANT,
    DECEDENT,
    NON_OPIATE,
    NON_OPIATE_ALCOHOL,
    OFFENDER,
    OPIATE,
    TREATMENT,
    People,
)
from outcomes.synth.sampling import choice_by_class, lognormal_days
from outcomes.synth.treatment import Journeys, treatment_status_at

# Offences a year, before any treatment, by kind of person (treatment people by substance group).
RATE = {OPIATE: 1.0, NON_OPIATE: 0.6, ALCOHOL: 0.25, NON_OPIATE_ALCOHOL: 0.5}
KIND_RATE = {OFFENDER: 1.2, CLAIMANT: 0.05, DECEDENT: 0.02}
# Relative offending by treatment status: before, in treatment, after a successful exit, after
# another exit. About the halving seen for people retained or completing (context.md).
STATUS_FACTOR = np.array([1.0, 0.53, 0.5, 0.9])

# Mix of offence groups by who offends: opiate, non-opiate, alcohol, mixed, others.
GROUP_TILT = {
    0: {"theft": 2.0, "burglary": 1.5, "handling": 1.5, "drug_possession": 1.4, "fraud": 1.2},
    1: {"drug_possession": 2.0, "drug_supply": 2.0, "violence": 1.3},
    2: {"violence": 2.0, "public_order": 2.0, "motoring": 2.0, "criminal_damage": 1.5},
    3: {"violence": 1.5, "drug_possession": 1.5, "public_order": 1.5},
    4: {},
}
DISPOSAL_BASE = dict(zip(codes.DISPOSAL_TYPES, (0.12, 0.08, 0.20, 0.22, 0.12, 0.01, 0.15, 0.10), strict=False))
DISPOSAL_TILT = {
    "burglary": {"custody": 3.5},
    "robbery": {"custody": 5.0},
    "drug_supply": {"custody": 3.0},
    "sexual": {"custody": 3.0},
    "drug_possession": {"caution": 2.5, "fine": 1.5},
    "theft": {"caution": 1.5},
    "breach": {"custody": 2.5, "community_order": 1.5, "caution": 0.0},
    "motoring": {"fine": 3.0, "caution": 0.0},
}


@dataclass
class Offences:
    row: np.ndarray
    offence_day: np.ndarray
    disposal_day: np.ndarray
    code: np.ndarray
    group: np.ndarray
    trigger: np.ndarray
    disposal: np.ndarray
    release_day: np.ndarray  # -1 when not custody or not known
    la: np.ndarray
    corrected_code: np.ndarray  # a corrected offence code delivered later, or None


class OffenceTable:
    def __init__(self) -> None:
        df = offence_codes()
        self.code = df["offence_code"].to_numpy(dtype=object)
        self.group = df["offence_group"].to_numpy(dtype=object)
        self.trigger = df["trigger_offence"].to_numpy(dtype=bool)
        w = df["weight"].to_numpy(dtype=float)
        self.p = np.array([w * np.array([GROUP_TILT[t].get(g, 1.0) for g in self.group]) for t in range(5)])
        groups = list(codes.OFFENCE_GROUPS)
        self.group_index = np.array([groups.index(g) for g in self.group])
        self.disposal_p = np.array(
            [[DISPOSAL_BASE[d] * DISPOSAL_TILT.get(g, {}).get(d, 1.0) for d in codes.DISPOSAL_TYPES] for g in groups]
        )

    def same_group_other_code(self, rng: np.random.Generator, idx: np.ndarray) -> np.ndarray:
        """Another code of the same offence group (a correction of the offence code)."""
        by_group = np.argsort(self.group_index, kind="stable")
        first = np.searchsorted(self.group_index[by_group], self.group_index[idx])
        size = np.bincount(self.group_index, minlength=self.group_index.max() + 1)[self.group_index[idx]]
        return self.code[by_group[first + (rng.random(len(idx)) * size).astype(np.int64)]]


def make_offences(
    rng: np.random.Generator,
    people: People,
    journeys: Journeys,
    death_day: np.ndarray,
    cal: DeliveryCalendar,
    table: OffenceTable,
) -> Offences:
    n = len(people)
    rate = np.select(
        [people.group == g for g in RATE] + [people.kind == k for k in KIND_RATE],
        list(RATE.values()) + list(KIND_RATE.values()),
        0.0,
    )
    rate = rate * rng.gamma(0.8, 1 / 0.8, n)  # some offend far more than others
    begin = np.maximum(cal.history_start - 730, people.dob + int(16 * 365.25))
    finish = np.minimum(death_day, cal.window_end)
    span = np.maximum(finish - begin, 0)
    count = np.minimum(rng.poisson(rate * span / 365.25), 300)
    row = np.repeat(np.arange(n), count)
    day = begin[row] + (rng.random(len(row)) * span[row]).astype(np.int64)
    status = treatment_status_at(journeys, row, day)
    keep = rng.random(len(row)) < STATUS_FACTOR[status]
    row, day = row[keep], day[keep]

    tilt = np.where(people.kind[row] == TREATMENT, people.group[row], 4).astype(np.int64)
    cum = np.cumsum(table.p / table.p.sum(axis=1, keepdims=True), axis=1)
    idx = (rng.random(len(row))[:, None] > cum[tilt]).sum(axis=1).clip(0, len(table.code) - 1)
    disposal = choice_by_class(rng, codes.DISPOSAL_TYPES, table.disposal_p, table.group_index[idx])
    caution = disposal == "caution"
    lag = np.where(caution, rng.integers(0, 31, len(row)), lognormal_days(rng, 70.0, 0.7, len(row)))
    disposal_day = day + lag.astype(np.int64)
    custody = disposal == "custody"
    sentence = lognormal_days(rng, 200.0, 0.8, len(row)).astype(np.int64)
    release = np.where(custody & (rng.random(len(row)) < 0.85), disposal_day + sentence // 2, -1)
    corrected = np.flatnonzero(rng.random(len(row)) < 0.01)
    corrected_code = np.full(len(row), None, dtype=object)
    corrected_code[corrected] = table.same_group_other_code(rng, idx[corrected])
    return Offences(
        row=row,
        offence_day=day,
        disposal_day=disposal_day,
        code=table.code[idx],
        group=table.group[idx],
        trigger=table.trigger[idx],
        disposal=disposal,
        release_day=release.astype(np.int64),
        la=people.la_at(row, day),
        corrected_code=corrected_code,
    )
