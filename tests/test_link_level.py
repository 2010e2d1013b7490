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
from linkage.cluster import KEYS_RULE, MULTI_OVERLAP, SINGLE_IN, UnionFind, decide
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


def _second_pnc_case(weight_above_level: float, forename_agrees: bool):
    """One person with a treatment record and a PNC id (linked), and a second PNC id of his (a
    duplicate nominal record, extracts.md §2) whose best pair with the first scores
    `weight_above_level` over a 10x-reference population's link level: below the spec's."""
    from tests.test_linkage_persons import evidence, pairs

    big = _model(10 * REF)
    level = big.link_at(IDENTITY)
    nodes = ["treatment|k|t1", "convictions|k|c1", "convictions|k|c2"]
    node_pairs = pairs(
        [
            ("treatment|k|t1", "convictions|k|c1", 20),
            ("convictions|k|c1", "convictions|k|c2", level + weight_above_level, {"forename_agrees": forename_agrees}),
        ]
    )
    return big, level, nodes, node_pairs, evidence


def _decide(node_pairs, nodes, persons, model, defer=False, learned=None):
    uf = UnionFind(np.array(nodes, dtype=object), {})
    d = decide(
        node_pairs,
        uf,
        IDENTITY.link_at,
        IDENTITY.queue_at,
        IDENTITY.corroborate,
        persons,
        defer,
        learned,
        corroborated_at=model.link_at(IDENTITY),
    )
    return uf, d


@pytest.mark.parametrize("probability, linked, asked", [(0.97, True, False), (0.6, False, True), (0.0, False, False)])
def test_a_second_pnc_id_under_an_alias_between_the_levels_is_decided_by_its_persons(probability, linked, asked):
    """Past the reference size a second PNC id under an alias forename (twins' look) whose pair
    reaches the reference population's link level is decided by its persons' configuration, as at
    the reference size (link, review, or leave apart), where before it fell out of the relatives'
    rule and was left apart without being asked."""
    big, _, nodes, node_pairs, evidence = _second_pnc_case(0.5, forename_agrees=False)
    learned = {f"forename|{SINGLE_IN}convictions": probability}
    uf, d = _decide(node_pairs, nodes, evidence(nodes, learned=learned), big)
    assert (uf.find("convictions|k|c2") == uf.find("treatment|k|t1")) is linked
    assert (not d.review.empty) is asked
    if asked:
        assert d.review["why"].str.contains("between the reference and the spec's link levels").all()
    # under the reference level, or in a population of the reference size, as before: not a case
    for model, above in ((big, -0.5), (_model(REF / 2), 0.5)):
        _, _, nodes, node_pairs, evidence = _second_pnc_case(above, forename_agrees=False)
        uf, d = _decide(node_pairs, nodes, evidence(nodes, learned=learned), model)
        assert uf.find("convictions|k|c2") != uf.find("treatment|k|t1") and d.review.empty
    # a configuration never seen from the spec's level up: left apart, as before
    _, _, nodes, node_pairs, evidence = _second_pnc_case(0.5, forename_agrees=False)
    uf, d = _decide(node_pairs, nodes, evidence(nodes, learned={}), big)
    assert uf.find("convictions|k|c2") != uf.find("treatment|k|t1") and d.review.empty


def _twins_and_aliases(twins_in_band: int, aliases: int = 40, twins: int = 30):
    """Persons of two sources each (benefits and convictions, linked); `twins` pairs of them look
    like twins (all but the forename) over the spec's level and `twins_in_band` more between the
    levels; `aliases` lone second PNC ids under an alias forename over the spec's level, and as
    many between the levels."""
    from tests.test_linkage_persons import pairs

    level = _model(10 * REF).link_at(IDENTITY)
    nodes, rows, others = [], [], 400
    for i in range(others):
        b, c = f"benefits|k|b{i}", f"convictions|k|c{i}"
        nodes += [b, c]
        rows.append((b, c, 25))
    off = {"forename_agrees": False}
    for t in range(twins + twins_in_band):  # person 2t and person 2t+1 are twins
        w = IDENTITY.link_at + 2 if t < twins else level + 0.5
        rows.append((f"benefits|k|b{2 * t}", f"convictions|k|c{2 * t + 1}", w, off))
    for k in range(2 * aliases):
        alias, person = f"convictions|k|alias{k}", others - 1 - k
        nodes.append(alias)
        rows.append((alias, f"benefits|k|b{person}", IDENTITY.link_at + 2 if k < aliases else level + 0.5, off))
    return nodes, pairs(rows)


def test_twins_between_the_levels_stay_apart_and_do_not_move_what_is_learned():
    """Twins between the levels are decided by their configuration (both persons in two sources,
    sharing one: relatives) and stay apart, unasked; the configurations' probabilities are those
    learned from the spec's link level up, the band's cases not counted (counted, the band's twins
    would lower every lone key's probability: a falling prior brings twins under the spec's level
    in every configuration, while a second key's pair is mostly over it)."""
    from tests.test_linkage_persons import evidence

    big = _model(10 * REF)
    tables = []
    for in_band in (0, 30):
        nodes, node_pairs = _twins_and_aliases(in_band)
        uf, d = _decide(node_pairs, nodes, evidence(nodes), big)
        assert not any(uf.find(f"benefits|k|b{2 * t}") == uf.find(f"convictions|k|c{2 * t + 1}") for t in range(60))
        asked = {frozenset(x) for x in d.review[["a", "b"]].itertuples(index=False)}
        assert not any(frozenset((f"benefits|k|b{2 * t}", f"convictions|k|c{2 * t + 1}")) in asked for t in range(60))
        tables.append(d.relatives)
    pd.testing.assert_frame_equal(tables[0], tables[1])
    assert tables[1].set_index("configuration").loc[MULTI_OVERLAP, "pairs"] == 30


def test_keys_held_twice_between_the_levels_count_as_at_the_reference_size():
    """A second PNC id's treatment-record pair (no key of its own) between the levels: its persons
    would hold two PNC ids. With their weight it still reaches the reference level: linked, as a
    pair reaching the spec's level with it is; under it: decided by its configuration (`keys`)."""
    from tests.test_linkage_persons import evidence, pairs

    big = _model(10 * REF)
    level = big.link_at(IDENTITY)
    nodes = ["treatment|k|t1", "convictions|k|c1", "convictions|k|c2"]
    for key_weight, linked in ((-0.5, True), (-3.0, False)):
        node_pairs = pairs(
            [("treatment|k|t1", "convictions|k|c1", 20), ("convictions|k|c2", "treatment|k|t1", level + 1.0)]
        )
        persons = evidence(nodes, learned={f"{KEYS_RULE}|{SINGLE_IN}convictions": 0.5}, key_weight=key_weight)
        uf, d = _decide(node_pairs, nodes, persons, big)
        assert (uf.find("convictions|k|c2") == uf.find("treatment|k|t1")) is linked
        if not linked:  # one person in 50% of such pairs: asked
            assert d.review["why"].str.contains("other keys of convictions").tolist() == [True]


@pytest.mark.parametrize("learned", [{}, {f"{KEYS_RULE}|{SINGLE_IN}convictions": 0.01}])
@pytest.mark.parametrize(("key_weight", "reviewed"), [(-1.5, True), (-3.0, False)])
def test_keys_held_twice_between_the_levels_unknown_or_unlikely_are_decided_as_before(learned, key_weight, reviewed):
    """A `keys` case between the levels whose configuration was not learned from the spec's level
    up, or gives one person under the review probability, is decided as before issue 14: it passes
    the corroboration rules, so it is reviewed if its weight with the keys' reaches the review
    level (at key weight -1.5), else left apart (at -3.0); never linked."""
    from tests.test_linkage_persons import evidence, pairs

    big = _model(10 * REF)
    level = big.link_at(IDENTITY)
    nodes = ["treatment|k|t1", "convictions|k|c1", "convictions|k|c2"]
    node_pairs = pairs(
        [("treatment|k|t1", "convictions|k|c1", 20), ("convictions|k|c2", "treatment|k|t1", level + 1.0)]
    )
    assert level + 1.0 + key_weight < level  # a `keys` case: under the reference level with the keys
    assert (level + 1.0 + key_weight >= IDENTITY.queue_at) is reviewed
    uf, d = _decide(node_pairs, nodes, evidence(nodes, learned=learned, key_weight=key_weight), big)
    assert uf.find("convictions|k|c2") != uf.find("treatment|k|t1")
    expected = [["convictions|k|c2", "treatment|k|t1", "weight between review and link thresholds"]]
    assert d.review[["a", "b", "why"]].values.tolist() == (expected if reviewed else [])


def test_a_part_deferring_returns_the_bands_cases_marked_and_they_are_not_learned_from():
    """linkage.spark decides a part again, with the probabilities learned over every part, when
    it returns cases: the band's are returned marked (`band:`), and `relative_probabilities`
    leaves them out; decided again with the table, the second PNC id links."""
    from linkage.cluster import BAND_CASE, relative_probabilities

    big, _, nodes, node_pairs, evidence = _second_pnc_case(0.5, forename_agrees=False)
    persons = evidence(nodes)
    uf, d = _decide(node_pairs, nodes, persons, big, defer=True)
    assert d.links[["a", "b"]].values.tolist() == [["convictions|k|c1", "treatment|k|t1"]]
    assert d.cases["rule"].tolist() == [BAND_CASE + "forename"]
    counts, probability = relative_probabilities(d.cases, {MULTI_OVERLAP: 0.5}, persons)
    assert counts.empty and probability == {}
    learned = (counts, {("forename", SINGLE_IN + "convictions"): 0.99})
    uf, d = _decide(node_pairs, nodes, persons, big, learned=learned)
    assert uf.find("convictions|k|c2") == uf.find("treatment|k|t1")
