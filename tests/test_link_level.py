"""The link level holds as the population grows (`linkage.model.Model.link_at`, issue 14): past
`Spec.reference_identities` a link reads the pair's odds under the prior of a population of the
reference size, so the same evidence links at any size; at or below it nothing changes."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from linkage import model as fs
from linkage.cluster import UnionFind, decide
from linkage.spec import IDENTITY

REF = IDENTITY.reference_identities


def _logit2(p: float) -> float:
    return math.log2(p / (1 - p))


def _model(identities: float, matches_per_identity: float = 1.5) -> fs.Model:
    """A model whose prior belongs to `identities` variants (comparable pairs n²/2) holding
    `matches_per_identity` matching partners each: the prior falls as 1/n."""
    comparable = int(identities**2 / 2)
    prior = matches_per_identity * identities / 2 / comparable
    return fs.Model("t", prior, {}, {}, comparable=comparable)


def test_at_or_below_the_reference_the_link_level_is_the_specs():
    assert _model(REF / 3).link_at(IDENTITY) == IDENTITY.link_at
    assert _model(REF).link_at(IDENTITY) == pytest.approx(IDENTITY.link_at)
    unknown = fs.Model("t", 1e-7, {}, {})  # a model stored before it kept its population
    assert unknown.link_at(IDENTITY) == IDENTITY.link_at

    assert _model(REF * 40).link_at(replace(IDENTITY, reference_identities=None)) == IDENTITY.link_at


def test_above_it_the_same_evidence_links_at_any_size():
    # the evidence a pair needs (its weight less the prior's log2 odds: the Bayes factor) is that
    # of the reference population, whatever the size past it; the spec's level alone would ask
    # for a bit more evidence for every doubling of the population
    at_ref = IDENTITY.link_at - _logit2(_model(REF).prior)
    for n in (2.5 * REF, 8 * REF, 33 * REF):
        m = _model(n)
        assert m.link_at(IDENTITY) < IDENTITY.link_at
        assert m.link_at(IDENTITY) - _logit2(m.prior) == pytest.approx(at_ref, abs=1e-6)
        assert IDENTITY.link_at - _logit2(m.prior) == pytest.approx(at_ref + math.log2(n / REF), abs=0.01)


def test_a_pair_between_the_levels_links_in_a_large_population_only_if_nothing_looks_like_relatives():
    big = _model(10 * REF)
    level = big.link_at(IDENTITY)
    assert IDENTITY.link_at - level == pytest.approx(math.log2(10), abs=0.01)
    nodes = np.array(["t|1", "c|1", "b|1", "d|1"], dtype=object)
    pairs = pd.DataFrame(
        {
            "a": ["c|1", "b|1", "d|1"],
            "b": ["t|1", "t|1", "t|1"],
            "weight": [level + 0.5, level - 0.5, level + 1.0],
            "forename_agrees": [True, True, False],  # twins' look: not linked by the population's level
            "dob_agrees": [True, True, True],
        }
    )
    corroborate = {"forename": "forenames disagree", "dob": "dates of birth disagree"}

    def run(model):
        return decide(
            pairs,
            UnionFind(nodes, {}),
            IDENTITY.link_at,
            IDENTITY.queue_at,
            corroborate,
            corroborated_at=model.link_at(IDENTITY),
        )

    small = run(_model(REF / 2))
    assert small.links.empty and sorted(small.review["a"]) == ["b|1", "c|1"]
    large = run(big)
    assert large.links[["a", "b"]].values.tolist() == [["c|1", "t|1"]]
    assert large.review[["a", "b"]].values.tolist() == [["b|1", "t|1"]]  # under the level: asked, as before


def test_the_model_keeps_the_population_of_its_prior():
    spec = IDENTITY
    n = 400
    rng = np.random.default_rng(1)
    vectors = pd.DataFrame({c.name: rng.integers(-1, c.levels, n) for c in spec.comparisons})
    pairs = pd.DataFrame({"passes": np.full(n, 0b111, dtype=np.int64)})
    u = {c.name: list(np.full(c.levels, 1.0 / c.levels)) for c in spec.comparisons}
    model = fs.fit(vectors, pairs, spec, u, "t", comparable=12_345_678, iterations=3)
    assert model.comparable == 12_345_678
    again = fs.Model.from_json(model.to_json())
    assert again.comparable == 12_345_678 and again.link_at(spec) == model.link_at(spec)
    stored_before = {k: v for k, v in model.__dict__.items() if k != "comparable"}
    assert fs.Model.from_json(json.dumps(stored_before)).comparable == 0
