"""Decisions that read the persons, not only the node pair (linkage.cluster): key evidence of the
two persons, corroboration across them, relatives' probability learned from their sources.
Small hand-made node pairs, no population: seconds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from linkage.cluster import (
    KEYS_RULE,
    MULTI_OVERLAP,
    RELATIVE_PRIOR_PAIRS,
    SINGLE_AFTER,
    SINGLE_IN,
    SINGLE_LATER,
    SINGLE_TOOK,
    PersonEvidence,
    UnionFind,
    configuration_shares,
    decide,
    node_spans,
    relative_probabilities,
    relatives_through,
)
from linkage.spec import IDENTITY

LINK, REVIEW = IDENTITY.link_at, IDENTITY.review_at
RULES = IDENTITY.corroborate  # forename (twins), dob (a father and son)


def pairs(rows) -> pd.DataFrame:
    """Node pairs: (a, b, weight) with every corroboration flag set, or a dict of overrides."""
    out = []
    for row in rows:
        a, b, w, *flags = row
        d = {"a": min(a, b), "b": max(a, b), "weight": float(w)}
        for c in RULES:
            d[f"{c}_agrees"], d[f"{c}_unseen"] = True, False
        d.update(flags[0] if flags else {})
        out.append(d)
    return pd.DataFrame(out)


def evidence(nodes, dob=None, learned=None, key_weight=-3.0) -> PersonEvidence:
    """Each node one identity (variant i); `dob` maps a node to its date of birth (None: none)."""
    index = {n: i for i, n in enumerate(nodes)}
    born = np.array([np.datetime64((dob or {}).get(n) or "NaT", "D") for n in nodes])

    def levels(comparison, a, b):
        if comparison in ("sex", "postcode"):  # not known: neither for nor against
            return np.full(len(a), -1, dtype=np.int8)
        assert comparison == "dob"
        x, y = born[a], born[b]
        both = ~np.isnat(x) & ~np.isnat(y)
        return np.where(both, np.where(x == y, 4, 0), -1).astype(np.int8)

    return PersonEvidence(
        key_weight={s: key_weight for s in ("treatment", "convictions", "benefits", "deaths")},
        node_variants={n: np.array([i]) for n, i in index.items()},
        levels=levels,
        link_probability=IDENTITY.link_probability,
        review_probability=IDENTITY.review_probability,
        seed=1,
        learned=learned,
    )


def joined(uf: UnionFind, a: str, b: str) -> bool:
    return uf.find(a) == uf.find(b)


def test_a_merge_that_gives_a_person_a_second_key_of_a_source_carries_its_key_weight():
    """Twins each hold a PNC id; a benefits record of one twin's matching the other twin's
    treatment record across sources carries no key, but the persons would hold two PNC ids."""
    nodes = ["treatment|k|t1", "convictions|k|c1", "benefits|k|b2", "convictions|k|c2"]
    node_pairs = pairs(
        [
            ("treatment|k|t1", "convictions|k|c1", 20),
            ("benefits|k|b2", "convictions|k|c2", 20),
            ("benefits|k|b2", "treatment|k|t1", LINK + 1.0),  # above the link level by itself
        ]
    )
    alone = UnionFind(np.array(nodes), {})
    decide(node_pairs, alone, LINK, REVIEW, RULES)
    assert joined(alone, "treatment|k|t1", "convictions|k|c2"), "node pairs alone link it"

    uf = UnionFind(np.array(nodes), {})
    d = decide(node_pairs, uf, LINK, REVIEW, RULES, evidence(nodes))
    assert not joined(uf, "treatment|k|t1", "convictions|k|c2")
    # decided as relatives are: two persons each in two sources, one of them shared, are relatives
    keys = d.relatives.set_index(["rule", "configuration"]).loc[(KEYS_RULE, MULTI_OVERLAP)]
    assert keys["pairs"] == 1 and keys["probability"] == 0.0


def test_a_second_key_within_its_own_source_counts_once():
    """A pair of one source keyed differently already carries that source's key weight."""
    nodes = ["convictions|k|c1", "convictions|k|c2"]
    uf = UnionFind(np.array(nodes), {})
    d = decide(pairs([("convictions|k|c1", "convictions|k|c2", LINK + 0.5)]), uf, LINK, REVIEW, RULES, evidence(nodes))
    assert joined(uf, "convictions|k|c1", "convictions|k|c2") and d.review.empty


def test_a_record_without_a_date_of_birth_does_not_join_a_father_to_his_son():
    """A treatment record with no date of birth agrees with the son (1980) and with the father's
    death registration (1951) alike; the persons show what the record cannot."""
    nodes = ["treatment|k|t", "benefits|k|son", "deaths|k|father"]
    dob = {"benefits|k|son": "1980-09-10", "deaths|k|father": "1951-08-24"}
    unseen = {"dob_unseen": True}
    node_pairs = pairs(
        [("treatment|k|t", "benefits|k|son", 15, unseen), ("treatment|k|t", "deaths|k|father", 14, unseen)]
    )
    uf = UnionFind(np.array(nodes), {})
    decide(node_pairs, uf, LINK, REVIEW, RULES, evidence(nodes, dob, learned={}))
    assert joined(uf, "treatment|k|t", "benefits|k|son")
    assert not joined(uf, "treatment|k|t", "deaths|k|father")

    same_day = {**dob, "deaths|k|father": "1980-09-10"}  # the son's own death: corroborated
    uf = UnionFind(np.array(nodes), {})
    decide(node_pairs, uf, LINK, REVIEW, RULES, evidence(nodes, same_day, learned={}))
    assert joined(uf, "treatment|k|t", "deaths|k|father")


def population(twins_apart: int, aliases: int, others: int = 200):
    """Persons of two sources each (benefits and convictions, linked); `twins_apart` pairs of
    them look like twins (all but the forename); `aliases` more PNC ids alone, each looking like
    one person's twin (a second key under an alias forename)."""
    nodes, rows = [], []
    for i in range(others):
        b, c = f"benefits|k|b{i}", f"convictions|k|c{i}"
        nodes += [b, c]
        rows.append((b, c, 25))
    for t in range(twins_apart):  # person 2t and person 2t+1 are twins
        rows.append((f"benefits|k|b{2 * t}", f"convictions|k|c{2 * t + 1}", 12, {"forename_agrees": False}))
    for k in range(aliases):
        alias, person = f"convictions|k|alias{k}", others - 1 - k
        nodes.append(alias)
        rows.append((alias, f"benefits|k|b{person}", 12, {"forename_agrees": False}))
    return nodes, pairs(rows)


@pytest.mark.parametrize("twins_apart", [0, 30])
def test_relatives_probability_is_learned_from_the_persons_sources(twins_apart):
    """Pairs with everything but the forename in common: where both persons hold records in two
    sources and share one (twins, each with a life of his own) they stay apart; a lone second PNC
    id within a source the person is in is linked when such pairs are rarely relatives in these
    data, and sent to review when relatives are common."""
    nodes, node_pairs = population(twins_apart, aliases=40)
    uf = UnionFind(np.array(nodes), {})
    d = decide(node_pairs, uf, LINK, REVIEW, RULES, evidence(nodes))
    table = d.relatives.set_index("configuration")
    aliases_linked = sum(joined(uf, f"convictions|k|alias{k}", f"benefits|k|b{199 - k}") for k in range(40))
    assert not any(joined(uf, f"benefits|k|b{2 * t}", f"convictions|k|c{2 * t + 1}") for t in range(twins_apart))
    alone = table.loc[SINGLE_IN + "convictions"]
    assert alone["pairs"] == 40
    if twins_apart == 0:
        assert alone["probability"] >= IDENTITY.link_probability
        assert aliases_linked == 40
    else:
        assert table.loc[MULTI_OVERLAP, "probability"] == 0.0
        # 30 twins of persons in two sources: random pairs of these persons meet in
        # single-in:convictions about one time in five as often as in multi-overlap
        assert alone["expected_relatives"] > 2 and alone["probability"] < IDENTITY.link_probability
        assert aliases_linked == 0
        assert d.review["why"].str.contains("one person in").sum() == 40


def test_a_learned_table_is_reused_as_it_stands():
    """A later run (few new pairs) decides by the probabilities learned when the model was
    trained, not by its own handful of pairs."""
    nodes, node_pairs = population(0, aliases=5)
    uf = UnionFind(np.array(nodes), {})
    d = decide(node_pairs, uf, LINK, REVIEW, RULES, evidence(nodes, learned={f"forename|{SINGLE_IN}convictions": 0.5}))
    assert not any(joined(uf, f"convictions|k|alias{k}", f"benefits|k|b{199 - k}") for k in range(5))
    assert len(d.review) == 5 and (d.relatives["probability"] == 0.5).all()


def test_a_configuration_seen_in_one_pair_is_shrunk_towards_its_rule():
    """One father and son, each in two sources of his own (multi-apart), under a rare surname: a
    single pair must not read 'one person in 99%' and link; it takes mostly its rule's estimate
    over the other configurations, which keep theirs mostly."""
    table = pd.DataFrame(
        [("a", "b", 9.0, "dob", "why", "multi-apart")]
        + [(f"c{i}", f"d{i}", 9.0, "dob", "why", SINGLE_IN + "convictions") for i in range(20)]
        + [(f"e{i}", f"f{i}", 9.0, "dob", "why", MULTI_OVERLAP) for i in range(4)],
        columns=["a", "b", "weight", "rule", "why", "configuration"],
    )
    share = {MULTI_OVERLAP: 0.4, "multi-apart": 0.001, SINGLE_IN + "convictions": 0.2}
    counts, probability = relative_probabilities(table, share, evidence([]))
    # relatives: (4 + 0.5) / 0.4 = 11.25 in all; 2.25 expected among the 20, 0.01125 in multi-apart
    pooled = 1 - (2.25 + 0.01125) / 21
    alone = (1 - 0.01125 + RELATIVE_PRIOR_PAIRS * pooled) / (1 + RELATIVE_PRIOR_PAIRS)
    assert probability[("dob", "multi-apart")] == pytest.approx(alone)
    assert 1 - 0.01125 >= IDENTITY.link_probability > probability[("dob", "multi-apart")]
    # a lone key's configuration is shrunk towards its kind's: none of it in another source here, so the rule's
    many = (20 - 2.25 + RELATIVE_PRIOR_PAIRS * pooled) / (20 + RELATIVE_PRIOR_PAIRS)
    assert probability[("dob", SINGLE_IN + "convictions")] == pytest.approx(many)
    assert probability[("dob", MULTI_OVERLAP)] == 0.0
    assert counts["pairs"].sum() == 25


def test_a_lone_keys_configuration_is_shrunk_towards_its_kind_in_time():
    """Lone second keys whose records follow the person's (`single-later`) in convictions and in
    benefits, few of each (a small population): each is shrunk towards the later kind in the
    other source, not towards the twins of `single-in` and `single-out`, and links; the twins'
    configurations stay under the link level."""
    rows = [(f"m{i}", f"n{i}", 9.0, "forename", "why", MULTI_OVERLAP) for i in range(4)]
    rows += [(f"i{i}", f"j{i}", 9.0, "forename", "why", SINGLE_IN + "convictions") for i in range(3)]
    rows += [(f"o{i}", f"p{i}", 9.0, "forename", "why", "single-out") for i in range(4)]
    rows += [(f"c{i}", f"d{i}", 9.0, "forename", "why", SINGLE_LATER + "convictions") for i in range(15)]
    rows += [(f"b{i}", f"e{i}", 9.0, "forename", "why", SINGLE_LATER + "benefits") for i in range(5)]
    table = pd.DataFrame(rows, columns=["a", "b", "weight", "rule", "why", "configuration"])
    share = {MULTI_OVERLAP: 0.4, SINGLE_IN + "convictions": 0.2, "single-out": 0.3}
    share |= {SINGLE_LATER + "convictions": 0.002, SINGLE_LATER + "benefits": 0.001}
    _, probability = relative_probabilities(table, share, evidence([]))
    relatives = (4 + 0.5) / 0.4  # counted in multi-overlap
    expected = {c: relatives * v for c, v in share.items()}
    rule = 1 - (expected[SINGLE_IN + "convictions"] + expected["single-out"] + 0.0225 + 0.01125) / 27
    own, benefits = 1 - 0.0225 / 15, 1 - 0.01125 / 5
    kind = (5 * benefits + RELATIVE_PRIOR_PAIRS * rule) / (5 + RELATIVE_PRIOR_PAIRS)  # the kind's other source
    assert probability[("forename", SINGLE_LATER + "convictions")] == pytest.approx(
        (15 * own + RELATIVE_PRIOR_PAIRS * kind) / (15 + RELATIVE_PRIOR_PAIRS)
    )
    assert (15 * own + RELATIVE_PRIOR_PAIRS * rule) / 20 < IDENTITY.link_probability  # towards the rule: review
    for source in ("convictions", "benefits"):
        assert probability[("forename", SINGLE_LATER + source)] >= IDENTITY.link_probability
    twins = 1 - expected[SINGLE_IN + "convictions"] / 3  # alone of its kind: shrunk towards the rule's
    in_kind = (3 * twins + RELATIVE_PRIOR_PAIRS * rule) / (3 + RELATIVE_PRIOR_PAIRS)
    assert probability[("forename", SINGLE_IN + "convictions")] == pytest.approx(in_kind)
    assert probability[("forename", "single-out")] < IDENTITY.link_probability


def test_configuration_shares_do_not_depend_on_the_order_persons_come_in():
    """The random pairs are drawn from the persons in their roots' order: the Spark engine (its
    persons gathered from many components) and the local engine (its union-find in the order of
    the records read) learn the same relatives' probabilities from the same persons."""
    rng = np.random.default_rng(5)
    roots = np.array([f"{s}|k|{i:03d}" for i, s in enumerate(rng.choice(["benefits", "convictions"], 60))], object)
    mask = rng.integers(1, 8, len(roots))
    size = rng.integers(1, 4, len(roots))
    name = {1: "benefits", 2: "convictions", 4: "treatment"}
    shares = configuration_shares(roots, mask, size, name, seed=1)
    order = rng.permutation(len(roots))
    assert configuration_shares(roots[order], mask[order], size[order], name, seed=1) == shares


def test_a_lone_key_whose_records_all_follow_the_other_persons_is_a_configuration_of_its_own():
    """With record dates, a person of one source whose records there all begin after the other
    person's last record there is `single-later` (a second key is made when a known person comes
    back unrecognised); records that begin after the other's first and end after its last
    (overlapping: the second key took over) are `single-after`; records within the other's, or
    beginning first, stay `single-in`; without dates nothing changes. The random pairs of persons
    measure the same split (the relatives' share of each)."""
    nodes = np.array(
        ["benefits|k|b", "convictions|k|c", "convictions|k|after", "convictions|k|during", "convictions|k|x"]
    )
    nodes = np.append(nodes, ["convictions|k|within", "convictions|k|before"])
    spans = {"benefits|k|b": (0.0, 50.0), "convictions|k|c": (10.0, 100.0)}
    spans |= {"convictions|k|after": (150.0, 200.0), "convictions|k|during": (50.0, 200.0)}
    spans |= {"convictions|k|within": (20.0, 80.0), "convictions|k|before": (0.0, 200.0)}
    uf = UnionFind(nodes, {}, spans)
    uf.union(uf.find("benefits|k|b"), uf.find("convictions|k|c"))
    person = uf.find("convictions|k|c")
    assert uf.span(person) == {"benefits": (0.0, 50.0), "convictions": (10.0, 100.0)}
    assert uf.configuration(person, uf.find("convictions|k|after")) == SINGLE_LATER + "convictions"
    assert uf.configuration(uf.find("convictions|k|after"), person) == SINGLE_LATER + "convictions"
    assert uf.configuration(person, uf.find("convictions|k|during")) == SINGLE_AFTER + "convictions"
    assert uf.configuration(uf.find("convictions|k|during"), person) == SINGLE_AFTER + "convictions"
    assert uf.configuration(person, uf.find("convictions|k|within")) == SINGLE_IN + "convictions"
    assert uf.configuration(person, uf.find("convictions|k|before")) == SINGLE_IN + "convictions"
    assert uf.configuration(person, uf.find("convictions|k|x")) == SINGLE_IN + "convictions"  # no dates
    undated = UnionFind(nodes, {})
    undated.union(undated.find("benefits|k|b"), undated.find("convictions|k|c"))
    assert undated.configuration("benefits|k|b", "convictions|k|after") == SINGLE_IN + "convictions"

    rng = np.random.default_rng(3)
    n = 200
    roots = np.array([f"convictions|k|{i:03d}" for i in range(n)], object)
    mask = np.where(np.arange(n) < n // 2, 3, 2)  # half in benefits and convictions, half in convictions alone
    size = np.where(mask == 3, 2, 1)
    first = rng.uniform(0, 1000, n)
    last = first + rng.uniform(0, 300, n)
    name = {1: "benefits", 2: "convictions"}
    plain = configuration_shares(roots, mask, size, name, seed=1)
    nan = np.full(n, np.nan)
    timed = configuration_shares(
        roots, mask, size, name, seed=1, spans={"convictions": (first, last), "benefits": (nan, nan)}
    )
    later = timed[SINGLE_LATER + "convictions"]
    assert 0 < later < plain[SINGLE_IN + "convictions"]
    after = timed[SINGLE_AFTER + "convictions"]
    assert 0 < after < plain[SINGLE_IN + "convictions"]
    assert later + after + timed[SINGLE_IN + "convictions"] == pytest.approx(plain[SINGLE_IN + "convictions"])


def test_two_lone_keys_of_a_source_are_read_in_time_both_ways_round():
    """Of two persons alike in size (a lone key of a source each, as a person who is in that source
    alone holds under two keys), neither is the smaller: which of the two came second is read from
    their dates whichever is named first, and the random pairs of persons are read so too."""
    nodes = np.array(["convictions|k|first", "convictions|k|then", "convictions|k|took_over", "convictions|k|amid"])
    spans = {"convictions|k|first": (0.0, 100.0), "convictions|k|then": (150.0, 200.0)}
    spans |= {"convictions|k|took_over": (50.0, 300.0), "convictions|k|amid": (20.0, 80.0)}
    uf = UnionFind(nodes, {}, spans)
    first, then = uf.find("convictions|k|first"), uf.find("convictions|k|then")
    assert uf.configuration(first, then) == uf.configuration(then, first) == SINGLE_LATER + "convictions"
    took = uf.find("convictions|k|took_over")
    assert uf.configuration(first, took) == uf.configuration(took, first) == SINGLE_AFTER + "convictions"
    amid = uf.find("convictions|k|amid")
    assert uf.configuration(first, amid) == uf.configuration(amid, first) == SINGLE_IN + "convictions"
    # a person of two nodes is the larger: a lone key before it is not its second key
    uf.union(uf.find("convictions|k|then"), uf.find("convictions|k|took_over"))
    assert uf.configuration(first, uf.find("convictions|k|then")) == SINGLE_IN + "convictions"

    n = 100  # lone keys one after another in time: every random pair is one later than the other
    roots = np.array([f"convictions|k|{i:03d}" for i in range(n)], object)
    day = np.arange(n) * 10.0
    shares = configuration_shares(
        roots, np.full(n, 1), np.ones(n, int), {1: "convictions"}, seed=1, spans={"convictions": (day, day + 5)}
    )
    assert shares == {SINGLE_LATER + "convictions": 1.0}


def test_no_person_has_records_after_his_death():
    """A father's death registration and his namesake son's records (the son's date of birth
    missing, or years out) look like one person to the identities; a son's treatment started
    after the father died cannot be his. Records all before the death may be his; the refused
    pair goes to review; without record dates nothing is read."""
    nodes = np.array(["deaths|k|father", "treatment|k|son", "benefits|k|before"])
    spans = {"deaths|k|father": (100.0, 100.0), "treatment|k|son": (50.0, 150.0), "benefits|k|before": (20.0, 90.0)}
    node_pairs = pairs([("deaths|k|father", "treatment|k|son", 15), ("benefits|k|before", "deaths|k|father", 14)])
    uf = UnionFind(nodes, {}, spans)
    d = decide(node_pairs, uf, LINK, REVIEW, RULES, evidence(list(nodes), learned={}))
    assert not joined(uf, "deaths|k|father", "treatment|k|son")
    assert joined(uf, "deaths|k|father", "benefits|k|before")
    assert d.refused == 1 and list(d.review["why"]) == ["would join records after a death"]

    # the son's records joined first: the death cannot join the person either way round
    uf = UnionFind(nodes, {}, spans)
    uf.union(uf.find("treatment|k|son"), uf.find("benefits|k|before"))
    decide(pairs([("benefits|k|before", "deaths|k|father", 14)]), uf, LINK, REVIEW, RULES, evidence(list(nodes)))
    assert not joined(uf, "deaths|k|father", "benefits|k|before")

    undated = UnionFind(nodes, {})
    decide(node_pairs, undated, LINK, REVIEW, RULES, evidence(list(nodes), learned={}))
    assert joined(undated, "deaths|k|father", "treatment|k|son")


def dated(records: list[tuple[str, float]]) -> UnionFind:
    """A union-find over the nodes of (node, day) records, with their days (`node_spans`)."""
    r = pd.DataFrame(records, columns=["node", "record_day"])
    r["variant"] = np.arange(len(r))
    return UnionFind(pd.unique(r["node"]), {}, node_spans(r))


def test_a_lone_key_that_took_over_is_a_configuration_of_its_own():
    """A lone key overlapping the other person's records, beginning later and ending later
    (`single-after`), that holds most of the two persons' records there since its first is
    `single-took`: a second key, once made, is mostly used. One whose records go on side by side
    with the other's as many (two people's, twins') stays `single-after`; a person of two nodes is
    not a key. The random pairs of persons measure the same split."""
    first = [("convictions|k|first", d) for d in (0.0, 10.0, 20.0, 30.0, 60.0)]
    took = [("convictions|k|took", d) for d in (40.0, 50.0, 70.0, 80.0)]
    beside = [("convictions|k|beside", d) for d in (15.0, 45.0, 90.0)]
    uf = dated(first + took + beside)
    person, took, beside = (
        uf.find("convictions|k|first"),
        uf.find("convictions|k|took"),
        uf.find("convictions|k|beside"),
    )
    assert uf.configuration(person, took) == uf.configuration(took, person) == SINGLE_TOOK + "convictions"
    # since its first (day 15) the other holds 3 records (20, 30, 60), as many as its own: not taken over
    assert uf.configuration(person, beside) == SINGLE_AFTER + "convictions"
    undated = UnionFind(
        np.array(["convictions|k|first", "convictions|k|took"]),
        {},
        {"convictions|k|first": (0.0, 60.0), "convictions|k|took": (40.0, 80.0)},
    )
    assert undated.configuration("convictions|k|first", "convictions|k|took") == SINGLE_AFTER + "convictions"

    rng = np.random.default_rng(4)
    n = 300
    roots = np.array([f"convictions|k|{i:03d}" for i in range(n)], object)
    days = [np.sort(rng.uniform(0, 1000, rng.integers(1, 8))) for _ in range(n)]
    spans = {"convictions": (np.array([d[0] for d in days]), np.array([d[-1] for d in days]))}
    name, mask, size = {1: "convictions"}, np.ones(n, int), np.ones(n, int)
    plain = configuration_shares(roots, mask, size, name, seed=1, spans=spans)
    split = configuration_shares(roots, mask, size, name, seed=1, spans=spans, days=lambda i, s: days[i])
    assert 0 < split[SINGLE_TOOK + "convictions"] < plain[SINGLE_AFTER + "convictions"]
    assert split[SINGLE_TOOK + "convictions"] + split[SINGLE_AFTER + "convictions"] == pytest.approx(
        plain[SINGLE_AFTER + "convictions"]
    )
    # by hand: the pairs read as the union-find reads them
    uf = dated([(r, d) for r, ds in zip(roots, days, strict=True) for d in ds])
    rng = np.random.default_rng(9)
    for i, j in rng.integers(0, n, (200, 2)):
        if i != j:
            config = uf.configuration(roots[i], roots[j])
            assert config == uf.configuration(roots[j], roots[i])
    sizes = configuration_shares(roots, mask, np.full(n, 2), name, seed=1, spans=spans, days=lambda i, s: days[i])
    assert SINGLE_TOOK + "convictions" not in sizes  # persons of two nodes: no lone key to take over


def test_relatives_at_two_addresses_at_one_time_are_not_linked():
    """A pair that looks like relatives, in a configuration where one person is likely enough to
    link, is sent to review when the two persons' records, in date order, put them at two
    addresses at one time (the districts go back and forth: twins, one of whom moved), or when
    they are of two sexes (a brother and a sister); a second key whose records follow the
    person's one move links."""
    records = [("benefits|k|b", 0.0, "AA1"), ("convictions|k|c", 10.0, "AA1"), ("convictions|k|c", 50.0, "BB2")]
    records += [("convictions|k|c", 90.0, "BB2"), ("convictions|k|c", 95.0, "BB2")]
    records += [("convictions|k|x", 60.0, "AA1"), ("convictions|k|x", 80.0, "AA1"), ("convictions|k|x", 99.0, "AA1")]
    records += [("convictions|k|y", 60.0, "BB2"), ("convictions|k|y", 80.0, None), ("convictions|k|y", 99.0, "BB2")]
    records += [("convictions|k|z", 60.0, "BB2"), ("convictions|k|z", 80.0, "BB2"), ("convictions|k|z", 99.0, "BB2")]
    r = pd.DataFrame(records, columns=["node", "record_day", "district"])
    r["variant"] = np.arange(len(r))
    district = r["district"].to_numpy(dtype=object)
    sex = np.where(r["node"] == "convictions|k|z", "F", "M").astype(object)  # z: a sister at his address
    nodes = list(pd.unique(r["node"]))

    def levels(comparison, a, b):
        x, y = (district, district) if comparison == "postcode" else (sex, sex)
        x, y = x[a], y[b]
        known = pd.notna(x) & pd.notna(y)
        return np.where(known, np.where(x == y, 1, 0), -1).astype(np.int8)

    learned = {f"forename|{SINGLE_TOOK}convictions": 0.99}
    held = {n: np.flatnonzero(r["node"].to_numpy() == n) for n in nodes}  # each node's identities
    persons = PersonEvidence({}, held, levels, IDENTITY.link_probability, IDENTITY.review_probability, 1, learned)
    for lone, apart in (
        ("convictions|k|x", "two addresses"),
        ("convictions|k|y", None),
        ("convictions|k|z", "two sexes"),
    ):
        uf = UnionFind(np.array(nodes), {}, node_spans(r))
        node_pairs = pairs(
            [("benefits|k|b", "convictions|k|c", 20.0), (lone, "convictions|k|c", 12.0, {"forename_agrees": False})]
        )
        d = decide(node_pairs, uf, LINK, REVIEW, RULES, persons)
        assert list(d.relatives["configuration"]) == [SINGLE_TOOK + "convictions"]
        assert joined(uf, lone, "convictions|k|c") is (apart is None)
        assert d.review["why"].str.contains(apart or "two ").sum() == int(apart is not None)


def test_a_configurations_probability_is_that_of_the_pairs_not_apart():
    """Pairs apart (two sexes, two addresses at one time) are relatives never linked by their
    configuration: its own estimate is that of the pairs left, with the relatives expected there
    less those caught. A lone key that took over, 40 pairs of which 3 twins are caught at two
    addresses and 4 relatives expected: 1 relative left among 37 pairs (0.973; 0.90 counting the
    caught twins), shrunk towards a prior over all pairs, as before, and linked. A configuration
    caught more often than its relatives expected holds more than expected: nothing is taken off."""
    rows = [(f"m{i}", f"n{i}", 9.0, "forename", "why", MULTI_OVERLAP, i < 8) for i in range(10)]
    rows += [(f"c{i}", f"d{i}", 9.0, "forename", "why", SINGLE_TOOK + "convictions", i < 3) for i in range(40)]
    rows += [(f"b{i}", f"e{i}", 9.0, "forename", "why", SINGLE_IN + "benefits", i < 9) for i in range(10)]
    table = pd.DataFrame(rows, columns=["a", "b", "weight", "rule", "why", "configuration", "apart"])
    share = {MULTI_OVERLAP: 0.5, SINGLE_TOOK + "convictions": 4.0 / 21, SINGLE_IN + "benefits": 2.0 / 21}
    counts, probability = relative_probabilities(table, share, evidence([]))
    through = counts.set_index("configuration")["through"]
    assert through[SINGLE_TOOK + "convictions"] == pytest.approx(1.0)
    assert through[SINGLE_IN + "benefits"] == pytest.approx(2.0)  # 9 caught of 2 expected: 2, not 2 - 9
    rule = 1 - (4.0 + 2.0) / 50  # the prior: over all the other configurations' pairs, those apart too
    took = 1 - 1.0 / 37
    assert probability[("forename", SINGLE_TOOK + "convictions")] == pytest.approx(
        (37 * took + RELATIVE_PRIOR_PAIRS * rule) / (37 + RELATIVE_PRIOR_PAIRS)
    )
    assert probability[("forename", SINGLE_TOOK + "convictions")] >= IDENTITY.link_probability
    assert (40 * (1 - 4.0 / 40) + RELATIVE_PRIOR_PAIRS * rule) / 45 < IDENTITY.link_probability  # all pairs: review
    # its one pair let through: 2 relatives expected there, none to link (own 0), the prior's
    in_benefits = probability[("forename", SINGLE_IN + "benefits")]
    assert in_benefits == pytest.approx(RELATIVE_PRIOR_PAIRS * rule / (1 + RELATIVE_PRIOR_PAIRS))
    assert in_benefits < IDENTITY.link_probability
    assert probability[("forename", MULTI_OVERLAP)] == 0.0
    assert relatives_through([4.0, 4.0, 2.0], [0.0, 4.0, 3.0]) == pytest.approx([4.0, 0.0, 2.0])
