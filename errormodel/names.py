"""Name-frequency lists shipped with the error model (data/README.md gives their sources) and the
ways a recorded name goes wrong: keying errors and nicknames."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

from errormodel.randomness import uniform, weighted

DATA = Path(__file__).parent / "data"
# The historic lists give ranks only: weights fall with rank (an assumption, docs/error-model.md).
FORENAME_EXPONENT = 1.0
SURNAME_EXPONENT = 0.8


def _cum(ranks: np.ndarray, exponent: float) -> np.ndarray:
    w = 1.0 / ranks.astype(float) ** exponent
    return np.cumsum(w) / w.sum()


class NameLists:
    def __init__(self) -> None:
        fn = pd.read_csv(DATA / "forenames.csv")
        self.cohorts = np.array(sorted(fn["cohort"].unique()))
        self.forenames: dict[tuple[int, str], tuple[np.ndarray, np.ndarray]] = {}
        for (cohort, sex), g in fn.groupby(["cohort", "sex"]):
            g = g.sort_values("rank")
            self.forenames[(int(cohort), str(sex))] = (
                g["forename"].to_numpy(dtype=object),
                _cum(g["rank"].to_numpy(), FORENAME_EXPONENT),
            )
        sn = pd.read_csv(DATA / "surnames.csv").sort_values("rank")
        self.surnames = sn["surname"].to_numpy(dtype=object)
        self.surname_cum = _cum(sn["rank"].to_numpy(), SURNAME_EXPONENT)
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
