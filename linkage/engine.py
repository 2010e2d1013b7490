"""The linkage engine shared by every data set: blocking, chunked comparison and scoring,
training, node pairs with corroboration, decisions.

Work is bounded: candidate pairs are compared and scored in chunks (`score_chunk` is a pure
function of the variants, the chunk and the model, so chunks could equally be mapped tasks), and
only pairs at or above the review threshold are kept.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from linkage import model as fs
from linkage.compare import Comparer
from linkage.spec import Spec

CHUNK = 1_000_000  # candidate pairs compared at once
TRAIN_SAMPLE = 2_000_000  # candidate pairs the EM sessions see at most
# pairs compared at once while training (the comparison vectors are row by row: the same vectors
# in any chunks; recordlinkage's frames for a million pairs took about 600 MiB)
TRAIN_CHUNK = 200_000
MIN_CHUNK = 100_000  # the smallest scoring chunk a budget the run's frames fill leaves (`fit_chunk`)


PAIR_BYTES = 1024  # peak bytes per candidate pair while a chunk is compared and scored (measured order)
MEMORY_DEFAULT = "4GB"  # a laptop's share: `outcomes link --memory-limit`, $OUTCOMES_LINK_MEMORY


def parse_size(text: str | int) -> int:
    """Bytes of a size such as "4GB", "512MB", "2GiB" or a number of bytes."""
    if isinstance(text, int):
        return text
    t = str(text).strip().upper().replace(" ", "")
    units = {"KIB": 1 << 10, "MIB": 1 << 20, "GIB": 1 << 30, "TIB": 1 << 40, "KB": 10**3, "MB": 10**6}
    units |= {"GB": 10**9, "TB": 10**12, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40, "B": 1}
    for unit in sorted(units, key=len, reverse=True):
        if t.endswith(unit) and t[: -len(unit)].replace(".", "", 1).isdigit():
            return int(float(t[: -len(unit)]) * units[unit])
    if t.isdigit():
        return int(t)
    raise ValueError(f"not a size: {text!r} (e.g. 4GB, 512MB)")


def chunk_for_memory(limit_bytes: int) -> int:
    """Candidate pairs scored at once under a memory budget: a quarter of it for a chunk's
    comparison frames (the database takes half, the run's records and pairs the rest), between
    20,000 and 4 million pairs."""
    return int(min(max(limit_bytes // 4 // PAIR_BYTES, 20_000), 4_000_000))


def fit_chunk(chunk: int, limit_bytes: int | None, resident: int) -> int:
    """The scoring chunk under a budget the run's own memory (`resident` bytes) already fills in
    part: `chunk`, or fewer pairs where a chunk of `chunk` pairs would take the process over the
    budget — what the budget leaves, at PAIR_BYTES a pair, but at least MIN_CHUNK (a chunk's
    pairs are scored row by row: the scored pairs are the same in any chunks)."""
    if limit_bytes is None:
        return chunk
    room = (limit_bytes - resident) // PAIR_BYTES
    return int(min(chunk, max(room, MIN_CHUNK)))


def chunks(n: int, size: int = CHUNK) -> list[slice]:
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]


def score_chunk(
    comparer: Comparer, model: fs.Model, spec: Spec, tf: dict[str, np.ndarray], a: np.ndarray, b: np.ndarray
) -> pd.DataFrame:
    """Comparison vectors and weights of one chunk of pairs; only those worth reviewing or linking.
    `tf`: per comparison with TF adjustment, each variant's value (`tf_arrays`) or its frequency
    already looked up (`tf_arrays(..., model)`)."""
    vec = comparer.vectors(a, b)
    left = {c: v[a] for c, v in tf.items()}
    freq = {c: v for c, v in left.items() if v.dtype.kind == "f"}
    weight = model.score(vec, spec, {c: v for c, v in left.items() if c not in freq}, freq)
    keep = weight >= spec.review_at
    out = vec[keep].reset_index(drop=True)
    out.insert(0, "a", a[keep])
    out.insert(1, "b", b[keep])
    out.insert(2, "weight", weight[keep])
    return out


def tf_arrays(variants: pd.DataFrame, spec: Spec, model: fs.Model | None = None) -> dict[str, np.ndarray]:
    """Each variant's term-frequency value per comparison with TF adjustment; given the model,
    its frequency (a float a variant rather than a string: `model.tf_frequencies`)."""
    if model is not None:
        return fs.tf_frequencies(variants, spec, model)
    return {c.name: fs.tf_keys(variants, c).to_numpy(dtype=object) for c in spec.comparisons if c.tf}


def train(
    variants: pd.DataFrame,
    pairs: pd.DataFrame,
    spec: Spec,
    comparer: Comparer,
    version: str,
    comparable: int,
    seed: int,
    sample: int = TRAIN_SAMPLE,
) -> fs.Model:
    """u from random pairs; m by EM sessions over (a sample of) the candidate pairs; the prior.
    `pairs`: see `take_pairs`."""
    rng = np.random.default_rng(seed)
    u = fs.estimate_u(comparer, variants, rng)
    total = len(pairs)
    pairs = take_pairs(pairs, np.sort(rng.choice(total, sample, replace=False)) if total > sample else None)
    vec = pd.concat(
        [comparer.vectors(pairs["a"].to_numpy()[s], pairs["b"].to_numpy()[s]) for s in chunks(len(pairs), TRAIN_CHUNK)],
        ignore_index=True,
    )
    model = fs.fit(vec, pairs, spec, u, version, comparable)
    for c in spec.comparisons:
        if c.kind == "key":
            model.m[c.name] = estimate_key_m(model, vec, variants, spec, c.name, len(pairs) / max(total, 1))
    return model


def take_pairs(pairs, positions: np.ndarray | None) -> pd.DataFrame:
    """The candidate pairs at `positions` (in a, b order; all of them when None): rows of a data
    frame, or of a distributed engine's pairs through their `take` (linkage.spark)."""
    if isinstance(pairs, pd.DataFrame):
        return pairs if positions is None else pairs.iloc[positions]
    return pairs.take(positions)


def estimate_key_m(model: fs.Model, vec: pd.DataFrame, variants: pd.DataFrame, spec: Spec, name: str, share: float):
    """m of a source-key comparison, per source: of the matching pairs of that source where both
    hold a key, the share whose keys differ (level 2i) and whose keys are the same (2i + 1).

    Matching pairs with different keys are the candidate pairs at level 2i, each counted by its
    match probability under the rest of the model (an E step with the key left out); matching
    pairs with the same key are the pairs of distinct identities within the source's keyed nodes
    (a key joins its own records). Candidate pairs never hold one key twice (nodes are by key),
    so EM over them alone would find every match keyed differently, and no weight at all. The
    share differs by source: a second PNC id is commoner than a second NINo."""
    comparison = spec.comparison(name)
    keep = list(model.m[name])
    model.m[name] = list(model.u[name])  # weight 0 while scoring without the key
    levels = vec[name].to_numpy()
    differ_at = levels >= 0
    p = fs.probability(model.score(vec[differ_at].reset_index(drop=True), spec))
    model.m[name] = keep
    at = levels[differ_at]
    differ = np.bincount(at // 2, weights=p * (at % 2 == 0), minlength=len(comparison.groups))
    differ = differ / max(share, 1e-12)
    per_node = variants["node"].value_counts()
    per_node = per_node[per_node.index.str.contains("|k|", regex=False)]
    source = per_node.index.str.split("|", n=1).str[0]
    size = per_node.to_numpy(dtype=np.float64)
    m = []
    for i, group in enumerate(comparison.groups):
        k = size[source == group]
        same = float((k * (k - 1) / 2).sum())
        m0 = (differ[i] + 0.5) / (differ[i] + same + 1.0)
        m += [m0, 1.0 - m0]
    return m


def score_pairs(
    variants: pd.DataFrame, pairs: pd.DataFrame, spec: Spec, comparer: Comparer, model: fs.Model, chunk: int = CHUNK
) -> tuple[pd.DataFrame, int]:
    """Chunked scoring of candidate pairs: (pairs at or above the review threshold, chunks)."""
    tf = tf_arrays(variants, spec, model)
    a_all, b_all = pairs["a"].to_numpy(), pairs["b"].to_numpy()
    slices = chunks(len(pairs), chunk) or [slice(0, 0)]
    parts = [score_chunk(comparer, model, spec, tf, a_all[s], b_all[s]) for s in slices]
    return pd.concat(parts, ignore_index=True), len(slices)


def node_pairs(
    scored: pd.DataFrame, variants: pd.DataFrame, spec: Spec, comparer: Comparer, model: fs.Model
) -> pd.DataFrame:
    """Best-scoring variant pair per node pair, judged on what the two nodes hold as a whole.

    A node is one person to its source, so a value missing from the best pair is taken from the
    nodes' other variants (their best level; a father's record without a postcode does not hide
    his other records' addresses), and the pair is re-weighted. Then a corroboration flag per
    rule of the spec: over all variants of the two nodes, some agreement (level >= 1) where both
    have a value (`<rule>_agrees`), and whether it holds only because one node has no value at all
    (`<rule>_unseen`: the decision then looks at the two persons), for every pair kept. Only pairs
    that could link are re-weighted."""
    node = variants["node"].to_numpy()
    a, b = scored["a"].to_numpy(), scored["b"].to_numpy()
    na, nb = node[a], node[b]
    swap = na > nb
    df = pd.DataFrame(
        {
            "a": np.where(swap, nb, na),
            "b": np.where(swap, na, nb),
            "weight": scored["weight"].to_numpy(),
            "va": np.where(swap, b, a),
            "vb": np.where(swap, a, b),
        }
    )
    for c in spec.names:
        df[c] = scored[c].to_numpy()
    df = df.sort_values(["weight", "a", "b"], ascending=[False, True, True], kind="mergesort")
    df = df.drop_duplicates(["a", "b"]).reset_index(drop=True)
    could_link = df["weight"].to_numpy() >= spec.link_at
    levels = {c: df[c].to_numpy() for c in spec.names}
    # (a key is the node's own: its other variants hold the same one)
    gaps = {c.name: could_link & (levels[c.name] == -1) for c in spec.comparisons if c.kind != "key"}
    # (corroboration is read for every pair kept, those between the review and link levels too: a
    # pair there that fails it is not sent to review, cluster.decide)
    wanted = {c: levels[c] < 1 for c in spec.corroborate}
    rows = np.flatnonzero(np.logical_or.reduce([*gaps.values(), *wanted.values(), np.zeros(len(df), bool)]))
    needed = [c for c in spec.names if (c in gaps and gaps[c].any()) or (c in wanted and wanted[c].any())]
    best = _best_levels(df, rows, needed, variants, comparer)
    weight = df["weight"].to_numpy().copy()
    for c in gaps:
        fill = gaps[c] & (best.get(c, np.full(len(df), -1)) >= 0)
        if fill.any():
            new = best[c][fill]
            weight[fill] += model.weights(c)[new]
            df.loc[fill, c] = new
    df["weight"] = weight
    for c in spec.corroborate:
        top = best.get(c, levels[c])
        df[f"{c}_agrees"] = (levels[c] >= 1) | ~wanted[c] | (top >= 1) | (top == -1)
        # agreeing only because one node holds no value: the persons they are in may show more
        df[f"{c}_unseen"] = wanted[c] & (levels[c] < 1) & (top == -1)
    return df


def _best_levels(df: pd.DataFrame, rows: np.ndarray, names: list[str], variants: pd.DataFrame, comparer: Comparer):
    """For the node pairs in `rows`, the best level of each comparison over all pairs of the two
    nodes' variants (-1 when no pair has both values); other rows keep their own level."""
    out = {c: df[c].to_numpy().copy() for c in names}
    if len(rows) == 0 or not names:
        return out
    codes, uniq = pd.factorize(variants["node"].to_numpy(), sort=True)
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(uniq) + 1))
    xa = np.searchsorted(uniq, df["a"].to_numpy()[rows])
    xb = np.searchsorted(uniq, df["b"].to_numpy()[rows])
    size = (bounds[xa + 1] - bounds[xa]) * (bounds[xb + 1] - bounds[xb])
    row = np.repeat(rows, size)
    la, lb = [], []
    for x, y in zip(xa, xb, strict=True):
        va, vb = order[bounds[x] : bounds[x + 1]], order[bounds[y] : bounds[y + 1]]
        la.append(np.repeat(va, len(vb)))
        lb.append(np.tile(vb, len(va)))
    a, b = np.concatenate(la), np.concatenate(lb)
    for c in names:
        top = pd.Series(comparer.levels(c, a, b)).groupby(row).max()
        out[c][top.index.to_numpy()] = top.to_numpy()
    return out
