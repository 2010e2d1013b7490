"""Fellegi–Sunter model with multi-level comparisons, estimated without labels.

u-probabilities come from random pairs of variants (almost all non-matches); m-probabilities
and the match prior from expectation–maximisation over the candidate pairs with u held fixed,
as Splink does. Exact agreement on a name or a date of birth is then weighted by how common the
value is (term-frequency adjustment): sharing SMITH says less than sharing a rare surname.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, fields

import numpy as np
import pandas as pd

from linkage.blocking import in_pass
from linkage.compare import Comparer
from linkage.spec import Spec


@dataclass
class Model:
    version: str
    prior: float  # probability that a candidate pair is a match
    m: dict[str, list[float]]
    u: dict[str, list[float]]
    iterations: int = 0
    # relative frequency of each value among variants, for term-frequency adjustment
    tf: dict[str, dict[str, float]] = field(default_factory=dict, repr=False)
    # learned alias pairs per name comparison ("a|b", a < b)
    aliases: dict[str, list[str]] = field(default_factory=dict, repr=False)
    # the probability that a pair looking like relatives is one person, per corroboration rule and
    # configuration of the two persons' sources ("rule|configuration"; linkage.cluster)
    relatives: dict[str, float] | None = field(default=None, repr=False)
    # the comparable pairs the prior was counted over (all pairs of variants of different nodes):
    # the population the prior belongs to, which the link level reads (`link_at`); 0 if unknown
    comparable: int = 0

    def to_json(self) -> str:
        # the fields as they are (what `asdict` gives for these: it would copy every term
        # frequency's entry in Python first, only for json to read the copy)
        return json.dumps({f.name: getattr(self, f.name) for f in fields(self)}, sort_keys=True, default=str)

    @staticmethod
    def from_json(text: str) -> Model:
        return Model(**json.loads(text))

    def fits(self, spec: Spec) -> bool:
        """Whether this model has the comparisons and levels of `spec` (else retrain)."""
        return all(len(self.m.get(c.name, ())) == c.levels for c in spec.comparisons)

    def alias_sets(self) -> dict[str, frozenset]:
        return {c: frozenset(v) for c, v in self.aliases.items()}

    def link_at(self, spec: Spec) -> float:
        """The weight at which a pair links: `spec.link_at` (the link probability's log2 odds)
        less what the prior lost to a population larger than `spec.reference_identities`.

        The prior is the chance that two random variants are one person: the matches grow with
        the identities n, the comparable pairs with n², so it falls as 1/n, and the same evidence
        falls below the link level in a larger population. The link decision reads the pair's
        odds under the prior the population would have at the reference size (the same matches
        per identity, `prior · n / reference`), so evidence that linked there links at any size;
        below the reference nothing changes. n is read from the comparable pairs (n²/2)."""
        if not spec.reference_identities or self.comparable <= 0:
            return spec.link_at
        scale = math.sqrt(2.0 * self.comparable) / spec.reference_identities
        if scale <= 1.0:
            return spec.link_at
        at = min(self.prior * scale, 0.5)
        return spec.link_at - (_logit2(at) - _logit2(self.prior))

    def weights(self, comparison: str) -> np.ndarray:
        """log2(m/u) per level; index -1 (missing) is 0."""
        m, u = np.asarray(self.m[comparison]), np.asarray(self.u[comparison])
        return np.append(np.log2(np.clip(m, 1e-6, 1) / np.clip(u, 1e-9, 1)), 0.0)

    def score(
        self,
        vectors: pd.DataFrame,
        spec: Spec,
        tf_values: dict[str, np.ndarray] | None = None,
        tf_freq: dict[str, np.ndarray] | None = None,
    ) -> np.ndarray:
        """Match weight of each pair: prior log-odds plus each comparison's weight. The
        term-frequency adjustment reads the left values (`tf_values`, looked up in `tf`) or their
        frequencies already looked up (`tf_freq`, NaN where unknown: `tf_frequencies`)."""
        w = np.full(len(vectors), np.log2(self.prior / (1 - self.prior)))
        for comp in spec.comparisons:
            c = comp.name
            levels = vectors[c].to_numpy().astype(np.int64)
            w = w + self.weights(c)[levels]  # level -1 indexes the appended 0
            if (tf_values is not None or tf_freq is not None) and comp.tf and self.tf.get(c):
                exact = levels == comp.exact
                if exact.any():
                    if tf_freq is not None and c in tf_freq:
                        freq = np.asarray(tf_freq[c][exact], dtype=float)
                    else:
                        freq = pd.Series(tf_values[c][exact]).map(self.tf[c]).to_numpy(dtype=float)
                    u_exact = self.u[c][comp.exact]
                    adjust = np.log2(np.clip(u_exact, 1e-9, 1) / np.clip(np.nan_to_num(freq, nan=u_exact), 1e-9, 1))
                    w[exact] += adjust
        return w


def _logit2(p: float) -> float:
    return float(math.log2(p / (1.0 - p)))


def probability(weight: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp2(-weight))


def estimate_u(comparer: Comparer, variants: pd.DataFrame, rng: np.random.Generator, n: int | None = None) -> dict:
    size, n = len(variants), n or comparer.spec.u_pairs
    a, b = rng.integers(0, size, n), rng.integers(0, size, n)
    node = variants["node"].to_numpy()
    keep = node[a] != node[b]
    if comparer.spec.link_only:
        source = variants["source"].to_numpy()
        keep &= source[a] != source[b]
    a, b = a[keep], b[keep]
    # compared in chunks (row by row: the same vectors), not recordlinkage's frames for every pair at once
    step = 100_000
    vec = pd.concat([comparer.vectors(a[s : s + step], b[s : s + step]) for s in range(0, max(len(a), 1), step)])
    return {
        c.name: _frequencies(vec[c.name].to_numpy(), c.levels, smoothing=1.0, within=2 if c.kind == "key" else None)
        for c in comparer.spec.comparisons
    }


def _frequencies(levels: np.ndarray, k: int, smoothing: float, within: int | None = None) -> list[float]:
    """Relative frequency of each level; with `within`, within each run of that many levels (a
    key's two levels per source: the share of a source's comparable pairs keyed differently)."""
    counts = np.bincount(levels[levels >= 0], minlength=k).astype(float) + smoothing
    if within:
        groups = counts.reshape(-1, within)
        return list((groups / groups.sum(axis=1, keepdims=True)).ravel())
    return list(counts / counts.sum())


def _em(levels: dict[str, np.ndarray], u: dict, comparisons, iterations: int, tol: float):
    k = {c: len(u[c]) for c in comparisons}
    m = {c: list(np.linspace(0.05, 1.0, k[c]) / np.linspace(0.05, 1.0, k[c]).sum()) for c in comparisons}
    prior, done = 0.3, 0
    for step in range(1, iterations + 1):
        done = step
        logit = np.full(len(next(iter(levels.values()))), np.log2(prior / (1 - prior)))
        for c in comparisons:
            lv = levels[c]
            w = np.append(np.log2(np.clip(m[c], 1e-6, 1) / np.clip(u[c], 1e-9, 1)), 0.0)
            logit += w[lv]
        p = probability(logit)
        new_prior = float(np.clip(p.mean(), 1e-6, 1 - 1e-6))
        new_m = {}
        for c in comparisons:
            lv = levels[c]
            sums = np.bincount(lv[lv >= 0], weights=p[lv >= 0], minlength=k[c]) + 1e-3
            new_m[c] = list(sums / sums.sum())
        shift = max(abs(new_prior - prior), *(np.abs(np.subtract(new_m[c], m[c])).max() for c in comparisons))
        prior, m = new_prior, new_m
        if shift < tol:
            break
    return m, prior, done


def fit(
    vectors: pd.DataFrame,
    pairs: pd.DataFrame,
    spec: Spec,
    u: dict,
    version: str,
    comparable: int,
    iterations: int = 50,
    tol: float = 1e-6,
) -> Model:
    """EM sessions for m (Splink-style, one per blocking pass), then the prior over all pairs.

    `vectors` and `pairs` may be a sample of the candidate pairs; `comparable` is the number of
    pairs blocking could have proposed (all pairs of variants of different nodes)."""
    estimates: dict[str, list[list[float]]] = {c: [] for c in spec.names}
    total = 0
    for pass_name, comparisons in spec.sessions.items():
        sel = in_pass(pairs, spec, pass_name)
        if sel.sum() < 50:
            continue
        levels = {c: vectors[c].to_numpy().astype(np.int64)[sel] for c in comparisons}
        m, _, done = _em(levels, u, comparisons, iterations, tol)
        total += done
        for c in comparisons:
            estimates[c].append(m[c])
    m = {c: list(np.mean(estimates[c], axis=0)) if estimates[c] else list(u[c][::-1]) for c in spec.names}
    # The prior is the chance that two random variants are the same person (as in Splink): pairs
    # agreeing exactly on the deterministic rule (both names and the date of birth), over an
    # assumed recall of that rule, divided by all comparable pairs.
    exact = np.ones(len(vectors), bool)
    for c in spec.prior_rule:
        exact &= vectors[c].to_numpy() == spec.comparison(c).exact
    share = len(vectors) / max(len(pairs), 1)  # 1 unless vectors are a sample
    prior = float(np.clip(exact.sum() / share / spec.prior_recall / max(comparable, 1), 1e-12, 0.5))
    return Model(version, prior, m, u, iterations=total, comparable=int(comparable))


def tf_keys(frame: pd.DataFrame, c) -> pd.Series:
    """The value whose frequency adjusts an exact agreement: the value itself, or with `tf_by`
    the value within its group ("1985|<token>")."""
    values = frame[c.column].astype(str).where(frame[c.column].notna())
    if c.tf_by is None:
        return values
    group = frame[c.tf_by]
    if pd.api.types.is_datetime64_any_dtype(group):
        group = group.dt.year.astype("Int64")
    group = group.astype(str)
    return (group.fillna("NA") + "|" + values).where(values.notna())


def tf_codes(frame: pd.DataFrame, c) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Each row's term-frequency key (`tf_keys`) as an integer code (-1 where it has none), each
    code's key string, and each code's group code (with `tf_by`; else zeros): the rows' values
    and groups factorized, and a string made only for each distinct key (from a row holding it,
    by `tf_keys` itself), not for every row. None where the codes might not be the strings'
    (a `tf_by` column not of dates, or two values one string): then `tf_keys` serves."""
    if c.tf_by is not None and not pd.api.types.is_datetime64_any_dtype(frame[c.tf_by]):
        return None
    value, _ = pd.factorize(frame[c.column])  # -1: missing
    value = value.astype(np.int64, copy=False)
    if c.tf_by is None:
        group, groups = np.zeros(len(frame), dtype=np.int64), 1
    else:
        group, years = pd.factorize(frame[c.tf_by].dt.year.astype("Int64"))  # -1: no date
        groups = len(years) + 1
        group = np.where(group < 0, groups - 1, group).astype(np.int64)
        del years
    held = value >= 0
    key = np.where(held, value * groups + group, -1)
    del value
    uniq, inverse = np.unique(key[held], return_inverse=True)
    code = np.full(len(frame), -1, dtype=np.int64)
    code[held] = inverse.reshape(-1)
    # a row holding each key (its first): the key's string as tf_keys makes it
    rows = np.flatnonzero(held)
    first = np.empty(len(uniq), dtype=np.int64)
    first[inverse.reshape(-1)[::-1]] = rows[::-1]
    names = tf_keys(frame.iloc[first], c).to_numpy(dtype=object)
    if len(pd.unique(names)) != len(names):
        return None
    return code, names, (uniq % groups).astype(np.int64)


def term_frequencies(
    records: pd.DataFrame, spec: Spec, counts: np.ndarray | None = None
) -> dict[str, dict[str, float]]:
    """Relative frequency of each value among records (within its group, with `tf_by`), for
    comparisons with TF adjustment. With `counts` (the number of records of each row), `records`
    may be the variants: each value is counted once per variant with its records' number. The
    values are counted by code (`tf_codes`): a string is made for each distinct value, not for
    every row (the same integer counts, so the same frequencies)."""
    out = {}
    weights = np.ones(len(records), dtype=np.int64) if counts is None else np.asarray(counts, dtype=np.int64)
    for c in spec.comparisons:
        if not c.tf:
            continue
        coded = tf_codes(records, c)
        if coded is None:
            out[c.name] = _term_frequencies_by_string(records, c, weights)
            continue
        code, names, group = coded
        held = code >= 0
        n = np.zeros(len(names), dtype=np.int64)
        np.add.at(n, code[held], weights[held])
        keep = n > 0
        n, names, group = n[keep], names[keep], group[keep]
        if c.tf_by is None:
            freq = n / n.sum()
        else:
            size = np.zeros(int(group.max()) + 1 if len(group) else 0, dtype=np.int64)
            np.add.at(size, group, n)
            freq = n / size[group]
        out[c.name] = dict(zip(names.tolist(), freq.tolist(), strict=True))
    return out


def _term_frequencies_by_string(records: pd.DataFrame, c, weights: np.ndarray) -> dict[str, float]:
    """`term_frequencies` of one comparison from a string a row (`tf_keys`)."""
    keys = tf_keys(records, c)
    held = keys.notna().to_numpy()
    n = pd.Series(weights[held]).groupby(keys.to_numpy()[held], sort=False).sum()
    n = n[n > 0]
    if c.tf_by is None:
        return (n / n.sum()).to_dict()
    group = pd.Series(n.index.str.split("|", n=1).str[0], index=n.index)
    size = n.groupby(group.to_numpy(), sort=False).sum()
    return (n / size.reindex(group.to_numpy()).to_numpy()).to_dict()


def tf_frequencies(variants: pd.DataFrame, spec: Spec, model: Model) -> dict[str, np.ndarray]:
    """Each variant's term frequency (`model.tf` of its value, NaN where unknown) per comparison
    with TF adjustment: 8 bytes a variant, looked up once (by `tf_codes`: a string for each
    distinct value, not for every variant), in place of a string a variant looked up in every
    chunk."""
    out = {}
    for c in spec.comparisons:
        if not (c.tf and model.tf.get(c.name)):
            continue
        coded = tf_codes(variants, c)
        if coded is None:
            out[c.name] = tf_keys(variants, c).map(model.tf[c.name]).to_numpy(dtype=float)
            continue
        code, names, _ = coded
        freq = pd.Series(names, dtype=object).map(model.tf[c.name]).to_numpy(dtype=float)
        out[c.name] = np.where(code >= 0, freq[np.maximum(code, 0)] if len(freq) else np.nan, np.nan)
    return out


def tf_values(variants: pd.DataFrame, a: np.ndarray, spec: Spec) -> dict[str, np.ndarray]:
    """The value whose frequency adjusts an exact agreement (the left variant's value)."""
    return {c.name: tf_keys(variants, c).to_numpy(dtype=object)[a] for c in spec.comparisons if c.tf}
