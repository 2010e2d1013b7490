"""The clerical review queue (`linkage.cluster.review_queue`): one pair per two persons left apart,
none for persons a later link joined or a reviewer already parted; the same queue whatever order
the pairs come in (the Spark engine's come from many components)."""

from __future__ import annotations

import pandas as pd

from linkage.cluster import review_queue


def _review(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["a", "b", "weight", "why"])


PERSON = {"t|1": "t|1", "t|2": "t|1", "c|1": "c|1", "c|2": "c|1", "b|1": "b|1", "d|1": "d|1", "b|2": "b|2"}


def test_one_pair_per_two_persons_the_highest_weight():
    review = _review(
        [
            ("t|2", "c|2", 2.0, "weight between review and link thresholds"),
            ("t|1", "c|1", 3.5, "weight between review and link thresholds"),
            ("c|2", "t|1", 1.0, "forenames disagree (one person in 90% of such pairs: single-out)"),
            ("b|1", "d|1", 0.5, "weight between review and link thresholds"),
        ]
    )
    q = review_queue(review, PERSON.get)
    assert len(q) == 2
    top = q.iloc[0]
    assert (top["a"], top["b"], top["weight"]) == ("t|1", "c|1", 3.5)
    assert top["why"] == "weight between review and link thresholds (+2 more pairs of these persons)"
    assert q.iloc[1]["why"] == "weight between review and link thresholds"  # alone: its reason as it was


def test_pairs_joined_later_or_parted_by_a_reviewer_are_not_asked():
    review = _review(
        [
            ("t|1", "t|2", 4.0, "forenames disagree (one person in 90% of such pairs: single-out)"),  # one person now
            ("b|1", "b|2", 6.0, "would join two sides of review decision 3 identities"),
            ("b|2", "d|1", 1.0, "would join two deaths identities"),
        ]
    )
    q = review_queue(review, PERSON.get)
    assert q[["a", "b"]].values.tolist() == [["b|2", "d|1"]]


def test_the_same_queue_in_any_order():
    rows = [
        ("t|2", "c|2", 2.0, "x"),
        ("c|1", "t|1", 2.0, "y"),  # a tie in weight: the pair's names decide
        ("b|1", "d|1", 0.5, "z"),
        ("b|2", "d|1", 0.7, "w"),
    ]
    one = review_queue(_review(rows), PERSON.get)
    other = review_queue(_review(rows[::-1]), PERSON.get)
    pd.testing.assert_frame_equal(one, other)
    assert len(one) == 3 and one.iloc[0]["a"] == "c|1"


def test_empty_queue():
    assert review_queue(_review([]), PERSON.get).empty


def test_a_pair_below_the_link_level_that_looks_like_relatives_is_not_asked():
    import numpy as np

    from linkage.cluster import UnionFind, decide

    nodes = np.array(["t|1", "c|1", "b|1", "d|1"], dtype=object)
    pairs = pd.DataFrame(
        {
            "a": ["c|1", "b|1", "c|1"],
            "b": ["t|1", "t|1", "d|1"],
            "weight": [1.0, 0.5, 0.2],
            "forename_agrees": [False, True, True],  # twins' look: everything but the forename
            "dob_agrees": [True, True, False],  # a father's and son's: everything but the birth date
        }
    )
    corroborate = {"forename": "forenames disagree", "dob": "dates of birth disagree"}
    d = decide(pairs, UnionFind(nodes, {}), 4.25, -3.17, corroborate)
    assert d.review[["a", "b"]].values.tolist() == [["b|1", "t|1"]]
    assert d.links.empty
    # the same pairs corroborated all go to review
    agreed = pairs.assign(forename_agrees=True, dob_agrees=True)
    assert len(decide(agreed, UnionFind(nodes, {}), 4.25, -3.17, corroborate).review) == 3


def test_below_the_link_level_review_from_the_queue_level():
    import math

    import numpy as np

    from linkage.cluster import UnionFind, decide
    from linkage.spec import IDENTITY

    def weight(p: float) -> float:
        return math.log2(p / (1 - p))

    nodes = np.array(["t|1", "c|1", "b|1"], dtype=object)
    pairs = pd.DataFrame({"a": ["c|1", "b|1"], "b": ["t|1", "t|1"], "weight": [weight(0.7), weight(0.3)]})
    d = decide(pairs, UnionFind(nodes, {}), IDENTITY.link_at, IDENTITY.queue_at)
    assert d.review[["a", "b"]].values.tolist() == [["c|1", "t|1"]]  # 0.3: two people the likelier, not asked
    assert IDENTITY.review_at < weight(0.3) < IDENTITY.queue_at  # still scored and kept
