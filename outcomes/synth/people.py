"""Persons of the synthetic population: who they are, where they live, how their names vary."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr, ndtri

from outcomes.reference import local_authorities, postcode_districts
from outcomes.synth import names
from outcomes.synth.calendar import DeliveryCalendar

# Kinds of person: problem users who come into treatment, and people who appear only in the
# other sources (most conviction, benefit and death records match nobody in treatment).
KINDS = ("treatment", "offender", "claimant", "decedent")
KIND_SHARES = np.array([0.40, 0.30, 0.20, 0.10])
TREATMENT, OFFENDER, CLAIMANT, DECEDENT = range(4)

# Substance group of a treatment person; roughly half of adults in treatment use opiates.
GROUPS = ("opiate", "non_opiate_only", "alcohol_only", "non_opiate_and_alcohol")
GROUP_SHARES = np.array([0.50, 0.13, 0.27, 0.10])
OPIATE, NON_OPIATE, ALCOHOL, NON_OPIATE_ALCOHOL = range(4)

NEVER = np.iinfo(np.int32).max  # a day that never comes


@dataclass
class People:
    index: np.ndarray  # global person number
    person_id: np.ndarray
    kind: np.ndarray
    group: np.ndarray  # -1 for people never in treatment
    sex: np.ndarray
    dob: np.ndarray
    forename: np.ndarray
    surname: np.ndarray
    new_surname: np.ndarray  # surname after a change (marriage), else the same
    surname_change_day: np.ndarray
    la: np.ndarray  # row of the local authority table before a move
    district: np.ndarray
    move_day: np.ndarray
    la_after: np.ndarray
    district_after: np.ndarray
    alias_forename: np.ndarray  # a conviction alias, or None
    alias_surname: np.ndarray
    alias_dob: np.ndarray
    twin_of: np.ndarray  # -1, or the global index of a twin / father of the same name

    def __len__(self) -> int:
        return len(self.index)

    def la_at(self, rows: np.ndarray, day: np.ndarray) -> np.ndarray:
        return np.where(day >= self.move_day[rows], self.la_after[rows], self.la[rows])

    def district_at(self, rows: np.ndarray, day: np.ndarray) -> np.ndarray:
        return np.where(day >= self.move_day[rows], self.district_after[rows], self.district[rows])

    def surname_at(self, rows: np.ndarray, day: np.ndarray) -> np.ndarray:
        return np.where(day >= self.surname_change_day[rows], self.new_surname[rows], self.surname[rows])


def _zipf(n: int, s: float) -> np.ndarray:
    w = 1.0 / np.arange(1, n + 1) ** s
    return w / w.sum()


# Forenames fall with rank more gently than a surname's: the commonest forename of an adult
# cohort is borne by 3-5% of its men or women (ONS baby names), not a tenth.
FORENAME_RANK_EXPONENT = 0.5


def surname_shares(listed: list[str], rare: int) -> np.ndarray:
    """Shares of the listed surnames (published shares, then a power of the rank) followed by
    `rare` rarer names whose shares fall on from the last listed one, as a power of the rank
    chosen so that all shares sum to one."""
    rank = np.arange(1, len(listed) + 1, dtype=float)
    top = names.TOP_SURNAME_PERCENT
    last_top = len(top)
    share = np.where(
        rank <= last_top,
        [top.get(s, 0.0) / 100 for s in listed],
        top[listed[last_top - 1]] / 100 * (last_top / rank) ** names.SURNAME_RANK_EXPONENT,
    )
    left = 1.0 - share.sum()
    tail_rank = np.arange(len(listed) + 1, len(listed) + rare + 1, dtype=float)
    lo, hi = 0.0, 4.0  # the tail's exponent, by bisection: its shares sum to what is left
    for _ in range(60):
        mid = (lo + hi) / 2
        if (share[-1] * (len(listed) / tail_rank) ** mid).sum() > left:
            lo = mid
        else:
            hi = mid
    tail = share[-1] * (len(listed) / tail_rank) ** hi
    out = np.concatenate([share, tail])
    return out / out.sum()


class NamePools:
    def __init__(self) -> None:
        self.male = np.array(names.MALE_FORENAMES, dtype=object)
        self.female = np.array(names.FEMALE_FORENAMES, dtype=object)
        self.p_male = _zipf(len(self.male), FORENAME_RANK_EXPONENT)
        self.p_female = _zipf(len(self.female), FORENAME_RANK_EXPONENT)
        listed = set(names.SURNAMES)
        rare = [s for s in names.RARE_SURNAMES if s not in listed]
        self.surnames = np.array(names.SURNAMES + rare, dtype=object)
        self.p_surname = surname_shares(names.SURNAMES, len(rare))

    def forenames(self, rng: np.random.Generator, sex: np.ndarray) -> np.ndarray:
        out = np.empty(len(sex), dtype=object)
        m = sex == "M"
        out[m] = rng.choice(self.male, m.sum(), p=self.p_male)
        out[~m] = rng.choice(self.female, (~m).sum(), p=self.p_female)
        return out

    def surname(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.choice(self.surnames, n, p=self.p_surname)


class Geography:
    def __init__(self) -> None:
        las = local_authorities()
        self.la_codes = las["la_code"].to_numpy(dtype=object)
        self.force_codes = las["police_force_code"].to_numpy(dtype=object)
        pop = las["population"].to_numpy(dtype=float)
        self.p_la = pop / pop.sum()
        pcd = postcode_districts()
        row_of = {c: i for i, c in enumerate(self.la_codes)}
        pcd = pcd[pcd["la_code"].isin(row_of)]
        self.districts = pcd["postcode_district"].to_numpy(dtype=object)
        la_rows = pcd["la_code"].map(row_of).to_numpy()
        order = np.argsort(la_rows, kind="stable")
        self.districts, la_rows = self.districts[order], la_rows[order]
        weights = pcd["weight"].to_numpy(dtype=float)[order]
        self._start = np.searchsorted(la_rows, np.arange(len(self.la_codes)))
        self._stop = np.searchsorted(la_rows, np.arange(len(self.la_codes)), side="right")
        self._cum = np.zeros(len(weights))
        for i in range(len(self.la_codes)):  # cumulative weights within each authority
            s, e = self._start[i], self._stop[i]
            self._cum[s:e] = np.cumsum(weights[s:e]) / weights[s:e].sum()

    def provider_code(self, rng: np.random.Generator, la: np.ndarray, setting: np.ndarray) -> np.ndarray:
        """Two or three community providers per authority; prisons have their own codes."""
        letter = np.array(list("ABC"), dtype=object)[rng.integers(0, 3, len(la))]
        community = np.array([f"P{i:03d}" for i in range(len(self.la_codes))], dtype=object)[la] + letter
        prison = np.array([f"HMP{i:03d}" for i in range(120)], dtype=object)[rng.integers(0, 120, len(la))]
        return np.where(setting == "prison", prison, community)

    def sample_la(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.choice(len(self.la_codes), n, p=self.p_la)

    def sample_district(self, rng: np.random.Generator, la: np.ndarray) -> np.ndarray:
        u = rng.random(len(la))
        out = np.empty(len(la), dtype=object)
        for i in np.unique(la):
            sel = la == i
            s, e = self._start[i], self._stop[i]
            pick = np.searchsorted(self._cum[s:e], u[sel], side="right").clip(0, e - s - 1)
            out[sel] = self.districts[s + pick]
        return out


def _ages(rng: np.random.Generator, kind: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Age on the first day of the delivery window, by kind and substance group."""
    mean = np.select(
        [
            group == OPIATE,
            group == ALCOHOL,
            group == NON_OPIATE,
            group == NON_OPIATE_ALCOHOL,
            kind == OFFENDER,
            kind == CLAIMANT,
            kind == DECEDENT,
        ],
        [43.0, 46.0, 31.0, 36.0, 32.0, 42.0, 74.0],
    )
    sd = np.select([kind == DECEDENT, kind == TREATMENT], [12.0, 9.0], 11.0)
    low = np.where(kind == DECEDENT, 25.0, 18.0)
    return _truncated_normal(rng.normal(mean, sd), mean, sd, low, 99.0)


def _truncated_normal(x: np.ndarray, mean: np.ndarray, sd: np.ndarray, low: np.ndarray, high: float) -> np.ndarray:
    """Normal draws `x` limited to [low, high] as a truncated normal: a draw within the limits
    stays; one outside is moved, by its own quantile beyond the limit, to a quantile of the
    normal within them. Clipping instead piles every draw outside onto one age (one birth day:
    790 of 20,000 people were born on the day 18 years before the window opened)."""
    z, a, b = (x - mean) / sd, (low - mean) / sd, (high - mean) / sd
    fa, fb, fz = ndtr(a), ndtr(b), ndtr(z)
    below, above = z < a, z > b
    u = np.where(below, fz / np.maximum(fa, 1e-300), (fz - fb) / np.maximum(1.0 - fb, 1e-300))
    moved = mean + sd * ndtri(np.clip(fa + u * (fb - fa), 1e-12, 1 - 1e-12))
    return np.where(below | above, np.clip(moved, low, high), x)


def make_people(
    rng: np.random.Generator,
    first_index: int,
    n: int,
    cal: DeliveryCalendar,
    pools: NamePools,
    geo: Geography,
    noise: float,
) -> People:
    index = np.arange(first_index, first_index + n, dtype=np.int64)
    kind = rng.choice(len(KINDS), n, p=KIND_SHARES).astype(np.int8)
    group = np.where(kind == TREATMENT, rng.choice(len(GROUPS), n, p=GROUP_SHARES), -1).astype(np.int8)
    p_male = np.select([kind == TREATMENT, kind == OFFENDER], [0.68, 0.84], 0.5)
    sex = np.where(rng.random(n) < p_male, "M", "F").astype(object)
    dob = (cal.window_start - _ages(rng, kind, group) * 365.25).astype(np.int32)

    forename = pools.forenames(rng, sex)
    surname = pools.surname(rng, n)
    # Surname changes (marriage, divorce) of women under 50, counted as identifier variation.
    changes = (sex == "F") & (cal.window_start - dob < 50 * 365) & (rng.random(n) < 0.15 * noise)
    change_day = np.where(changes, rng.integers(cal.history_start, cal.window_end, n), np.int64(NEVER))
    new_surname = np.where(changes, pools.surname(rng, n), surname)

    la = geo.sample_la(rng, n)
    district = geo.sample_district(rng, la)
    moves = rng.random(n) < 0.15
    move_day = np.where(moves, rng.integers(cal.history_start, cal.window_end, n), np.int64(NEVER))
    # Most moves stay within the authority; the rest go anywhere.
    la_after = np.where(moves & (rng.random(n) < 0.4), geo.sample_la(rng, n), la)
    district_after = np.where(moves, geo.sample_district(rng, la_after), district)

    # Aliases used in conviction records: another forename, surname or date of birth.
    has_alias = (kind <= OFFENDER) & (rng.random(n) < 0.15 * noise)
    which = rng.integers(0, 3, n)
    alias_forename = np.where(has_alias & (which == 0), pools.forenames(rng, sex), forename)
    alias_surname = np.where(has_alias & (which == 1), pools.surname(rng, n), surname)
    alias_dob = np.where(has_alias & (which == 2), dob + rng.integers(-800, 800, n), dob).astype(np.int32)
    alias_forename = np.where(has_alias, alias_forename, None)

    twin_of = np.full(n, -1, dtype=np.int64)
    # Twins (same surname, birth date, address) and fathers and sons of the same name and
    # address: real pairs that share every identifier but one.
    pair = np.flatnonzero(rng.random(n - 1) < 0.006) if n > 1 else np.array([], dtype=np.int64)
    pair = pair[np.diff(np.concatenate([[-2], pair])) > 1]  # no overlapping pairs
    twins, namesakes = pair[: len(pair) // 2], pair[len(pair) // 2 :]
    for src, dst in ((twins, twins + 1), (namesakes, namesakes + 1)):
        surname[dst] = new_surname[dst] = surname[src]
        la[dst], la_after[dst] = la[src], la_after[src]
        district[dst], district_after[dst], move_day[dst] = district[src], district_after[src], move_day[src]
        twin_of[dst] = index[src]
    dob[twins + 1] = dob[twins]
    sex[namesakes + 1] = sex[namesakes] = "M"
    forename[namesakes] = pools.forenames(rng, sex[namesakes])
    forename[namesakes + 1] = forename[namesakes]
    # a father is born 22 to 36 years before his son, on any day of the year
    gap_days = rng.integers(22 * 365, 36 * 365, len(namesakes))
    dob[namesakes] = dob[namesakes + 1] - gap_days.astype(np.int32)

    return People(
        index=index,
        person_id=np.array([f"P{i:08d}" for i in index], dtype=object),
        kind=kind,
        group=group,
        sex=sex,
        dob=dob,
        forename=forename,
        surname=surname,
        new_surname=new_surname,
        surname_change_day=change_day.astype(np.int64),
        la=la,
        district=district,
        move_day=move_day.astype(np.int64),
        la_after=la_after,
        district_after=district_after,
        alias_forename=alias_forename,
        alias_surname=alias_surname,
        alias_dob=alias_dob,
        twin_of=twin_of,
    )
