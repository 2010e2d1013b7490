"""Who each true person is in clear, and what happens to them: marriage, moves, namesakes.

Every person gets an identity of their own (the synthetic deliveries carry only pseudonyms):
a forename of their sex and birth cohort, a surname, their date of birth and sex from the truth,
and a postcode district in their local authority. Life then changes some of them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from errormodel.names import name_lists
from errormodel.randomness import bases, pick, uniform, weighted
from errormodel.rates import ERROR_CLASSES
from outcomes.reference import postcode_districts

NO_DAY = np.iinfo(np.int64).max  # a change that never happens
YEAR = 365.25

# stream numbers of person-level draws
S_FORENAME, S_SURNAME, S_DISTRICT = 0, 10, 20
S_MARRY, S_MARRY_DAY, S_MARRY_NAME = 30, 31, 32
S_MOVE, S_MOVE_DAY, S_MOVE_LA, S_MOVE_DISTRICT = 40, 41, 42, 43
S_TWIN, S_FATHER, S_PARTNER = 50, 51, 60  # partner attempts use 60..89
S_PRONE, S_REDRAW, S_MARRY_REDRAW, S_MOVE_REDRAW = 200, 300, 400, 500  # redraws: + attempt
# Errors cluster in people (Harron et al. 2017 found identifier error rates differing by person
# and by hospital): each person's record-level rates are multiplied by a proneness drawn from a
# gamma distribution of mean 1 and variance 1/PRONENESS_SHAPE.
PRONENESS_SHAPE = 2


class Districts:
    """Postcode districts of each local authority, drawn by their weights."""

    def __init__(self) -> None:
        pcd = postcode_districts().sort_values(["la_code", "postcode_district"], kind="mergesort")
        self.by_la: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for la, g in pcd.groupby("la_code"):
            w = g["weight"].to_numpy(dtype=float)
            self.by_la[str(la)] = (g["postcode_district"].to_numpy(dtype=object), np.cumsum(w) / w.sum())
        w = pcd["weight"].to_numpy(dtype=float)
        self.all = pcd["postcode_district"].to_numpy(dtype=object)
        self.all_cum = np.cumsum(w) / w.sum()
        self.la_of = dict(zip(pcd["postcode_district"], pcd["la_code"], strict=False))

    def draw(self, base: np.ndarray, stream: int, la: np.ndarray) -> np.ndarray:
        out = np.empty(len(base), dtype=object)
        for code in np.unique(la.astype(str)):
            sel = la == code
            names, cum = self.by_la.get(code, (self.all, self.all_cum))
            out[sel] = names[weighted(base[sel], stream, cum)]
        return out

    def anywhere(self, base: np.ndarray, stream: int) -> np.ndarray:
        return self.all[weighted(base, stream, self.all_cum)]


@dataclass
class Persons:
    """One row per true person, ordered by person_id."""

    table: pd.DataFrame  # person_id, sex, dob (days), la_code, forename, surname, district, ...
    namesakes: pd.DataFrame  # person_a, person_b, kind
    eligible: dict[str, int]  # persons each person-level class could have applied to
    applied: dict[str, int]


def _days(values: pd.Series) -> np.ndarray:
    return pd.to_datetime(values).to_numpy().astype("datetime64[D]").astype(np.int64)


def make_persons(truth_persons: pd.DataFrame, record_days: pd.DataFrame, seed: int, scale: float) -> Persons:
    """`record_days`: person_id, day (one row per record) — when each person was recorded."""
    lists, districts = name_lists(), Districts()
    p = truth_persons.sort_values("person_id", kind="mergesort").reset_index(drop=True)
    base = bases(seed, "person", p["person_id"].to_numpy(dtype=object))
    sex = p["sex"].fillna("U").to_numpy(dtype=object)
    dob = _days(p["date_of_birth"])
    birth_year = (1970 + dob / YEAR).astype(int)
    forename = np.array([f.upper() for f in lists.forename(base, S_FORENAME, sex, birth_year)], dtype=object)
    surname = np.array([s.upper() for s in lists.surname(base, S_SURNAME)], dtype=object)
    la = p["la_code"].to_numpy(dtype=object)
    district = districts.draw(base, S_DISTRICT, la)

    span = record_days.groupby("person_id")["day"].agg(["min", "max", "count"]).reindex(p["person_id"])
    first = span["min"].fillna(0).to_numpy(dtype=np.int64)
    last = span["max"].fillna(0).to_numpy(dtype=np.int64)
    has_records = span["count"].fillna(0).to_numpy() > 0
    two_dates = has_records & (last > first)
    eligible, applied = {}, {}

    def change_day(stream: int, chosen: np.ndarray) -> np.ndarray:
        # some day after the first record and no later than the last: records on both sides
        gap = np.maximum(last - first, 1)
        return np.where(chosen, first + 1 + pick(base, stream, gap), NO_DAY)

    # Surname change on marriage: women of marrying age at some point of their records.
    age_first, age_last = (first - dob) / YEAR, (last - dob) / YEAR
    can_marry = two_dates & (sex == "F") & (age_first <= 50) & (age_last >= 16)
    marry = can_marry & (uniform(base, S_MARRY) < ERROR_CLASSES["surname_change_marriage"].rate("all", scale))
    married_surname = np.array([s.upper() for s in lists.surname(base, S_MARRY_NAME)], dtype=object)
    for attempt in range(1, 6):  # a husband of the same surname changes nothing: draw again
        same = married_surname == surname
        married_surname[same] = [s.upper() for s in lists.surname(base[same], S_MARRY_REDRAW + attempt)]
    eligible["surname_change_marriage"], applied["surname_change_marriage"] = int(can_marry.sum()), int(marry.sum())
    marry_day = change_day(S_MARRY_DAY, marry)

    # A move to another postcode district: most within the authority, some anywhere.
    move = two_dates & (uniform(base, S_MOVE) < ERROR_CLASSES["postcode_moved"].rate("all", scale))
    within = uniform(base, S_MOVE_LA) < 0.6
    new_district = np.where(
        within, districts.draw(base, S_MOVE_DISTRICT, la), districts.anywhere(base, S_MOVE_DISTRICT)
    )
    for attempt in range(1, 6):  # a move goes somewhere else: draw again (anywhere) until it does
        same = new_district == district
        new_district[same] = districts.anywhere(base[same], S_MOVE_REDRAW + attempt)
    eligible["postcode_moved"], applied["postcode_moved"] = int(two_dates.sum()), int(move.sum())
    move_day = change_day(S_MOVE_DAY, move)

    # gamma(shape k, scale 1/k) as a sum of k exponentials: mean 1, variance 1/k
    exponentials = [-np.log1p(-uniform(base, S_PRONE + k)) for k in range(PRONENESS_SHAPE)]
    proneness = np.sum(exponentials, axis=0) / PRONENESS_SHAPE

    table = pd.DataFrame(
        {
            "person_id": p["person_id"].to_numpy(dtype=object),
            "sex": sex,
            "dob": dob,
            "la_code": la,
            "forename": forename,
            "surname": surname,
            "district": district,
            "married_surname": np.where(marry, married_surname, None),
            "marry_day": marry_day,
            "new_district": np.where(move, new_district, None),
            "move_day": move_day,
            "has_records": has_records,
            "proneness": proneness,
            "base": base,
        }
    )
    namesakes = _namesakes(table, scale, eligible, applied)
    return Persons(table, namesakes, eligible, applied)


def _namesakes(t: pd.DataFrame, scale: float, eligible: dict, applied: dict) -> pd.DataFrame:
    """Pairs of true persons; the second takes the first's identifiers but one.

    Twins: same surname, date of birth and district, another forename. Father and son: same
    forename, surname and district, born 20 to 45 years apart. The second of a pair of twins is
    given the first's date of birth only when the first is the elder, so that no record of the
    second comes to predate their birth.
    """
    lists = name_lists()
    base = t["base"].to_numpy(dtype=np.uint64)
    birth_year = (1970 + t["dob"].to_numpy() / YEAR).astype(int)
    with_records = t["has_records"].to_numpy()
    dob, sex = t["dob"].to_numpy(), t["sex"].to_numpy(dtype=object)
    used = np.zeros(len(t), dtype=bool)
    order = np.argsort(dob, kind="stable")
    sorted_dob = dob[order]
    rows: list[tuple[int, int, str]] = []
    twin_rate = ERROR_CLASSES["namesake_twin"].rate("all", scale)
    father_rate = ERROR_CLASSES["namesake_father_son"].rate("all", scale)
    is_twin = with_records & (uniform(base, S_TWIN) < twin_rate)
    is_son = with_records & (sex == "M") & ~is_twin & (uniform(base, S_FATHER) < father_rate)
    eligible["namesake_twin"] = int(with_records.sum())
    eligible["namesake_father_son"] = int((with_records & (sex == "M")).sum())

    def partner(b: int, low: float, high: float, male: bool) -> int | None:
        lo = np.searchsorted(sorted_dob, dob[b] - high, side="left")
        hi = np.searchsorted(sorted_dob, dob[b] - low, side="right")
        for attempt in range(30):
            if hi <= lo:
                return None
            a = int(order[lo + int(uniform(base[b : b + 1], S_PARTNER + attempt)[0] * (hi - lo))])
            if a != b and not used[a] and with_records[a] and (not male or sex[a] == "M"):
                return a
        return None

    for b in np.flatnonzero(is_twin | is_son):
        if used[b]:
            continue
        twin = bool(is_twin[b])
        a = partner(b, 0, 3 * YEAR, False) if twin else partner(b, 20 * YEAR, 45 * YEAR, True)
        if a is None:
            continue
        used[a] = used[b] = True
        rows.append((a, b, "twin" if twin else "father_son"))

    for a, b, kind in rows:
        t.loc[b, ["surname", "district"]] = t.loc[a, ["surname", "district"]].to_numpy()
        if kind == "twin":
            t.loc[b, "dob"] = t.loc[a, "dob"]
            attempt = 0
            while t.loc[b, "forename"] == t.loc[a, "forename"]:  # twins are never given one name
                redraw = lists.forename(base[b : b + 1], S_REDRAW + attempt, sex[b : b + 1], birth_year[b : b + 1])
                t.loc[b, "forename"] = redraw[0].upper()
                attempt += 1
        else:
            t.loc[b, "forename"] = t.loc[a, "forename"]
    applied["namesake_twin"] = sum(k == "twin" for *_, k in rows)
    applied["namesake_father_son"] = sum(k == "father_son" for *_, k in rows)
    pid = t["person_id"].to_numpy(dtype=object)
    return pd.DataFrame(
        {
            "person_a": [pid[a] for a, _, _ in rows],
            "person_b": [pid[b] for _, b, _ in rows],
            "kind": [k for *_, k in rows],
        },
        dtype=object,
    ).sort_values(["person_a", "person_b"], kind="mergesort", ignore_index=True)
