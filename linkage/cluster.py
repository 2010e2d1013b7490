"""From scored variant pairs to persons: node pairs in descending weight, merged unless a rule
of life forbids it (a person dies once) or a clerical reviewer has said the two are different
people. Two different source keys are evidence (the `key` comparison), not a rule: every source
holds duplicate person records (extracts.md §2)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass
class Decisions:
    links: pd.DataFrame  # node pairs accepted: a, b, weight
    review: pd.DataFrame  # node pairs for clerical review: a, b, weight, why
    refused: int = 0


class UnionFind:
    """Clusters of nodes with, per cluster, the constrained keys it holds."""

    def __init__(self, nodes: np.ndarray, keys: dict[str, frozenset]) -> None:
        self.parent = {n: n for n in nodes}
        self.keys = {n: dict(keys.get(n, {})) for n in nodes}  # source -> set of unique keys

    def find(self, x):
        root = x
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[x] != root:
            self.parent[x], x = root, self.parent[x]
        return root

    def conflict(self, ra, rb) -> str | None:
        ka, kb = self.keys[ra], self.keys[rb]
        for source in set(ka) & set(kb):
            if ka[source] != kb[source]:
                return f"two {source} identities"
        return None

    def union(self, ra, rb) -> None:
        keep, gone = (ra, rb) if ra <= rb else (rb, ra)
        self.parent[gone] = keep
        for source, ids in self.keys.pop(gone).items():
            self.keys[keep][source] = self.keys[keep].get(source, frozenset()) | ids


def node_keys(records: pd.DataFrame) -> dict:
    """Per node, what a person can hold only one of: a death registration (a person dies once;
    a registration amended keeps its record id, so it is one node)."""
    keys: dict = {}
    for node in records.loc[records["source"] == "deaths", "node"].unique():
        keys[node] = {"deaths": frozenset([node])}
    return keys


def decide(node_pairs: pd.DataFrame, uf: UnionFind, link_at: float, review_at: float, corroborate=None) -> Decisions:
    """Accept node pairs at or above `link_at` in descending weight order, respecting constraints.

    `corroborate` maps a comparison to the reason given when a pair's `<comparison>_agrees` flag
    is false: such a pair goes to clerical review however high its weight."""
    ordered = node_pairs.sort_values(["weight", "a", "b"], ascending=[False, True, True], kind="mergesort")
    links, review = [], []
    refused = 0
    rules = [(ordered[f"{c}_agrees"].to_numpy(), why) for c, why in (corroborate or {}).items()]
    for i, (a, b, w) in enumerate(ordered[["a", "b", "weight"]].itertuples(index=False)):
        if w < review_at:
            break
        ra, rb = uf.find(a), uf.find(b)
        if ra == rb:
            continue
        if w < link_at:
            review.append((a, b, w, "weight between review and link thresholds"))
            continue
        unsure = next((why for flags, why in rules if not flags[i]), None)
        if unsure:
            review.append((a, b, w, unsure))
            continue
        why = uf.conflict(ra, rb)
        if why:
            refused += 1
            review.append((a, b, w, f"would join {why}"))
            continue
        uf.union(ra, rb)
        links.append((a, b, w))
    return Decisions(
        pd.DataFrame(links, columns=["a", "b", "weight"]),
        pd.DataFrame(review, columns=["a", "b", "weight", "why"]),
        refused,
    )
