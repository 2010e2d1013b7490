"""Identifiers as each source records them: typing errors, nicknames, changed surnames, swapped
day and month, missing fields, moves, aliases. Rates are per record, scaled by `noise`."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from outcomes.synth.calendar import EPOCH
from outcomes.synth.names import NICKNAMES
from outcomes.synth.people import People


@dataclass(frozen=True)
class NoiseRates:
    nickname: float
    typo: float
    missing_name: float
    dob_swap: float
    dob_year: float
    dob_digit: float
    dob_missing: float
    sex_unknown: float
    sex_wrong: float
    postcode_missing: float
    old_surname: float  # still using the surname from before a change
    alias: float  # convictions: recorded under the person's alias
    person_id_missing: float


RATES = {
    "treatment": NoiseRates(0.08, 0.02, 0.004, 0.010, 0.006, 0.005, 0.010, 0.010, 0.002, 0.05, 0.10, 0.0, 0.0),
    "convictions": NoiseRates(0.10, 0.03, 0.003, 0.010, 0.010, 0.007, 0.005, 0.003, 0.001, 0.08, 0.15, 0.35, 0.01),
    "benefits": NoiseRates(0.02, 0.01, 0.001, 0.003, 0.002, 0.002, 0.002, 0.002, 0.001, 0.02, 0.05, 0.0, 0.005),
    "deaths": NoiseRates(0.01, 0.01, 0.0, 0.003, 0.003, 0.002, 0.001, 0.0, 0.0005, 0.03, 0.20, 0.0, 0.02),
}
SOURCE_ID_PREFIX = {"treatment": "NDTMS", "convictions": "PNC", "benefits": "NINO", "deaths": "NHS"}
_LETTERS = np.array(list("ABCDEFGHIJKLMNOPRSTWY"))


def typo(rng: np.random.Generator, name: str) -> str:
    """One keying error: substitute, drop, insert or transpose a letter."""
    if len(name) < 3:
        return name
    i = int(rng.integers(1, len(name) - 1))
    op = int(rng.integers(0, 4))
    letter = str(rng.choice(_LETTERS))
    if op == 0:
        return name[:i] + letter + name[i + 1 :]
    if op == 1:
        return name[:i] + name[i + 1 :]
    if op == 2:
        return name[:i] + letter + name[i:]
    return name[: i - 1] + name[i] + name[i - 1] + name[i + 1 :]


def _shift_dob(days: int, kind: int, rng: np.random.Generator) -> int:
    d = EPOCH + dt.timedelta(days=int(days))
    if kind == 0 and d.day <= 12 and d.day != d.month:  # day and month swapped
        d = d.replace(month=d.day, day=d.month)
    elif kind == 1:  # year keyed one out
        d = d.replace(year=d.year + int(rng.choice([-1, 1])), day=min(d.day, 28))
    elif kind == 2:  # day keyed wrong
        d = d.replace(day=int(np.clip(d.day + rng.choice([-2, -1, 1, 2]), 1, 28)))
    return (d - EPOCH).days


def recorded_identity(
    rng: np.random.Generator,
    people: People,
    rows: np.ndarray,
    day: np.ndarray,
    source: str,
    record_id: np.ndarray,
    noise: float,
    no_address: np.ndarray | None = None,
    id_suffix: np.ndarray | None = None,
) -> pd.DataFrame:
    """The identity in clear of each record (one person row and event day per record)."""
    r = RATES[source]
    n = len(rows)

    def hit(p: float) -> np.ndarray:
        return rng.random(n) < p * noise

    forename = people.forename[rows].copy()
    surname = people.surname_at(rows, day)
    old = hit(r.old_surname)
    surname[old] = people.surname[rows][old]
    dob = people.dob[rows].astype(np.int64)
    alias = hit(r.alias) & (people.alias_forename[rows] != None)  # noqa: E711 (object array)
    forename[alias] = people.alias_forename[rows][alias]
    surname[alias] = people.alias_surname[rows][alias]
    dob[alias] = people.alias_dob[rows][alias]

    for i in np.flatnonzero(hit(r.nickname)):
        options = NICKNAMES.get(forename[i])
        if options:
            forename[i] = options[int(rng.integers(0, len(options)))]
    for names in (forename, surname):
        for i in np.flatnonzero(hit(r.typo)):
            names[i] = typo(rng, names[i])
        names[hit(r.missing_name)] = None

    kind = np.select([hit(r.dob_swap), hit(r.dob_year), hit(r.dob_digit)], [0, 1, 2], -1)
    for i in np.flatnonzero(kind >= 0):
        dob[i] = _shift_dob(dob[i], kind[i], rng)
    dob_out = dob.astype("datetime64[D]")
    dob_out[hit(r.dob_missing)] = np.datetime64("NaT")

    sex = people.sex[rows].copy()
    wrong = hit(r.sex_wrong)
    sex[wrong] = np.where(sex[wrong] == "M", "F", "M")
    sex[hit(r.sex_unknown)] = "U"

    postcode = people.district_at(rows, day).copy()
    missing_pc = hit(r.postcode_missing)
    if no_address is not None:
        missing_pc |= no_address
    postcode[missing_pc] = None

    prefix = SOURCE_ID_PREFIX[source]
    person_no = people.index[rows]
    sid = np.array([f"{prefix}{p:09d}" for p in person_no], dtype=object)
    if id_suffix is not None:  # re-registered under a new client id
        sid = np.where(id_suffix > 0, sid + "-" + id_suffix.astype(str), sid)
    sid[hit(r.person_id_missing)] = None
    return pd.DataFrame(
        {
            "record_id": record_id,
            "source_person_id": sid,
            "forename": forename,
            "surname": surname,
            "date_of_birth": dob_out,
            "sex": sex,
            "postcode": postcode,
        }
    )
