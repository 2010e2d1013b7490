"""Treatment journeys and episodes, as NDTMS would record them."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from outcomes.contract import codes
from outcomes.synth.calendar import DeliveryCalendar
from outcomes.synth.people import ALCOHOL, NEVER, NON_OPIATE, NON_OPIATE_ALCOHOL, OPIATE, TREATMENT, People
from outcomes.synth.sampling import choice, choice_by_class, lognormal_days

# By substance group (opiate, non-opiate only, alcohol only, non-opiate and alcohol).
EXTRA_JOURNEYS = np.array([1.3, 0.6, 0.5, 0.7])  # Poisson mean of re-presentations
JOURNEY_MEDIAN_DAYS = np.array([420.0, 130.0, 150.0, 160.0])
SUCCESS_SHARE = np.array([0.27, 0.60, 0.62, 0.50])  # of journey exits (PHOF-like)

UNSUCCESSFUL = (
    "dropped_out",
    "withdrawn_by_provider",
    "retained_in_custody",
    "declined_treatment",
    "onward_referral_refused",
    "transferred_not_in_custody",
    "transferred_in_custody",
)
UNSUCCESSFUL_P = (0.55, 0.08, 0.07, 0.10, 0.05, 0.11, 0.04)
SUCCESS_P = np.array(
    [  # completed drug free / alcohol free / occasional user
        [0.72, 0.00, 0.28],
        [0.70, 0.00, 0.30],
        [0.00, 0.80, 0.20],
        [0.40, 0.35, 0.25],
    ]
)
SETTING_P = (0.87, 0.07, 0.03, 0.03)
REFERRAL_P = np.array(
    [  # self, criminal_justice, gp, hospital, social_services, other
        [0.45, 0.20, 0.12, 0.05, 0.05, 0.13],
        [0.45, 0.18, 0.12, 0.05, 0.07, 0.13],
        [0.40, 0.05, 0.25, 0.12, 0.05, 0.13],
        [0.42, 0.12, 0.18, 0.08, 0.07, 0.13],
    ]
)
INJECTING_P = np.array(
    [  # never, previously, currently, unknown
        [0.30, 0.35, 0.28, 0.07],
        [0.85, 0.06, 0.03, 0.06],
        [0.92, 0.02, 0.00, 0.06],
        [0.85, 0.07, 0.02, 0.06],
    ]
)
HOUSING_P = np.array(
    [  # no fixed abode, housing problem, no problem, unknown (about 9% / 15% overall)
        [0.12, 0.18, 0.65, 0.05],
        [0.07, 0.13, 0.75, 0.05],
        [0.06, 0.12, 0.77, 0.05],
        [0.07, 0.13, 0.75, 0.05],
    ]
)
NON_OPIATE_DRUGS = (
    "cannabis",
    "cocaine",
    "crack",
    "amphetamine",
    "benzodiazepine",
    "ecstasy",
    "ketamine",
    "nps",
    "other",
)
NON_OPIATE_P = (0.33, 0.25, 0.15, 0.10, 0.06, 0.03, 0.04, 0.02, 0.02)
OPIATE_SECOND = ("crack", "alcohol", "cannabis", "benzodiazepine", "cocaine", None)
OPIATE_SECOND_P = (0.45, 0.15, 0.10, 0.10, 0.05, 0.15)


@dataclass
class Episodes:
    row: np.ndarray  # person row within the chunk
    journey: np.ndarray  # journey number of the person
    start: np.ndarray
    end: np.ndarray  # NEVER while open at the end of the run
    reason: np.ndarray  # true discharge reason (None while open)
    substance_1: np.ndarray
    substance_2: np.ndarray
    substance_3: np.ndarray
    setting: np.ndarray
    referral_source: np.ndarray
    referral_date: np.ndarray  # -1 when not recorded
    injecting_status: np.ndarray
    housing_status: np.ndarray
    la: np.ndarray
    provider_code: np.ndarray
    client_suffix: np.ndarray  # 0, or a second NDTMS client id for this person

    def take(self, keep: np.ndarray) -> Episodes:
        return Episodes(**{f.name: getattr(self, f.name)[keep] for f in fields(self)})

    def __len__(self) -> int:
        return len(self.row)


@dataclass
class Journeys:
    row: np.ndarray
    start: np.ndarray
    end: np.ndarray  # NEVER while open
    successful: np.ndarray


def _substances(rng: np.random.Generator, group: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = len(group)
    s1 = np.empty(n, dtype=object)
    s2 = np.full(n, None, dtype=object)
    s3 = np.full(n, None, dtype=object)
    op = group == OPIATE
    s1[op] = choice(rng, codes.OPIATES, (0.82, 0.10, 0.08), op.sum())
    s2[op] = choice(rng, OPIATE_SECOND, OPIATE_SECOND_P, op.sum())
    third = op & (s2 != None) & (rng.random(n) < 0.25)  # noqa: E711 (object arrays)
    s3[third] = choice(rng, ("benzodiazepine", "cannabis", "alcohol"), (0.4, 0.4, 0.2), third.sum())
    s3[third & (s3 == s2)] = None
    no = group == NON_OPIATE
    s1[no] = choice(rng, NON_OPIATE_DRUGS, NON_OPIATE_P, no.sum())
    second = no & (rng.random(n) < 0.3)
    s2[second] = choice(rng, NON_OPIATE_DRUGS, NON_OPIATE_P, second.sum())
    s2[second & (s2 == s1)] = None
    s1[group == ALCOHOL] = "alcohol"
    noa = group == NON_OPIATE_ALCOHOL
    drug = choice(rng, NON_OPIATE_DRUGS, NON_OPIATE_P, noa.sum())
    alcohol_first = rng.random(noa.sum()) < 0.5
    s1[noa] = np.where(alcohol_first, "alcohol", drug)
    s2[noa] = np.where(alcohol_first, drug, "alcohol")
    return s1, s2, s3


def make_treatment(rng: np.random.Generator, people: People, cal: DeliveryCalendar, geo) -> Episodes:
    """Episodes of every treatment person, before deaths cut them short."""
    rows = np.flatnonzero(people.kind == TREATMENT)
    group = people.group[rows].astype(np.int64)
    n = len(rows)
    k = 1 + np.minimum(rng.poisson(EXTRA_JOURNEYS[group]), 5)
    s1, s2, s3 = _substances(rng, group)
    injecting = choice_by_class(rng, codes.INJECTING_STATUSES, INJECTING_P, group)
    start = np.maximum(rng.integers(cal.history_start, cal.window_end + 1, n), people.dob[rows] + int(16 * 365.25))
    parts: list[dict[str, np.ndarray]] = []
    for j in range(int(k.max(initial=0))):
        active = (k > j) & (start <= cal.window_end)
        if not active.any():
            break
        a = np.flatnonzero(active)
        g = group[a]
        duration = np.maximum(lognormal_days(rng, JOURNEY_MEDIAN_DAYS[g], 0.85, len(a)), 14).astype(np.int64)
        successful = rng.random(len(a)) < SUCCESS_SHARE[g]
        final_reason = np.where(
            successful,
            choice_by_class(rng, codes.SUCCESSFUL_COMPLETION_REASONS, SUCCESS_P, g),
            choice(rng, UNSUCCESSFUL, UNSUCCESSFUL_P, len(a)),
        )
        # Transfers inside a journey: the next episode starts within 21 days elsewhere.
        n_ep = 1 + (rng.random(len(a)) < 0.18) + (rng.random(len(a)) < 0.04)
        cuts = np.sort(rng.random((len(a), 2)), axis=1)
        ep_start = start[a].copy()
        la = people.la_at(rows[a], ep_start)
        setting = choice(rng, codes.SETTINGS, SETTING_P, len(a))
        resident = rng.random(len(a)) < 0.08  # a new client id with a new provider
        for e in range(3):
            on = n_ep > e
            if not on.any():
                break
            last = n_ep == e + 1
            ep_end = np.where(last, start[a] + duration, start[a] + (duration * cuts[:, min(e, 1)]).astype(np.int64))
            ep_end = np.maximum(ep_end, ep_start)
            in_custody = rng.random(len(a)) < 0.25
            reason = np.where(
                last, final_reason, np.where(in_custody, "transferred_in_custody", "transferred_not_in_custody")
            )
            o = np.flatnonzero(on)
            parts.append(
                {
                    "row": rows[a[o]],
                    "journey": np.full(len(o), j),
                    "start": ep_start[o],
                    "end": ep_end[o],
                    "reason": reason[o],
                    "setting": setting[o],
                    "la": la[o],
                    "g": g[o],
                    "person": a[o],
                    "client_suffix": np.where(resident[o] & (j > 0), j, 0),
                }
            )
            gap = np.where(rng.random(len(a)) < 0.6, rng.integers(0, 8, len(a)), rng.integers(8, 22, len(a)))
            ep_start = ep_end + gap
            setting = np.where(in_custody, "prison", choice(rng, codes.SETTINGS, SETTING_P, len(a)))
        exit_day = start[a] + duration
        median_gap = np.where(successful, 260.0, 180.0)
        start[a] = exit_day + 22 + lognormal_days(rng, median_gap, 0.9, len(a)).astype(np.int64)

    cols = {
        key: np.concatenate([p[key] for p in parts]) if parts else np.array([], dtype=object)
        for key in ("row", "journey", "start", "end", "reason", "setting", "la", "g", "person", "client_suffix")
    }
    m = len(cols["row"])
    person = cols["person"].astype(np.int64) if m else np.array([], dtype=np.int64)
    g = cols["g"].astype(np.int64) if m else np.array([], dtype=np.int64)
    # The same person reports much the same substances each time; sometimes the second changes.
    sub2 = s2[person].copy()
    vary = rng.random(m) < 0.15
    sub2[vary & (g == OPIATE)] = choice(rng, OPIATE_SECOND, OPIATE_SECOND_P, (vary & (g == OPIATE)).sum())
    open_ = cols["end"] > cal.window_end
    end = np.where(open_, NEVER, cols["end"]).astype(np.int64)
    reason = np.where(open_, None, cols["reason"])
    setting = cols["setting"]
    referral = choice_by_class(rng, codes.REFERRAL_SOURCES, REFERRAL_P, g)
    referral[setting == "prison"] = "criminal_justice"
    referral_date = cols["start"] - rng.integers(0, 29, m)
    referral_date[rng.random(m) < 0.03] = -1
    provider = geo.provider_code(rng, cols["la"].astype(np.int64), setting)
    eps = Episodes(
        row=cols["row"].astype(np.int64),
        journey=cols["journey"].astype(np.int64),
        start=cols["start"].astype(np.int64),
        end=end,
        reason=reason,
        substance_1=s1[person],
        substance_2=sub2,
        substance_3=s3[person],
        setting=setting,
        referral_source=referral,
        referral_date=referral_date.astype(np.int64),
        injecting_status=injecting[person],
        housing_status=choice_by_class(rng, codes.HOUSING_STATUSES, HOUSING_P, g),
        la=cols["la"].astype(np.int64),
        provider_code=provider,
        client_suffix=cols["client_suffix"].astype(np.int64),
    )
    keep = eps.start <= cal.window_end
    eps = eps.take(keep)
    order = np.lexsort((eps.start, eps.row))
    return eps.take(order)


def journeys_of(eps: Episodes) -> Journeys:
    """One row per (person, journey): first start, last end, and whether it ended successfully."""
    if len(eps) == 0:
        e = np.array([], dtype=np.int64)
        return Journeys(e, e, e, np.array([], dtype=bool))
    key = eps.row * 16 + eps.journey
    order = np.lexsort((eps.end, key))
    k = key[order]
    first = np.r_[True, k[1:] != k[:-1]]
    last = np.r_[k[1:] != k[:-1], True]
    starts = np.minimum.reduceat(eps.start[order], np.flatnonzero(first))
    ends = eps.end[order][last]
    reasons = eps.reason[order][last]
    successful = np.isin(reasons.astype(str), codes.SUCCESSFUL_COMPLETION_REASONS)
    j = Journeys(row=eps.row[order][first], start=starts, end=ends, successful=successful)
    o = np.lexsort((j.start, j.row))
    return Journeys(j.row[o], j.start[o], j.end[o], j.successful[o])


def treatment_status_at(j: Journeys, row: np.ndarray, day: np.ndarray) -> np.ndarray:
    """0 before any treatment, 1 in treatment, 2 after a successful exit, 3 after another exit."""
    span = np.int64(1 << 20)
    keys = j.row * span + (j.start - np.int64(-200000))
    q = row * span + (day - np.int64(-200000))
    i = np.searchsorted(keys, q, side="right") - 1
    found = (i >= 0) & (j.row[np.maximum(i, 0)] == row)
    i = np.maximum(i, 0)
    inside = found & (day <= j.end[i])
    return np.where(~found, 0, np.where(inside, 1, np.where(j.successful[i], 2, 3)))
