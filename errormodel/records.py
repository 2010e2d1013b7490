"""Each record's identity as its source recorded it: the person's identity at the record's date,
then the record-level error classes, each drawn from the record's own randomness."""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from errormodel.names import keying_error, name_lists, nickname_of
from errormodel.randomness import bases, pick, uniform
from errormodel.rates import ERROR_CLASSES

# What each source's own person id looks like in clear (it is pseudonymised before delivery).
KEY_PREFIX = {"treatment": "NDTMS", "convictions": "PNC", "benefits": "NINO", "deaths": "NHS"}
NAT = np.iinfo(np.int64).min  # a missing date of birth, in days
SECOND_KEY_SHARE = 0.8  # of a duplicated person's later records, those under the second key

# stream numbers of record-level draws
(S_OLD_SURNAME, S_KEY2, S_NICK, S_NICK_PICK, S_INITIAL, S_TYPO, S_TYPO_FIELD, S_TYPO_OPS) = range(8)
(S_SWAP, S_YEAR, S_YEAR_SIGN, S_DOB_MISSING, S_SEX, S_PC_MISSING, S_KEY_MISSING) = range(20, 27)
# person-source draws
S_DUP, S_SPLIT, S_ALIAS_KIND, S_ALIAS_DAYS, S_ALIAS_VALUE = range(5)
STILL_OLD_SURNAME = 0.1  # records after a marriage still made out in the maiden name


@dataclass
class Counts:
    eligible: Counter = field(default_factory=Counter)  # (class, source) -> units it could apply to
    applied: Counter = field(default_factory=Counter)

    def add(self, name: str, source: np.ndarray, eligible: np.ndarray, hit: np.ndarray) -> None:
        for s in np.unique(source):
            sel = source == s
            self.eligible[(name, str(s))] += int((eligible & sel).sum())
            self.applied[(name, str(s))] += int((hit & sel).sum())


def person_key(seed: int, source: str, person_id: str, n: int) -> str:
    digest = hashlib.blake2b(f"{seed}\x1fkey\x1f{source}\x1f{person_id}\x1f{n}".encode(), digest_size=8).hexdigest()
    return f"{KEY_PREFIX[source]}{digest.upper()}"


def _hit(source: np.ndarray, name: str, scale: float, u: np.ndarray, proneness: np.ndarray) -> np.ndarray:
    """Whether the class applies: the record's draw against its source's rate times its person's
    proneness (capped, as the rates are)."""
    rates = {s: ERROR_CLASSES[name].rate(str(s), scale) for s in np.unique(source)}
    rate = np.array([rates[s] for s in source])
    return u < np.minimum(rate * proneness, 0.95)


def _dob_parts(days: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    d = days.astype("datetime64[D]")
    y = d.astype("datetime64[Y]").astype(int) + 1970
    m = (d.astype("datetime64[M]").astype(int) % 12) + 1
    day = (d - d.astype("datetime64[M]")).astype(int) + 1
    return y, m, day


def _dob_from(y: np.ndarray, m: np.ndarray, d: np.ndarray) -> np.ndarray:
    month = (y - 1970) * 12 + (m - 1)
    return month.astype("datetime64[M]").astype("datetime64[D]").astype(np.int64) + (d - 1)


def recorded(
    records: pd.DataFrame, persons: pd.DataFrame, seed: int, scale: float
) -> tuple[pd.DataFrame, list, Counts]:
    """Identities in clear per record, the (source, record_id, class) of every error, and counts.

    `records`: source, record_id, person_id, day (the record's event date) and earliest (its
    earliest date of any kind, which a date of birth must not pass). Sorted by source, record_id.
    """
    lists = name_lists()
    counts = Counts()
    errors: list[pd.DataFrame] = []
    r = records.merge(persons, on="person_id", how="left", validate="many_to_one")
    n = len(r)
    source = r["source"].to_numpy(dtype=object)
    rid = r["record_id"].to_numpy(dtype=object)
    base = bases(seed, "record", source, rid)
    day = r["day"].to_numpy(dtype=np.int64)
    prone = r["proneness"].to_numpy(dtype=float)

    def flag(name: str, hit: np.ndarray, eligible: np.ndarray | None = None) -> None:
        if eligible is not None:
            counts.add(name, source, eligible, hit)
        if hit.any():
            errors.append(pd.DataFrame({"source": source[hit], "record_id": rid[hit], "error_class": name}))

    # -- the person at the record's date ---------------------------------------------------------
    forename = r["forename"].to_numpy(dtype=object).copy()
    surname = r["surname"].to_numpy(dtype=object).copy()
    married = (day >= r["marry_day"].to_numpy()) & (uniform(base, S_OLD_SURNAME) >= STILL_OLD_SURNAME)
    surname[married] = r["married_surname"].to_numpy(dtype=object)[married]
    flag("surname_change_marriage", married)
    district = r["district"].to_numpy(dtype=object).copy()
    moved = day >= r["move_day"].to_numpy()
    district[moved] = r["new_district"].to_numpy(dtype=object)[moved]
    flag("postcode_moved", moved)
    dob = r["dob"].to_numpy(dtype=np.int64).copy()
    sex = r["sex"].to_numpy(dtype=object).copy()
    pid = r["person_id"].to_numpy(dtype=object)

    # -- a second person key within a source, sometimes with an alias ----------------------------
    key_no = np.ones(n, dtype=np.int64)
    # a person's records in a source, in date order (ties in record_id order: input is sorted)
    i = np.lexsort((day, pid, source))
    group_key = pd.Series(source[i] + "\x1f" + pid[i])
    gid, uniques = pd.factorize(group_key)
    gsize = np.bincount(gid)
    rank = group_key.groupby(gid).cumcount().to_numpy()
    gsrc = np.array([k.split("\x1f")[0] for k in uniques], dtype=object)
    gpid = np.array([k.split("\x1f")[1] for k in uniques], dtype=object)
    gbase = bases(seed, "person-source", gsrc, gpid)
    u = uniform(gbase, S_DUP)
    plain_rate = np.array([ERROR_CLASSES["duplicate_key"].rate(s, scale) for s in gsrc])
    alias_rate = np.array([ERROR_CLASSES["duplicate_key_alias"].rate(s, scale) for s in gsrc])
    can_dup = gsize >= 2
    g_plain = can_dup & (u < plain_rate)
    g_alias = can_dup & ~g_plain & (u < plain_rate + alias_rate)
    counts.add("duplicate_key", gsrc, can_dup, g_plain)
    counts.add("duplicate_key_alias", gsrc, can_dup, g_alias)
    # The second key is made at some later record (a new arrest, a claim, a new provider); most
    # later records use it, the last one always (else the duplicate would never show).
    split = 1 + pick(gbase, S_SPLIT, np.maximum(gsize - 1, 1))
    later = rank >= split[gid]
    last = rank == gsize[gid] - 1
    on_second = (g_plain | g_alias)[gid] & later & ((uniform(base[i], S_KEY2) < SECOND_KEY_SHARE) | last)
    key_no[i[on_second]] = 2
    alias = np.zeros(n, dtype=bool)
    alias[i[on_second & g_alias[gid]]] = True
    flag("duplicate_key", key_no == 2)
    # The alias: another forename, surname or an earlier date of birth, the same on every record
    # under the second key.
    rec_g = np.empty(n, dtype=np.int64)
    rec_g[i] = gid
    gperson = pd.DataFrame({"person_id": gpid}).merge(
        persons[["person_id", "sex", "dob", "forename", "surname"]], how="left"
    )
    gyear = (1970 + gperson["dob"].to_numpy() / 365.25).astype(int)
    gsex = gperson["sex"].to_numpy(dtype=object)
    kind = pick(gbase, S_ALIAS_KIND, 3)
    alias_fore = _different(
        lists.forename(gbase, S_ALIAS_VALUE, gsex, gyear),
        lists.forename(gbase, S_ALIAS_VALUE + 5, gsex, gyear),
        gperson["forename"].to_numpy(dtype=object),
    )
    alias_sur = _different(
        lists.surname(gbase, S_ALIAS_VALUE),
        lists.surname(gbase, S_ALIAS_VALUE + 5),
        gperson["surname"].to_numpy(dtype=object),
    )
    alias_back = 1 + pick(gbase, S_ALIAS_DAYS, 3650)
    sel = alias & (kind[rec_g] == 0)
    forename[sel] = alias_fore[rec_g[sel]]
    sel = alias & (kind[rec_g] == 1)
    surname[sel] = alias_sur[rec_g[sel]]
    sel = alias & (kind[rec_g] == 2)
    dob[sel] = dob[sel] - alias_back[rec_g[sel]]
    flag("duplicate_key_alias", alias)
    keys = np.array([person_key(seed, s, p, k) for s, p, k in zip(source, pid, key_no, strict=True)], dtype=object)

    # -- names --------------------------------------------------------------------------------------
    nick = np.array(
        [nickname_of(f, x) for f, x in zip(forename, uniform(base, S_NICK_PICK), strict=True)], dtype=object
    )
    has_nick = nick != None  # noqa: E711 (object array)
    hit = has_nick & _hit(source, "nickname", scale, uniform(base, S_NICK), prone)
    forename[hit] = nick[hit]
    flag("nickname", hit, has_nick)

    has_fore = np.array([isinstance(f, str) and len(f) > 1 for f in forename])
    hit = has_fore & _hit(source, "forename_initial_only", scale, uniform(base, S_INITIAL), prone)
    forename[hit] = np.array([f[0] for f in forename[hit]], dtype=object)
    flag("forename_initial_only", hit, has_fore)

    hit = _hit(source, "typing_error", scale, uniform(base, S_TYPO), prone)
    on_surname = (uniform(base, S_TYPO_FIELD) < 0.5) | ~np.array([isinstance(f, str) and len(f) > 1 for f in forename])
    ops = np.stack([uniform(base, S_TYPO_OPS + k) for k in range(3)], axis=1)
    changed = np.zeros(n, dtype=bool)
    for j in np.flatnonzero(hit):
        target = surname if on_surname[j] else forename
        new = keying_error(target[j], tuple(ops[j]))
        changed[j] = new != target[j]
        target[j] = new
    flag("typing_error", changed, np.ones(n, dtype=bool))

    # -- date of birth ------------------------------------------------------------------------------
    earliest = r["earliest"].to_numpy(dtype=np.int64)
    y, m, d = _dob_parts(dob)
    swappable = (d <= 12) & (d != m)
    swapped = _dob_from(y, np.where(swappable, d, m), np.where(swappable, m, d))
    hit = swappable & _hit(source, "dob_day_month_swap", scale, uniform(base, S_SWAP), prone) & (swapped <= earliest)
    dob = np.where(hit, swapped, dob)
    flag("dob_day_month_swap", hit, swappable)

    y, m, d = _dob_parts(dob)
    step = np.where(uniform(base, S_YEAR_SIGN) < 0.5, -1, 1)
    off = _dob_from(y + step, m, np.where((m == 2) & (d == 29), 28, d))
    hit = _hit(source, "dob_year_off", scale, uniform(base, S_YEAR), prone) & (off <= earliest)
    dob = np.where(hit, off, dob)
    flag("dob_year_off", hit, np.ones(n, dtype=bool))

    hit = _hit(source, "dob_missing", scale, uniform(base, S_DOB_MISSING), prone)
    dob = np.where(hit, NAT, dob)
    flag("dob_missing", hit, np.ones(n, dtype=bool))

    # -- sex, postcode, key -------------------------------------------------------------------------
    known = sex != "U"
    hit = known & _hit(source, "sex_unknown", scale, uniform(base, S_SEX), prone)
    sex[hit] = "U"
    flag("sex_unknown", hit, known)

    has_pc = district != None  # noqa: E711
    hit = has_pc & _hit(source, "postcode_missing", scale, uniform(base, S_PC_MISSING), prone)
    district[hit] = None
    flag("postcode_missing", hit, has_pc)

    hit = _hit(source, "person_key_missing", scale, uniform(base, S_KEY_MISSING), prone)
    keys[hit] = None
    flag("person_key_missing", hit, np.ones(n, dtype=bool))

    dob_out = np.where(dob == NAT, 0, dob).astype("datetime64[D]")
    dob_out[dob == NAT] = np.datetime64("NaT")
    ident = pd.DataFrame(
        {
            "source": source,
            "record_id": rid,
            "person_id": pid,
            "source_person_id": keys,
            "forename": forename,
            "surname": surname,
            "date_of_birth": dob_out,
            "sex": sex,
            "postcode": district,
        }
    )
    return ident, errors, counts


def _different(first: np.ndarray, second: np.ndarray, own: np.ndarray) -> np.ndarray:
    """Upper-case alias names: the first draw, or the second where the first is the person's own."""
    a = np.array([x.upper() for x in first], dtype=object)
    b = np.array([x.upper() for x in second], dtype=object)
    return np.where(a == own, b, a)
