"""Comparison vectors of variant pairs, as recordlinkage features, fully vectorised.

Each comparison of a `Spec` (linkage.spec) becomes one recordlinkage feature; levels are int8,
higher = closer, -1 = a value is missing (counts neither for nor against). Names compare by
token, then learned alias pairs, then Dice of 512-bit bigram Bloom filters (popcount over 64-bit
words, no Python loop per pair). Clear strings compare by bigram Dice the same way, or by
Jaro-Winkler or edit distance over distinct value pairs.
"""

from __future__ import annotations

import base64
import functools
import hashlib

import numpy as np
import pandas as pd
import recordlinkage
from recordlinkage.base import BaseCompareFeature

from linkage.spec import Comparison, Spec

BLOOM_BITS_PER_BIGRAM = 15  # extracts.md: bits set per bigram (i = 0..14)
_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def popcount(words: np.ndarray) -> np.ndarray:
    """Bits set per row of an (n, 8) uint64 array."""
    return _POPCOUNT[words.view(np.uint8)].reshape(len(words), -1).sum(axis=1, dtype=np.int64)


def dice(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    total = popcount(a) + popcount(b)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, 2 * popcount(a & b) / np.maximum(total, 1), np.nan)


def bloom_words(encoded: pd.Series, step: int = 100_000) -> np.ndarray:
    """Base64 Bloom filters as an (n, 8) uint64 array; missing filters are all zeros. Decoded
    `step` filters at a time into the result (not every filter's bytes joined, then read as
    big-endian and copied: three times the result's size at once)."""
    out = np.zeros((len(encoded), 8), dtype=np.uint64)
    values = encoded.to_numpy(dtype=object)
    present = np.flatnonzero(pd.notna(values))
    for s in range(0, len(present), step):
        at = present[s : s + step]
        raw = b"".join(base64.b64decode(v) for v in values[at])
        out[at] = np.frombuffer(raw, dtype=">u8").reshape(-1, 8)
    return out


def bigram_words(values: pd.Series) -> np.ndarray:
    """512-bit sets of the padded bigrams of clear strings (one bit per bigram, by hash), as
    (n, 8) uint64: the same Dice as the extracts' Bloom filters, for data given in clear."""
    return bigram_table(values).dense()


def bigram_table(values: pd.Series) -> WordTable:
    """`bigram_words` held once per distinct string (`WordTable`)."""
    uniq, inverse = np.unique(values.fillna("").astype(str).to_numpy(), return_inverse=True)
    table = np.zeros((len(uniq), 8), dtype=np.uint64)
    for i, v in enumerate(uniq):
        if not v:
            continue
        s = f"_{v.strip().lower()}_"
        for j in range(len(s) - 1):
            bit = int.from_bytes(hashlib.blake2b(s[j : j + 2].encode(), digest_size=2).digest(), "big") % 512
            table[i, bit // 64] |= np.uint64(1) << np.uint64(bit % 64)
    return WordTable(table, inverse.reshape(-1))


def bloom_table(encoded: pd.Series, step: int = 100_000) -> WordTable:
    """`bloom_words` held once per distinct filter (`WordTable`): a name's filter is the same in
    every variant holding the name, so a population's variants hold a few distinct filters each
    (thousands of forenames, tens of thousands of surnames), not 64 bytes a variant. Only the
    distinct filters are decoded; a missing filter is a row of zeros."""
    codes, uniques = pd.factorize(encoded.to_numpy(dtype=object))  # missing: -1
    table = np.zeros((len(uniques) + 1, 8), dtype=np.uint64)  # the last row: missing
    table[: len(uniques)] = bloom_words(pd.Series(np.asarray(uniques, dtype=object), dtype=object), step)
    del uniques
    return WordTable(table, np.where(codes < 0, len(table) - 1, codes))


class WordTable:
    """An (n, 8) uint64 array of bit sets (`bloom_words`, `bigram_words`) held as its distinct
    rows (`table`) and each row's position among them (`codes`, int32): indexing gives the rows of
    the dense array (`words[a]`), at 4 bytes a row rather than 64."""

    def __init__(self, table: np.ndarray, codes: np.ndarray) -> None:
        self.table = table
        self.codes = np.asarray(codes, dtype=np.int32 if len(table) < 2**31 else np.int64)

    def __getitem__(self, rows) -> np.ndarray:
        return self.table[self.codes[rows]]

    def __len__(self) -> int:
        return len(self.codes)

    def popcount(self) -> np.ndarray:
        """Bits set per row, as `popcount` of the dense array."""
        return popcount(self.table)[self.codes]

    def dense(self) -> np.ndarray:
        return self.table[self.codes]


class _Levels(BaseCompareFeature):
    """A comparison's levels from arrays: the pairs' two values and their variants' positions
    (`pair_levels`). recordlinkage calls `_compute_vectorized` with both sides indexed by the
    pairs' MultiIndex (level 0 left, level 1 right); `Comparer.levels` calls `pair_levels`
    directly, without making an index of every few pairs decisions ask about."""

    def _compute_vectorized(self, left: pd.Series, right: pd.Series) -> np.ndarray:
        a = left.index.get_level_values(0).to_numpy()
        b = right.index.get_level_values(1).to_numpy()
        return self.pair_levels(left.to_numpy(), right.to_numpy(), a, b)

    def pair_levels(self, va: np.ndarray, vb: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} defines no pair_levels: each level class does")


class NameLevels(_Levels):
    """Token equality, else a learned alias pair, else Dice of the Bloom filters, as levels."""

    def __init__(
        self, c: Comparison, words: np.ndarray, aliases: frozenset | None, initials: pd.Series | None = None
    ) -> None:
        super().__init__(c.column, c.column, label=c.name)
        self.c, self.words, self.aliases = c, words, aliases
        if initials is not None:
            self.initials = initials.to_numpy(dtype=object)
            # a one-letter name has two padded bigrams: at most 2 x 15 bits of its Bloom filter
            counts = words.popcount() if isinstance(words, WordTable) else popcount(words)
            self.only_initial = counts <= 2 * BLOOM_BITS_PER_BIGRAM

    def pair_levels(self, tok_a: np.ndarray, tok_b: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        tok_a, tok_b = np.asarray(tok_a, dtype=object), np.asarray(tok_b, dtype=object)
        d = dice(self.words[a], self.words[b])
        conditions, levels = [tok_a == tok_b], [self.c.exact]
        if self.c.aliases:
            conditions.append(alias_mask(tok_a, tok_b, self.aliases))
            levels.append(self.c.exact - 1)
        low = 1 if self.c.initial is not None else 0
        for i, t in reversed(list(enumerate(self.c.thresholds))):
            conditions.append(d >= t)
            levels.append(low + i + 1)
        if self.c.initial is not None:
            ia, ib = self.initials[a], self.initials[b]
            one = (self.only_initial[a] | self.only_initial[b]) & pd.notna(ia) & (ia == ib)
            conditions.append(one)
            levels.append(1)
        level = np.select(conditions, levels, 0)
        return np.where(pd.isna(tok_a) | pd.isna(tok_b), -1, level).astype(np.int8)


def alias_mask(tok_a: np.ndarray, tok_b: np.ndarray, aliases: frozenset | None) -> np.ndarray:
    """Whether each pair's two tokens (both present, different) are a learned alias pair ("a|b",
    a < b). Looked up by the tokens' ranks among the aliases' own tokens (a hash lookup a token
    and integer codes), not by fixed-width unicode copies of every pair's tokens joined: at 64
    characters those took about 1.8 KB a pair at once."""
    out = np.zeros(len(tok_a), bool)
    both = pd.notna(tok_a) & pd.notna(tok_b) & (tok_a != tok_b)
    if not aliases or not both.any():
        return out
    table = _alias_table(aliases)
    at = np.flatnonzero(both)
    if table is None:  # a token holding "|": the pairs joined as strings, as the aliases are
        x, y = tok_a[at].astype(str), tok_b[at].astype(str)
        first = x < y
        lo, hi = np.where(first, x, y), np.where(first, y, x)
        out[at] = pd.Series(np.char.add(np.char.add(lo, "|"), hi)).isin(aliases).to_numpy()
        return out
    rank, codes, size = table
    ra = pd.Series(tok_a[at], dtype=object).map(rank).to_numpy(dtype=np.float64)
    rb = pd.Series(tok_b[at], dtype=object).map(rank).to_numpy(dtype=np.float64)
    held = ~(np.isnan(ra) | np.isnan(rb))  # both tokens of some alias pair
    if held.any():
        a, b = ra[held].astype(np.int64), rb[held].astype(np.int64)
        # ranks follow the tokens' order (Python's, as numpy's unicode compares): lo < hi as strings
        out[at[held]] = np.isin(np.minimum(a, b) * size + np.maximum(a, b), codes)
    return out


@functools.lru_cache(maxsize=8)
def _alias_table(aliases: frozenset) -> tuple[dict, np.ndarray, int] | None:
    """The aliases' tokens ranked in sorted order, and each pair's code (rank a * size + rank b);
    None where a token holds "|" (a pair's two tokens then not known from its string)."""
    parts = [a.split("|") for a in aliases]
    if any(len(p) != 2 for p in parts):
        return None
    tokens = sorted({t for p in parts for t in p})
    rank = {t: i for i, t in enumerate(tokens)}
    size = max(len(tokens), 1)
    codes = np.array(sorted(rank[x] * size + rank[y] for x, y in parts), dtype=np.int64)
    return rank, codes, size


class StringLevels(_Levels):
    """Clear strings: equal, else similarity at each threshold (loosest first)."""

    def __init__(self, c: Comparison, words: np.ndarray | None) -> None:
        super().__init__(c.column, c.column, label=c.name)
        self.c, self.words = c, words

    def pair_levels(self, va: np.ndarray, vb: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        va, vb = np.asarray(va, dtype=object), np.asarray(vb, dtype=object)
        missing = pd.isna(va) | pd.isna(vb)
        if self.c.method == "dice":
            sim = dice(self.words[a], self.words[b])
            hit = [sim >= t for t in self.c.thresholds]
        else:
            sim = _pairwise_unique(va, vb, missing, self.c.method)
            if self.c.method == "edit":  # distances: at most each threshold
                hit = [sim <= t for t in self.c.thresholds]
            else:
                hit = [sim >= t for t in self.c.thresholds]
        conditions = [np.where(missing, False, va == vb), *reversed(hit)]
        levels = [self.c.exact, *range(len(hit), 0, -1)]
        level = np.select(conditions, levels, 0)
        return np.where(missing, -1, level).astype(np.int8)


def _pairwise_unique(va, vb, missing, method: str) -> np.ndarray:
    """A similarity or distance per pair, computed once per distinct pair of values."""
    import jellyfish

    fn = jellyfish.jaro_winkler_similarity if method == "jaro_winkler" else jellyfish.damerau_levenshtein_distance
    out = np.full(len(va), np.nan)
    keep = ~missing
    if not keep.any():
        return out
    pairs = pd.DataFrame({"a": va[keep], "b": vb[keep]})
    codes = pairs.groupby(["a", "b"], sort=False).ngroup().to_numpy()
    uniq = pairs.drop_duplicates(["a", "b"])  # first appearances, in ngroup's order
    values = np.array([fn(str(x), str(y)) for x, y in zip(uniq["a"], uniq["b"], strict=True)], dtype=float)
    out[keep] = values[codes]
    return out


class DateLevels(_Levels):
    def __init__(self, c: Comparison) -> None:
        super().__init__(c.column, c.column, label=c.name)
        self.c = c

    def pair_levels(self, va: np.ndarray, vb: np.ndarray, _a: np.ndarray, _b: np.ndarray) -> np.ndarray:
        return date_levels(va, vb, self.c.within_days)


def date_levels(left: pd.Series, right: pd.Series, within_days: int | None = None) -> np.ndarray:
    la, ra = pd.DatetimeIndex(left), pd.DatetimeIndex(right)
    ya, ma, da = la.year.to_numpy(), la.month.to_numpy(), la.day.to_numpy()
    yb, mb, db = ra.year.to_numpy(), ra.month.to_numpy(), ra.day.to_numpy()
    same = (ya == yb) & (ma == mb) & (da == db)
    swapped = (ya == yb) & (ma == db) & (da == mb)
    one_off = ((ya == yb).astype(int) + (ma == mb) + (da == db)) == 2
    top = 3 if within_days is None else 4
    conditions, levels = [same, swapped, one_off], [top, top - 1, top - 2]
    if within_days is not None:
        days = np.abs((la - ra).days.to_numpy(dtype=float))
        conditions.append(days <= within_days)
        levels.append(1)
    level = np.select(conditions, levels, 0)
    return np.where(la.isna() | ra.isna(), -1, level).astype(np.int8)


class EqualLevels(_Levels):
    def __init__(self, c: Comparison) -> None:
        super().__init__(c.column, c.column, label=c.name)
        self.missing = c.missing

    def pair_levels(self, va: np.ndarray, vb: np.ndarray, _a: np.ndarray, _b: np.ndarray) -> np.ndarray:
        a, b = np.asarray(va, dtype=object), np.asarray(vb, dtype=object)
        absent = pd.isna(a) | pd.isna(b)
        if self.missing:
            absent |= np.isin(a, self.missing) | np.isin(b, self.missing)
        return np.where(absent, -1, (a == b).astype(np.int8)).astype(np.int8)


class KeyLevels(_Levels):
    """A source's own person key, read from the variants' nodes ("source|k|key" is keyed), within
    each source of the comparison's `groups` apart: 2i keyed differently in source i, 2i + 1 the
    same key, -1 not comparable (other sources, a record without a key, a source not listed)."""

    def __init__(self, c: Comparison, nodes: pd.Series) -> None:
        super().__init__(c.column, c.column, label=c.name)
        self.c = c
        values = nodes.to_numpy(dtype=object)
        self.keyed = np.fromiter(("|k|" in v for v in values), bool, len(values))
        self.node = pd.factorize(values)[0]
        group = {s: i for i, s in enumerate(c.groups)}
        self.group = np.fromiter((group.get(v.split("|", 1)[0], -1) for v in values), np.int64, len(values))

    def pair_levels(self, _va: np.ndarray, _vb: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        g = self.group[a]
        comparable = self.keyed[a] & self.keyed[b] & (g == self.group[b]) & (g >= 0)
        level = 2 * g + (self.node[a] == self.node[b])
        return np.where(comparable, level, -1).astype(np.int8)


class Comparer:
    """Computes the comparison vectors of candidate pairs with recordlinkage.Compare."""

    def __init__(self, variants: pd.DataFrame, spec: Spec, aliases: dict[str, frozenset] | None = None) -> None:
        self.spec = spec
        features = []
        for c in spec.comparisons:
            if c.kind == "name":
                # (the distinct filters once: `WordTable`)
                words = bloom_table(variants[c.bloom]) if c.bloom else bigram_table(variants[c.column])
                initials = variants[c.initial] if c.initial else None
                features.append(NameLevels(c, words, (aliases or {}).get(c.name), initials))
            elif c.kind == "string":
                words = bigram_table(variants[c.column]) if c.method == "dice" else None
                features.append(StringLevels(c, words))
            elif c.kind == "date":
                features.append(DateLevels(c))
            elif c.kind == "key":
                features.append(KeyLevels(c, variants[c.column]))
            else:
                features.append(EqualLevels(c))
        self.features = dict(zip(spec.names, features, strict=True))
        self.compare = recordlinkage.Compare(features=features)
        self.columns = list(dict.fromkeys(c.column for c in spec.comparisons))
        # only the compared columns (the Bloom filters and initials are read above, into arrays),
        # each a copy of its own (a block a column: no view holding the caller's other columns)
        self.variants = pd.DataFrame(
            {c: np.array(variants[c].to_numpy(), copy=True) for c in self.columns},
            index=pd.RangeIndex(len(variants)),
            copy=False,
        )

    def vectors(self, a: np.ndarray, b: np.ndarray) -> pd.DataFrame:
        names = list(self.spec.names)
        if len(a) == 0:
            return pd.DataFrame({c: np.array([], dtype=np.int8) for c in names})
        index = pd.MultiIndex.from_arrays([a, b])
        # recordlinkage selects the compared columns of the frame it is given (a copy of each) and
        # then the pairs' rows by label: given only the rows the pairs hold, labelled by their
        # positions, it copies those rather than every variant's columns three times per chunk
        rows = np.unique(np.concatenate([a, b]))
        held = pd.DataFrame(
            {c: self.variants[c].to_numpy()[rows] for c in self.columns}, index=pd.Index(rows), copy=False
        )
        out = self.compare.compute(index, held)
        return out[names].astype(np.int8).reset_index(drop=True)

    def levels(self, name: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """One comparison's levels for pairs (a, b): the same feature recordlinkage computes in
        `vectors`, called directly on arrays (no frame nor index per call: decisions ask this
        for a few pairs at a time, thousands of times)."""
        if len(a) == 0:
            return np.array([], dtype=np.int8)
        feature = self.features[name]
        column = self.variants[feature.labels_left].to_numpy()
        a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
        out = np.empty(len(a), dtype=np.int8)
        for s in range(0, len(a), 1_000_000):
            x, y = a[s : s + 1_000_000], b[s : s + 1_000_000]
            out[s : s + 1_000_000] = feature.pair_levels(column[x], column[y], x, y)
        return out
