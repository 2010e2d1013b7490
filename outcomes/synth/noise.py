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
    initials_only: float = 0.0  # forename recorded as its initial (older NDTMS records)
    # A second person id in the source for a person's later records (a duplicate PNC nominal
    # record, a second NINo), per person with two records or more; `second_key_alias` of them
    # also carry an alias name or date of birth under the second id.
    second_key: float = 0.0
    second_key_alias: float = 0.0


RATES = {
    "treatment": NoiseRates(
        0.08, 0.02, 0.004, 0.010, 0.006, 0.005, 0.010, 0.010, 0.002, 0.05, 0.10, 0.0, 0.0, initials_only=0.03
    ),
    "convictions": NoiseRates(
        0.10, 0.03, 0.003, 0.010, 0.010, 0.007, 0.005, 0.003, 0.001, 0.08, 0.15, 0.35, 0.01,
        initials_only=0.002, second_key=0.08, second_key_alias=0.05,
    ),
    "benefits": NoiseRates(
        0.02, 0.01, 0.001, 0.003, 0.002, 0.002, 0.002, 0.002, 0.001, 0.02, 0.05, 0.0, 0.005,
        initials_only=0.001, second_key=0.02, second_key_alias=0.003,
    ),
    "deaths": NoiseRates(0.01, 0.01, 0.0, 0.003, 0.003, 0.002, 0.001, 0.0, 0.0005, 0.03, 0.20, 0.0, 0.02),
}  # fmt: skip
SECOND_KEY_SUFFIX = "-D"
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
    extra: np.random.Generator | None = None,
) -> pd.DataFrame:
    """The identity in clear of each record (one person row and event day per record).

    `extra` draws the classes added later (second person ids, initials only), so that adding
    them left every other draw of `rng`, and with it the rest of the population, as it was."""
    r = RATES[source]
    n = len(rows)
    extra = rng if extra is None else extra

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
    # After the draws of `rng` that depend on a name (nicknames exist for some, typing errors
    # need three letters), so that these classes change no other draw.
    second = _second_key(extra, people, rows, day, r, noise, forename, surname, dob)
    initials = (extra.random(n) < r.initials_only * noise) & (forename != None)  # noqa: E711
    forename[initials] = [f[0] for f in forename[initials]]

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
    sid[second] = sid[second] + SECOND_KEY_SUFFIX
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


def _second_key(
    rng: np.random.Generator,
    people: People,
    rows: np.ndarray,
    day: np.ndarray,
    r: NoiseRates,
    noise: float,
    forename: np.ndarray,
    surname: np.ndarray,
    dob: np.ndarray,
) -> np.ndarray:
    """Records under a person's second id in this source: those from a day after the person's
    first record on. With an alias, they carry the person's conviction alias where there is one,
    else another forename, surname or an earlier date of birth (changed in place)."""
    n = len(rows)
    if not (r.second_key or r.second_key_alias) or n == 0:
        return np.zeros(n, dtype=bool)
    persons, inv = np.unique(rows, return_inverse=True)
    m = len(persons)
    first = np.full(m, np.iinfo(np.int64).max)
    last = np.full(m, np.iinfo(np.int64).min)
    np.minimum.at(first, inv, day)
    np.maximum.at(last, inv, day)
    u = rng.random(m)
    dup = (np.bincount(inv) >= 2) & (last > first) & (u < (r.second_key + r.second_key_alias) * noise)
    with_alias = dup & (u < r.second_key_alias * noise)
    split = first + 1 + (rng.random(m) * (last - first)).astype(np.int64)
    second = dup[inv] & (day >= split[inv])
    aliased = second & with_alias[inv]

    which = rng.integers(0, 3, m)
    donor = rng.integers(0, len(people), m)  # another person of the chunk lends a name
    back = rng.integers(30, 5 * 365, m)
    own = people.alias_forename[persons] != None  # noqa: E711 (object array)
    for i in np.flatnonzero(aliased):
        p, row = inv[i], rows[i]
        if own[p]:
            forename[i], surname[i], dob[i] = (
                people.alias_forename[row],
                people.alias_surname[row],
                people.alias_dob[row],
            )
        elif which[p] == 0 and people.sex[donor[p]] == people.sex[row] and people.forename[donor[p]] != forename[i]:
            forename[i] = people.forename[donor[p]]
        elif which[p] == 1 and people.surname[donor[p]] != surname[i]:
            surname[i] = people.surname[donor[p]]
        else:
            dob[i] = dob[i] - back[p]
    return second
