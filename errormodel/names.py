"""Name-frequency lists shipped with the error model (data/README.md gives their sources) and the
ways a recorded name goes wrong: keying errors and nicknames."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

from errormodel.randomness import uniform, weighted

DATA = Path(__file__).parent / "data"
# The historic forename lists give ranks only: within a cohort's list a name's weight falls with
# rank as 1/rank^FORENAME_EXPONENT, the listed names of a cohort and sex take FORENAME_LISTED_SHARE
# of its people and the names of that sex listed for other cohorts the rest (assumptions,
# docs/error-model.md: the commonest name of a cohort is then borne by 4-5% of it).
FORENAME_EXPONENT = 0.5
FORENAME_LISTED_SHARE = 0.6
# Surnames: the published shares of the ten commonest (surnames.csv, `percent`), then a share
# falling as 1/rank^SURNAME_EXPONENT (rank 100 about 0.07%), then RARE_SURNAMES further names whose
# shares fall on as a power of rank chosen so that all shares sum to one.
SURNAME_EXPONENT = 0.7
RARE_SURNAMES = 30_000

# Rare surnames made of English place-name elements, the source of most English surnames.
# fmt: off
_HEADS = [
    "ACK", "ALDER", "APPLE", "ARK", "AYLES", "BAGS", "BALD", "BEAU", "BIRCH", "BLACK", "BOLD",
    "BRACK", "BRIND", "BROM", "BUCK", "CAD", "CALDER", "CHES", "CLAY", "COL", "CRAW", "CROSS",
    "DAV", "DRAY", "DUD", "EDGE", "ELM", "EMS", "FAIR", "FIN", "FOX", "GAIN", "GLAD", "GOLD",
    "GRIM", "HAD", "HALL", "HAW", "HEN", "HIGH", "HORN", "HUNT", "IVES", "KELS", "KING", "LAM",
    "LEA", "LOCK", "MAL", "MELL", "MOR", "NETH", "OS", "PAD", "PARK", "PRIS", "RAMS", "RED",
    "RIS", "ROW", "SEF", "SHEL", "SKEL", "SOM", "STAIN", "SUN", "TAT", "TEW", "TRED", "UP",
    "WAD", "WAR", "WEATHER", "WIL", "WRAY",
]
_MIDDLES = ["", "A", "E", "ING", "LE", "ER", "EN", "S", "ES", "ON"]
_TAILS = [
    "BECK", "BORNE", "BOURNE", "BROOK", "BURGH", "BURN", "CASTER", "CLIFFE", "COTT", "DALL",
    "DEAN", "DENE", "DYKE", "FLEET", "GARTH", "HALGH", "HAY", "HEATH", "HOLT", "HOW", "KER",
    "LAKE", "LOCK", "LOWE", "MERE", "MILL", "MOUTH", "NESS", "POOL", "REDE", "ROYD", "SALL",
    "SETT", "SLADE", "STALL", "STEAD", "STOKE", "THWAITE", "TOFT", "WELL",
]
# fmt: on


def _cum(weights: np.ndarray) -> np.ndarray:
    return np.cumsum(weights) / weights.sum()


def rare_surnames(count: int, listed: set[str]) -> np.ndarray:
    names = dict.fromkeys(h + m + t for h in _HEADS for m in _MIDDLES for t in _TAILS)
    return np.array([n for n in names if n not in listed][:count], dtype=object)


def surname_shares(percent: np.ndarray, rare: int) -> np.ndarray:
    """Shares of the listed surnames (published where `percent` is given, else falling with rank
    from the last published one) followed by `rare` rarer names."""
    rank = np.arange(1, len(percent) + 1, dtype=float)
    known = ~np.isnan(percent)
    last = int(np.flatnonzero(known)[-1])
    share = np.where(known, percent / 100, percent[last] / 100 * (rank[last] / rank) ** SURNAME_EXPONENT)
    left = 1.0 - share.sum()
    tail_rank = np.arange(len(share) + 1, len(share) + rare + 1, dtype=float)
    lo, hi = 0.0, 4.0  # the tail's exponent by bisection: the tail holds what is left
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if (share[-1] * (len(share) / tail_rank) ** mid).sum() > left else (lo, mid)
    return np.concatenate([share, share[-1] * (len(share) / tail_rank) ** hi])


class NameLists:
    def __init__(self) -> None:
        fn = pd.read_csv(DATA / "forenames.csv")
        self.cohorts = np.array(sorted(fn["cohort"].unique()))
        self.forenames: dict[tuple[int, str], tuple[np.ndarray, np.ndarray]] = {}
        for (cohort, sex), g in fn.groupby(["cohort", "sex"]):
            g = g.sort_values("rank")
            listed = g["forename"].to_numpy(dtype=object)
            others = np.array(sorted(set(fn.loc[fn["sex"] == sex, "forename"]) - set(listed)), dtype=object)
            w = 1.0 / g["rank"].to_numpy(dtype=float) ** FORENAME_EXPONENT
            weights = np.concatenate(
                [w / w.sum() * FORENAME_LISTED_SHARE, np.full(len(others), (1 - FORENAME_LISTED_SHARE) / len(others))]
            )
            self.forenames[(int(cohort), str(sex))] = (np.concatenate([listed, others]), _cum(weights))
        sn = pd.read_csv(DATA / "surnames.csv").sort_values("rank")
        listed = sn["surname"].str.upper().to_numpy(dtype=object)
        rare = rare_surnames(RARE_SURNAMES, set(listed))
        self.surnames = np.concatenate([listed, rare])
        self.surname_cum = _cum(surname_shares(sn["percent"].to_numpy(dtype=float), len(rare)))
        nk = pd.read_csv(DATA / "nicknames.csv")
        self.nicknames: dict[str, tuple[str, ...]] = {
            k.upper(): tuple(v.str.upper()) for k, v in nk.groupby("forename")["nickname"]
        }

    def cohort_of(self, birth_year: np.ndarray) -> np.ndarray:
        """The list of the nearest cohort year: people are named in the fashion of their birth."""
        idx = np.abs(birth_year[:, None] - self.cohorts[None, :]).argmin(axis=1)
        return self.cohorts[idx]

    def forename(self, base: np.ndarray, stream: int, sex: np.ndarray, birth_year: np.ndarray) -> np.ndarray:
        cohort = self.cohort_of(birth_year)
        out = np.empty(len(base), dtype=object)
        for (c, s), (names, cum) in self.forenames.items():
            sel = (cohort == c) & (sex == s)
            if sel.any():
                out[sel] = names[weighted(base[sel], stream, cum)]
        # sex unknown in the register: a forename of either list
        rest = np.flatnonzero(out == None)  # noqa: E711 (object array)
        if len(rest):
            other = np.where(uniform(base[rest], stream + 1) < 0.5, "M", "F")
            out[rest] = self.forename(base[rest], stream + 2, other, birth_year[rest])
        return out

    def surname(self, base: np.ndarray, stream: int) -> np.ndarray:
        return self.surnames[weighted(base, stream, self.surname_cum)]


@cache
def name_lists() -> NameLists:
    return NameLists()


# Letters a finger slips to on a QWERTY keyboard.
_NEIGHBOURS = {
    "Q": "WA", "W": "QES", "E": "WRD", "R": "ETF", "T": "RYG", "Y": "TUH", "U": "YIJ", "I": "UOK", "O": "IPL",
    "P": "OL", "A": "QSZ", "S": "AWDZ", "D": "SEFX", "F": "DRGC", "G": "FTHV", "H": "GYJB", "J": "HUKN",
    "K": "JILM", "L": "KOP", "Z": "ASX", "X": "ZSDC", "C": "XDFV", "V": "CFGB", "B": "VGHN", "N": "BHJM",
    "M": "NJK",
}  # fmt: skip


def keying_error(name: str, u: tuple[float, float, float]) -> str:
    """One keying error in an upper-case name: a neighbouring key, a dropped or doubled letter, or
    two letters transposed. The first letter is kept (it is the one people check)."""
    if len(name) < 2:
        return name
    kind = int(u[0] * 4)
    i = 1 + int(u[1] * (len(name) - 1))
    ch = name[i]
    if kind == 1 and len(name) > 3:
        out = name[:i] + name[i + 1 :]
    elif kind == 2:
        out = name[:i] + ch + name[i:]
    elif kind == 3 and i + 1 < len(name) and name[i + 1] != ch:
        out = name[:i] + name[i + 1] + ch + name[i + 2 :]
    else:
        keys = _NEIGHBOURS.get(ch, "E")
        out = name[:i] + keys[int(u[2] * len(keys))] + name[i + 1 :]
    return out


def nickname_of(forename: str | None, u: float) -> str | None:
    options = name_lists().nicknames.get(forename or "")
    return options[int(u * len(options))] if options else None
