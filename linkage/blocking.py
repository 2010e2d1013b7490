"""Blocking: several passes whose union keeps nearly every true pair.

Each pass is a standard blocking index, as `recordlinkage.Index().block(...)` defines it: the
pairs whose key columns are equal. recordlinkage builds it by merging the frame with itself on
the key columns (every block's k*k rows, both ways round, object columns), which ran out of
memory at a million people; here each block's key becomes an integer code and each pair is made
once, with numpy. The union is kept as (a, b, passes) with a < b (variant numbers) and a bitmask
of the passes that found the pair. With ground truth labels, each pass and the union also report
pair completeness (share of the true pairs found) and reduction ratio (1 - pairs / all
comparable pairs).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from linkage.spec import Pass, Spec

UNION = "union"


@dataclass
class PassStats:
    name: str
    pairs: int  # pairs the pass found (different nodes; across sources if link only)
    new_pairs: int  # of them, pairs no earlier pass found
    reduction_ratio: float  # 1 - pairs / comparable pairs
    true_pairs_found: int | None = None  # with ground truth
    pair_completeness: float | None = None  # true pairs found / true pairs
    oversized_blocks: int = 0  # blocks left to the other passes (more identities than max_block)

    def row(self) -> dict:
        return asdict(self)


def _codes(left: pd.DataFrame, right: pd.DataFrame | None, p: Pass) -> tuple[np.ndarray, np.ndarray | None]:
    """Block codes (one integer per distinct key, 0 .. blocks - 1) of the left rows on `on` and of
    the right rows on `right_on`, in one code space: each key column factorised alone and the
    codes combined column by column (factorised again at each step, so they stay below the rows'
    number), not a frame of the key columns copied and grouped."""
    code = None
    for lc, rc in zip(p.on, p.right_on or p.on, strict=True):
        column = left[lc] if right is None else pd.concat([left[lc], right[rc]], ignore_index=True)
        c, uniq = pd.factorize(column)
        del column
        c = c.astype(np.int64, copy=False)
        code = c if code is None else pd.factorize(code * np.int64(len(uniq)) + c)[0].astype(np.int64, copy=False)
        del c, uniq
    if right is None:
        return code, None
    return code[: len(left)], code[len(left) :]


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenated aranges: starts[i] .. starts[i] + lengths[i] - 1 for every i."""
    total = int(lengths.sum())
    offsets = np.repeat(np.cumsum(lengths) - lengths, lengths)
    return np.repeat(starts, lengths) + (np.arange(total, dtype=np.int64) - offsets)


# raw pairs of one pass made at a time: their positions, keys and filters (about 50 bytes a pair)
# stay bounded whatever the population, not one array of every pair of the pass
PAIR_CHUNK = 2_000_000


def _block(
    left: pd.DataFrame, right: pd.DataFrame | None, p: Pass, max_block: int, chunk: int | None = None
) -> tuple[Iterator[tuple[np.ndarray, np.ndarray]], int]:
    """Positions (in `left`, `right`; right defaults to left, pairs once each, i < j) of the
    pairs whose key columns are equal, in chunks of about `chunk` pairs, and the number of blocks
    skipped for their size. The size of a block is its rows on the right (everything), so that a
    run over new records skips the blocks a run over everything would; passes whose two sides are
    keyed differently (swapped names or dates) find a pair from either side, so they are never
    capped."""
    chunk = chunk or PAIR_CHUNK
    lcode, rcode = _codes(left, right, p)
    size = np.bincount(lcode if rcode is None else rcode) if p.symmetric else np.array([], dtype=np.int64)
    big = np.flatnonzero(size > max_block)
    del size
    if not len(big):
        return _pairs(lcode, rcode, chunk), 0
    lcode = np.where(np.isin(lcode, big), -1, lcode)
    if rcode is not None:
        rcode = np.where(np.isin(rcode, big), -1, rcode)
    positions = np.flatnonzero(lcode >= 0)
    lcode = lcode[positions]
    if rcode is not None:
        rkeep = np.flatnonzero(rcode >= 0)
        return ((positions[i], rkeep[j]) for i, j in _pairs(lcode, rcode[rkeep], chunk)), len(big)
    return ((positions[i], positions[j]) for i, j in _pairs(lcode, None, chunk)), len(big)


def _pairs(lcode: np.ndarray, rcode: np.ndarray | None, chunk: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The pairs of equal codes, a run of left rows (in code order) at a time: each chunk holds
    about `chunk` pairs (more only where one row alone has more)."""
    lorder = np.argsort(lcode, kind="stable")
    lsorted = lcode[lorder]
    if rcode is None:  # one frame: pairs i < j within each block
        pos = np.arange(len(lsorted), dtype=np.int64)
        n = np.searchsorted(lsorted, lsorted, side="right") - pos - 1
        start, rorder = pos + 1, lorder
        del pos
    else:
        rorder = np.argsort(rcode, kind="stable")
        rsorted = rcode[rorder]
        start = np.searchsorted(rsorted, lsorted, side="left")
        n = np.searchsorted(rsorted, lsorted, side="right") - start
        del rsorted
    del lsorted
    total = np.cumsum(n)
    last = int(total[-1]) if len(total) else 0
    cuts = np.unique(np.searchsorted(total, np.arange(chunk, last, chunk, dtype=np.int64), side="right"))
    del total
    for lo, hi in zip(np.r_[0, cuts], np.r_[cuts, len(n)], strict=True):
        nn = n[lo:hi]
        i = np.repeat(np.arange(lo, hi, dtype=np.int64), nn)
        j = _ranges(start[lo:hi], nn)
        if len(i):
            yield lorder[i], rorder[j]


def in_pass(pairs: pd.DataFrame, spec: Spec, name: str) -> np.ndarray:
    bit = [p.name for p in spec.passes].index(name)
    return (pairs["passes"].to_numpy() >> bit) & 1 == 1


def comparable_pairs(variants: pd.DataFrame, spec: Spec, new: pd.Index | None = None) -> int:
    """All pairs blocking could have proposed: every pair (involving a new variant, with `new`)
    of different nodes, and across sources when linking only."""

    def count(frame: pd.DataFrame) -> int:
        if spec.link_only:
            n = frame["source"].value_counts().to_numpy(dtype=np.int64)
            return int((n.sum() ** 2 - (n**2).sum()) // 2)
        k = frame["node"].value_counts().to_numpy(dtype=np.int64)
        return int(len(frame) * (len(frame) - 1) // 2 - (k * (k - 1) // 2).sum())

    total = count(variants)
    if new is None:
        return total
    return total - count(variants.drop(index=new))


def true_pairs(variants: pd.DataFrame, label: np.ndarray, spec: Spec, new: pd.Index | None = None) -> int:
    """Pairs of variants of one true person (labels) that are in different nodes (and sources,
    when linking only); with `new`, those involving a new variant."""

    def count(frame: pd.DataFrame, lab: np.ndarray) -> int:
        f = pd.DataFrame({"t": lab, "g": frame["source" if spec.link_only else "node"].to_numpy()})
        f = f[f["t"] >= 0]
        n = f.groupby("t").size().to_numpy(dtype=np.int64)
        k = f.groupby(["t", "g"]).size().to_numpy(dtype=np.int64)
        return int((n * (n - 1) // 2).sum() - (k * (k - 1) // 2).sum())

    total = count(variants, label)
    if new is None:
        return total
    old = ~variants.index.isin(new)
    return total - count(variants[old], label[old])


def candidate_pairs(
    variants: pd.DataFrame,
    spec: Spec,
    new: pd.Index | None = None,
    label: np.ndarray | None = None,
    oversized: dict | None = None,
    comparable: int | None = None,
) -> tuple[pd.DataFrame, list[PassStats]]:
    """Candidate variant pairs (a < b, different nodes) from every pass, with a bitmask `passes`
    of the passes that found each pair. With `new`, only pairs involving a new variant. With
    `label` (each variant's true person as an integer code, -1 unknown), pair completeness per
    pass and for the union.

    `variants` may be part of a population (an incremental run: the identities that block with
    the new ones, linkage.incremental); then `oversized` gives per pass the keys of the blocks
    too large in the whole population (a frame of the pass's `on` values, and how many such
    blocks) and `comparable` the comparable pairs of the whole population, so that the pairs and
    figures are those blocking the whole population gives."""
    stats = []
    left = variants if new is None else variants.loc[new]
    node = pd.factorize(variants["node"])[0]
    source = pd.factorize(variants["source"])[0]
    if comparable is None:
        comparable = max(comparable_pairs(variants, spec, new), 1)
    total_true = true_pairs(variants, label, spec, new) if label is not None else None
    # the union so far: sorted unique keys (a << 32 | b) and the bitmask of the passes that found
    # each, merged pass by pass (not every pass's pairs held to the end, then sorted together)
    seen = np.array([], dtype=np.int64)
    mask = np.array([], dtype=np.uint16)
    for i, p in enumerate(spec.passes):
        key, big = _pass_keys(left, variants, p, spec, new, oversized, node, source)
        if new is not None and not p.symmetric:  # keyed differently on its two sides: a new variant on either
            back, _ = _pass_keys(left, variants, Pass(p.name, p.right_on, p.on), spec, new, oversized, node, source)
            key = np.union1d(key, back)
            del back
        # key and seen are sorted and unique: membership by binary search, union by insertion
        at = np.searchsorted(seen, key)
        found = at < len(seen)
        found[found] = seen[at[found]] == key[found]
        mask[at[found]] |= np.uint16(1 << i)
        fresh = ~found
        new_pairs = int(fresh.sum())
        stats.append(_stats(p.name, key, new_pairs, comparable, label, total_true))
        stats[-1].oversized_blocks = int(big)
        # equal insertion points take the fresh keys in their (ascending) order: seen stays sorted
        seen = np.insert(seen, at[fresh], key[fresh])
        mask = np.insert(mask, at[fresh], np.uint16(1 << i))
        del key, at, found, fresh
    stats.append(_stats(UNION, seen, len(seen), comparable, label, total_true))
    stats[-1].oversized_blocks = sum(s.oversized_blocks for s in stats[:-1])
    # variant positions in 4 bytes where they fit (held from blocking to the end of scoring:
    # 43.5 million pairs at a million people), read from the keys' two halves without an int64
    # copy of either
    if len(variants) < 2**31 and sys.byteorder == "little":
        halves = seen.view(np.int32).reshape(-1, 2)
        a, b = halves[:, 1].copy(), halves[:, 0].copy()
    else:
        a, b = seen >> 32, seen & ((1 << 32) - 1)
    del seen
    return pd.DataFrame({"a": a, "b": b, "passes": mask}, copy=False), stats


def _pass_keys(left, variants, p: Pass, spec: Spec, new, oversized, node, source) -> tuple[np.ndarray, int]:
    """The pairs of one pass (sorted unique keys a << 32 | b, a < b) and its blocks too large."""
    # only the pass's key columns of the rows holding every key (not a copy of every column of
    # every variant on each side, for each pass); the right side only where it is not the left
    sub_l = left[list(p.on)].dropna()
    one_frame = new is None and p.symmetric
    sub_r = sub_l if one_frame else variants[list(p.right_on or p.on)].dropna()
    key, big = np.array([], dtype=np.int64), 0
    cap, blocked = spec.max_block, not (sub_l.empty or sub_r.empty)
    if oversized is not None and blocked:  # the whole population's oversized blocks, not this part's
        cap = np.iinfo(np.int64).max
        keys_big, big = oversized.get(p.name, (None, 0))
        if keys_big is not None and len(keys_big):
            sub_l = sub_l[~_holds(sub_l, keys_big, p)]
    if not (sub_l.empty or sub_r.empty):
        chunks, found_big = _block(sub_l, None if one_frame else sub_r, p, cap)
        big = big if oversized is not None else found_big
        index_l = sub_l.index.to_numpy(dtype=np.int64)
        index_r = index_l if one_frame else sub_r.index.to_numpy(dtype=np.int64)
        del sub_l, sub_r
        parts = []
        for pos_l, pos_r in chunks:
            a, b = index_l[pos_l], index_r[pos_r]
            del pos_l, pos_r
            lo, hi = np.minimum(a, b), np.maximum(a, b)
            del a, b
            keep = (lo != hi) & (node[lo] != node[hi])
            if spec.link_only:
                keep &= source[lo] != source[hi]
            parts.append(lo[keep] * np.int64(1 << 32) + hi[keep])
            del lo, hi, keep
        key = np.unique(np.concatenate(parts)) if parts else key
    return key, int(big)


def _holds(frame: pd.DataFrame, keys: pd.DataFrame, p: Pass) -> np.ndarray:
    """Whether each row's `on` values are one of `keys` (a frame of the pass's key values in order)."""
    keys = keys.set_axis([f"k{i}" for i in range(len(p.on))], axis=1).drop_duplicates()
    mine = pd.DataFrame({f"k{i}": _plain(frame[c]) for i, c in enumerate(p.on)})
    for c in keys.columns:
        keys[c] = _plain(keys[c])
    flag = mine.merge(keys.assign(_hit=True), on=list(keys.columns), how="left")["_hit"]
    return flag.notna().to_numpy()


def _plain(values: pd.Series) -> np.ndarray:
    """Key values comparable between pandas and SQL results: dates as datetime64, integers as int64."""
    if values.dtype == object and len(values) and any(hasattr(v, "isoformat") for v in values.dropna().iloc[:1]):
        return pd.to_datetime(values).to_numpy().astype("datetime64[ns]")
    if pd.api.types.is_datetime64_any_dtype(values):
        return values.to_numpy().astype("datetime64[ns]")
    if pd.api.types.is_integer_dtype(values) or pd.api.types.is_float_dtype(values):
        return values.astype("float64").to_numpy()
    return values.to_numpy(dtype=object)


def _stats(name, key, new_pairs, comparable, label, total_true) -> PassStats:
    s = PassStats(name, len(key), int(new_pairs), 1.0 - len(key) / comparable)
    if label is not None:
        la, lb = label[key >> 32], label[key & ((1 << 32) - 1)]
        found = int(np.sum((la == lb) & (la >= 0)))
        s.true_pairs_found = found
        s.pair_completeness = found / total_true if total_true else 1.0
    return s
