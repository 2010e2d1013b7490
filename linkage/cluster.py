"""From scored node pairs to persons: node pairs in descending weight, merged unless a rule of life
forbids it (a person dies once, and has no record after his death: `lived_on`), a clerical
reviewer has said the two are different people, or what the two *persons* hold speaks against it.
Two different source keys are evidence (the `key` comparison), not a rule: every source holds
duplicate person records (extracts.md §2).

A node pair is judged on its two nodes; a merge joins two persons. With identity data
(`PersonEvidence`), the decision looks at the persons as wholes:

- **Keys.** A merge that gives the person two keys of a source is that source's "keyed
  differently" evidence, once per such source, whichever pair carried the merge: twins, or a
  father and son, each hold keys of their own in every source they are in. A pair that links by
  itself but not with that evidence is decided as relatives are (rule `keys`, below): the alias
  that keeps such a pair from being exact lives on the second key, so the key's weight, learned
  over all of a source's pairs, would count it twice.
- **Corroboration across the persons.** A node with no date of birth (or forename) at all agrees
  vacuously with anyone; the persons it would join are compared instead (a father's death
  registration and his son's treatment episodes meet through a treatment record without a date
  of birth).
- **Relatives, learned.** A pair with everything in common but the forename (twins) or the date
  of birth (a father and a son of one name) is, to the comparisons, a second key under an alias.
  What tells them apart is the persons: a relative is a person of his own, with records in the
  sources he is in; a second key is one node within a source the person is already in. How
  often each configuration of the two persons' sources holds relatives is estimated from the
  data (`relatives`), and the pair is linked when that probability reaches the link level. A
  configuration seen in few pairs is shrunk towards its kind's estimate in the other sources, and
  that towards its rule's (`RELATIVE_PRIOR_PAIRS`). A lone key that took over from the other
  person's (`took_over`) is a configuration of its own (`SINGLE_TOOK`).
- **One address at a time.** Such a pair is not linked by its configuration's probability when the
  two persons' records, in date order, put them at two addresses at one time
  (`PersonEvidence.two_addresses`: relatives, one of whom moved), or of two sexes
  (`PersonEvidence.two_people`). Those pairs are relatives caught: a configuration's own estimate
  is over the pairs left, its relatives expected less those caught (`relatives_through`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

MULTI_OVERLAP = "multi-overlap"  # the smaller person spans two sources or more, and shares one with the other
MULTI_APART = "multi-apart"
SINGLE_OUT = "single-out"  # the smaller person is one source the other is not in
SINGLE_IN = "single-in:"  # + source: the smaller person is one source the other is in too
# + source: as SINGLE_IN, and the smaller person's records there all begin after the other's last
# record there (with record dates): a second key is made when a known person comes back and is not
# recognised, so one person's second key follows the first in time; two people's records interleave
# as two random persons' do.
SINGLE_LATER = "single-later:"
# + source: as SINGLE_IN, and the smaller person's records there begin after the other's first and
# end after the other's last, overlapping them (not SINGLE_LATER): the second key took over from the
# first, as a duplicate record does once made (the client's new provider, the permanent NINo after
# the temporary one, the nominal record a later arrest was filed under), while the first key's
# records may go on for a while. Two people's records fall so as two random persons' do.
SINGLE_AFTER = "single-after:"
# + source: as SINGLE_AFTER, the smaller person one node (a key), and of the two persons' records
# there since its first, it holds most: it took over. A second key is made when a known person comes
# back unrecognised and is then mostly used (the first key's records after it are few), while two
# people's records - twins' too - go on side by side as two random persons' do (`took_over`).
SINGLE_TOOK = "single-took:"
RELATIVE_SAMPLE = 100_000  # random pairs of persons for the configurations' shares
KEYS_RULE = "keys"  # relatives' rule of a pair that links but for the keys its persons hold
# a relatives' case between the reference population's link level and the spec's, marked so in the
# cases a part returns (`decide`'s `defer`): decided by the configurations' probabilities, not learned from
BAND_CASE = "band:"
RELATIVE_PRIOR_PAIRS = 5  # pseudo-pairs of a configuration at its rule's probability (shrinkage)


@dataclass
class Decisions:
    links: pd.DataFrame  # node pairs accepted: a, b, weight
    review: pd.DataFrame  # node pairs for clerical review: a, b, weight, why
    refused: int = 0
    # relatives learned: rule, configuration, pairs, expected relatives, probability of one person
    relatives: pd.DataFrame | None = None
    # with `defer`: the pairs left to the relatives' probabilities (`relative_cases`), undecided
    cases: pd.DataFrame | None = None


def node_source(node: str) -> str:
    return node.split("|", 1)[0]


_NONE: dict = {}  # a root holding no constrained key


class UnionFind:
    """Clusters of nodes (persons) with, per cluster, the constrained keys it holds, and (for
    persons of more than one node, so that a million singletons cost nothing) its nodes, the
    sources it is in and the sources in which it holds a keyed node, as bit masks."""

    def __init__(
        self, nodes: np.ndarray, keys: dict[str, frozenset], spans: dict | None = None, days: dict | None = None
    ) -> None:
        # Only nodes joined to another are held (node -> its parent): a node without an entry is
        # its own root, so a million singletons cost nothing beyond `nodes` itself.
        self.nodes = nodes
        self.parent: dict = {}
        # node -> (first, last) day of its records (`node_spans`); None: no record dates
        self.spans = spans
        # node -> its records' days, ascending (`NodeSpans.days`, or given); None: not known
        self.node_days = days if days is not None else getattr(spans, "days", None)
        self._spans: dict[str, dict] = {}  # root -> {source: (first, last)}, persons of several nodes
        # root -> {source: set of unique keys}, only for the roots holding some (none: no entry)
        self.keys = {n: dict(v) for n, v in keys.items() if v}
        self.bits: dict[str, int] = {}  # source -> its bit, as sources are met
        self._members: dict[str, list] = {}
        self._masks: dict[str, tuple[int, int]] = {}  # (sources, keyed sources)

    def find(self, x):
        parent = self.parent
        root = x
        while root in parent:
            root = parent[root]
        while x != root:
            parent[x], x = root, parent[x]
        return root

    def conflict(self, ra, rb) -> str | None:
        ka, kb = self.keys.get(ra, _NONE), self.keys.get(rb, _NONE)
        for source in set(ka) & set(kb):
            if ka[source] != kb[source]:
                return f"two {source} identities"
        return None

    def union(self, ra, rb) -> None:
        keep, gone = (ra, rb) if ra <= rb else (rb, ra)
        (sk, kk), (sg, kg) = self.masks(keep), self.masks(gone)
        moved, kept = self._members.pop(gone, [gone]), self._members.pop(keep, [keep])
        if len(moved) > len(kept):
            moved, kept = kept, moved
        kept.extend(moved)
        self._members[keep] = kept
        self._masks.pop(gone, None)
        self._masks[keep] = (sk | sg, kk | kg)
        self.parent[gone] = keep
        if self.spans is not None:
            merged = dict(self.span(keep))
            for source, (first, last) in self.span(gone).items():
                f0, l0 = merged.get(source, (first, last))
                merged[source] = (min(f0, first), max(l0, last))
            self._spans.pop(gone, None)
            self._spans[keep] = merged
        moved_keys = self.keys.pop(gone, None)
        if moved_keys:
            kept_keys = self.keys.setdefault(keep, {})
            for source, ids in moved_keys.items():
                kept_keys[source] = kept_keys.get(source, frozenset()) | ids

    def bit(self, source: str) -> int:
        return self.bits.setdefault(source, 1 << len(self.bits))

    def masks(self, root) -> tuple[int, int]:
        """(sources, sources with a keyed node) of a person, as bit masks."""
        if root in self._masks:
            return self._masks[root]
        b = self.bit(node_source(root))
        return b, (b if "|k|" in root else 0)

    def span(self, root) -> dict:
        """{source: (first, last) day of the person's records there} (empty without dates)."""
        if root in self._spans:
            return self._spans[root]
        if self.spans is None or root not in self.spans:
            return {}
        return {node_source(root): self.spans[root]}

    def members(self, root) -> list:
        return self._members.get(root, [root])

    def dated(self, root) -> tuple[np.ndarray, np.ndarray] | None:
        """(days, variants) of all the person's dated records, by day; None where not known."""
        if self.node_days is None or getattr(self.node_days, "variants", None) is None:
            return None
        held = [x for x in (self.node_days.dated(n) for n in self.members(root)) if x is not None]
        if not held:
            return np.empty(0), np.empty(0, dtype=np.int64)
        days, variants = np.concatenate([d for d, _ in held]), np.concatenate([v for _, v in held])
        order = np.argsort(days, kind="stable")
        return days[order], variants[order]

    def days(self, root, source: str) -> np.ndarray | None:
        """The days of the person's records in `source`, ascending (None: not known)."""
        if self.node_days is None:
            return None
        held = [self.node_days[n] for n in self.members(root) if node_source(n) == source and n in self.node_days]
        return np.sort(np.concatenate(held)) if held else np.empty(0)

    def names(self, mask: int) -> list[str]:
        return sorted(s for s, b in self.bits.items() if mask & b)

    def roots(self) -> list:
        parent = self.parent
        return [n for n in self.nodes if n not in parent]

    def configuration(self, ra, rb) -> str:
        """How the sources of two persons meet: the smaller (fewer sources, then fewer nodes) is
        one source or more, within the other's sources or not. Of two persons alike in both (two
        lone keys of a source), neither is the smaller: the time order is read both ways round
        (`in_time`)."""
        sa, sb = self.masks(ra)[0], self.masks(rb)[0]
        size_a = (sa.bit_count(), len(self.members(ra)))
        size_b = (sb.bit_count(), len(self.members(rb)))
        if size_a > size_b:
            sa, sb, ra, rb = sb, sa, rb, ra
        if sa.bit_count() >= 2:
            return MULTI_OVERLAP if sa & sb else MULTI_APART
        if not sa & sb:
            return SINGLE_OUT
        source = self.names(sa)[0]
        small, big = self.span(ra).get(source), self.span(rb).get(source)
        order = in_time(small, big)
        if order == SINGLE_IN and size_a == size_b:
            order = in_time(big, small)
            ra, rb = rb, ra
        lone = order == SINGLE_AFTER and len(self.members(ra)) == 1  # (ra: the later of the two)
        if lone and took_over(self.days(ra, source), self.days(rb, source)):
            order = SINGLE_TOOK
        return order + source


def in_time(small: tuple | None, big: tuple | None) -> str:
    """`SINGLE_LATER`, `SINGLE_AFTER` or `SINGLE_IN`: how the smaller person's (first, last) day in
    a source falls against the other's. Which of one person's two keys the person's other records
    joined is not fixed, but a second key follows the first: of two lone keys of a source alike
    in size, either may be the second, so `configuration` and `configuration_shares` read such a
    pair both ways round (at most one way can be later or after)."""
    if small is None or big is None:
        return SINGLE_IN
    if small[0] > big[1]:
        return SINGLE_LATER
    if small[0] > big[0] and small[1] > big[1]:
        return SINGLE_AFTER
    return SINGLE_IN


def took_over(small: np.ndarray | None, big: np.ndarray | None) -> bool:
    """Whether a key whose records there begin after the other person's first and end after his
    last (`SINGLE_AFTER`; `small`, `big`: the two persons' record days in the source, ascending)
    holds most of the two persons' records there since its first: the other's records from its
    first day on are fewer than its own. A second key is mostly used once made (the first key's
    records after it are the few filed under the old one), while two people's records go on side
    by side. Without the records' days (None), no."""
    if small is None or big is None or len(small) == 0:
        return False
    after = len(big) - int(np.searchsorted(big, small[0], side="left"))
    return after < len(small)


@dataclass
class PersonEvidence:
    """What a decision may read beyond its node pair (identity data; FEBRL has none)."""

    key_weight: dict[str, float]  # weight of "keyed differently" per source
    node_variants: dict[str, np.ndarray]  # each node's variant positions
    levels: Callable[[str, np.ndarray, np.ndarray], np.ndarray]  # one comparison's levels of variant pairs
    link_probability: float
    review_probability: float
    seed: int = 0
    # learned earlier ("rule|configuration" -> probability); None: learn from this run's pairs
    learned: dict[str, float] | None = None
    comparisons: tuple[str, ...] = ("postcode", "sex")  # those `levels` can give (`two_people`)

    def key_evidence(self, uf: UnionFind, ra, rb, own: str | None) -> tuple[float, list[str]]:
        """The weight of the keys the merge would give the person twice (the pair's own source,
        already in its weight, aside), and those sources."""
        both = uf.masks(ra)[1] & uf.masks(rb)[1] & ~(uf.bit(own) if own else 0)
        if not both:
            return 0.0, []
        names = uf.names(both)
        return float(sum(self.key_weight.get(s, 0.0) for s in names)), names

    def two_people(self, uf: UnionFind, ra, rb) -> str | None:
        """What in the two persons' records says they are two people whatever their configuration:
        two sexes (every record of one against every record of the other, where both are known:
        twins may be a brother and a sister), or two addresses at one time (`two_addresses`)."""
        if "sex" in self.comparisons and not self.corroborated("sex", uf, ra, rb):
            return "two sexes"
        if self.two_addresses(uf, ra, rb):
            return "two addresses at one time"
        return None

    def two_addresses(self, uf: UnionFind, ra, rb) -> bool:
        """Whether the two persons' records, in date order, put them at two addresses at one time
        (`moves`): merged, the postcode district changes twice or more, and more often than in
        either person alone. A person lives at one address at a time and his records, under
        whichever key, follow his moves; twins' and a father's and son's records (one district at
        birth, moves of their own) go back and forth between their districts. Without the records'
        days and identities, or a postcode comparison, no."""
        a, b = uf.dated(ra), uf.dated(rb)
        if a is None or b is None or "postcode" not in self.comparisons:
            return False
        order = np.argsort(np.concatenate([a[0], b[0]]), kind="stable")
        both = self.moves(np.concatenate([a[1], b[1]])[order])
        return both >= 2 and both > max(self.moves(a[1]), self.moves(b[1]))

    def moves(self, variants: np.ndarray) -> int:
        """How often the postcode district changes from one record to the next (`variants`: the
        records' identities in date order; records without a district left out)."""
        variants = np.asarray(variants, dtype=np.int64)
        held = variants[self.levels("postcode", variants, variants) >= 0]
        if len(held) < 2:
            return 0
        return int((self.levels("postcode", held[:-1], held[1:]) == 0).sum())

    def corroborated(self, comparison: str, uf: UnionFind, ra, rb) -> bool:
        """Some agreement (level >= 1) between any identity of one person and any of the other,
        or no pair with both values."""
        va = np.concatenate([self.node_variants[n] for n in uf.members(ra)])
        vb = np.concatenate([self.node_variants[n] for n in uf.members(rb)])
        a, b = np.repeat(va, len(vb)), np.tile(vb, len(va))
        top = int(self.levels(comparison, a, b).max()) if len(a) else -1
        return top >= 1 or top == -1


class NodeVariants:
    """node -> its variants' positions (ascending), as `groupby("node").indices` gives them, held
    as one array of positions sorted by node and an index of the nodes (about 30 bytes a node and 8 a
    variant), not an array per node (about 170 bytes a node)."""

    def __init__(self, nodes: np.ndarray) -> None:
        codes, uniq = pd.factorize(nodes)
        self.index = pd.Index(uniq)
        self.order = np.argsort(codes, kind="stable")
        self.starts = np.searchsorted(codes[self.order], np.arange(len(uniq) + 1))

    def __getitem__(self, node) -> np.ndarray:
        i = self.index.get_loc(node)
        return self.order[self.starts[i] : self.starts[i + 1]].astype(np.int64)

    def __len__(self) -> int:
        return len(self.index)


def node_spans(records: pd.DataFrame) -> dict | None:
    """Per node, the (first, last) day of its records' events (`record_date`, or `record_day` as
    days since 1970), where the records carry them; None when they do not (FEBRL, or an
    incremental run's stored records): configurations are then read without time.

    The nodes are coded once (a hash of the dated records' node names, in the order they first
    come, as `groupby(sort=False)` numbers them) and every other step is on the codes: the records
    sorted by node and day give each node's first and last day at its bounds. No frame of the
    records is copied, grouped or looked up again by name."""
    day = record_days(records)
    if day is None:
        return None
    dated = np.flatnonzero(~np.isnan(day))
    node = records["node"].to_numpy()
    if len(dated) < len(day):
        node, day = node[dated], day[dated]
    codes, uniq = pd.factorize(node)
    del node
    order = np.lexsort((day, codes))
    starts = np.searchsorted(codes[order], np.arange(len(uniq) + 1))
    del codes
    sorted_day = day[order]
    first = sorted_day[starts[:-1]]
    last = sorted_day[starts[1:] - 1] if len(uniq) else sorted_day[:0]
    days = sorted_day.astype("float32")  # (days since 1970 are exact in float32)
    del sorted_day, day
    variant = None
    if "variant" in records:  # each record's identity, for the persons' addresses in time
        variant = records["variant"].to_numpy()
        variant = (variant[dated] if len(dated) < len(variant) else variant)[order].astype(np.int32)
    return NodeSpans(pd.Index(uniq), first, last, days, starts, variant)


class NodeSpans:
    """node -> (first, last) day, as `node_spans` gives it: the nodes as a pandas index and the days
    as two float arrays (about 40 bytes a node), not a dict of tuples (about 200); and each node's
    record days, ascending (`days`: 4 bytes a record and 8 a node, and 4 a record more for their
    variants), when given."""

    def __init__(
        self,
        nodes: pd.Index,
        first: np.ndarray,
        last: np.ndarray,
        days: np.ndarray | None = None,
        starts: np.ndarray | None = None,
        variants: np.ndarray | None = None,
    ) -> None:
        self.index, self.first, self.last = nodes, first, last
        self.days = None if days is None else NodeDays(nodes, days, starts, variants)

    def __contains__(self, node) -> bool:
        return node in self.index

    def __getitem__(self, node) -> tuple:
        i = self.index.get_loc(node)
        return self.first[i], self.last[i]

    def __len__(self) -> int:
        return len(self.index)

    def items(self):
        return zip(self.index, zip(self.first, self.last, strict=True), strict=True)


class NodeDays:
    """node -> its records' days, ascending: one array of days sorted by node and day, and where
    each node's begin (`starts`, aligned with `nodes`); with `variants`, each of those records'
    variant (its identity's position), in the same order (`dated`)."""

    def __init__(self, nodes: pd.Index, days: np.ndarray, starts: np.ndarray, variants: np.ndarray | None = None):
        self.index, self.values, self.starts, self.variants = nodes, days, starts, variants

    def __contains__(self, node) -> bool:
        return node in self.index

    def __getitem__(self, node) -> np.ndarray:
        i = self.index.get_loc(node)
        return self.values[self.starts[i] : self.starts[i + 1]]

    def dated(self, node) -> tuple[np.ndarray, np.ndarray] | None:
        """(days, variants) of the node's dated records, by day; None without variants."""
        if self.variants is None or node not in self.index:
            return None
        i = self.index.get_loc(node)
        at = slice(self.starts[i], self.starts[i + 1])
        return self.values[at], self.variants[at]


def record_days(records: pd.DataFrame) -> np.ndarray | None:
    """Days since 1970 of each record's event date (NaN where missing), or None without dates."""
    if "record_day" in records:
        return records["record_day"].to_numpy("float64")
    if "record_date" not in records:
        return None
    day = pd.to_datetime(records["record_date"]).to_numpy("datetime64[D]").astype("float64")
    day[pd.isna(records["record_date"]).to_numpy()] = np.nan
    return day


def node_keys(records: pd.DataFrame) -> dict:
    """Per node, what a person can hold only one of: a death registration (a person dies once;
    a registration amended keeps its record id, so it is one node)."""
    keys: dict = {}
    for node in records.loc[records["source"] == "deaths", "node"].unique():
        keys[node] = {"deaths": frozenset([node])}
    return keys


def lived_on(uf: UnionFind, ra, rb) -> str | None:
    """A person's death registration comes after every other record of his (treatment start,
    offence, benefit spell start: events of the living). A merge that would give the person a
    record dated after his death joins two people, whatever their identities share (a father's
    death and his namesake son's later treatment, the son's date of birth missing or an alias's
    years out); refused like a second death and sent to review (where a wrong event date can be
    seen). Read from the records' event dates (`UnionFind.span`); without them nothing is read."""
    a, b = uf.span(ra), uf.span(rb)
    for dead, other in ((a, b), (b, a)):
        if "deaths" not in dead:
            continue
        death = dead["deaths"][0]
        last = max((span[1] for source, span in other.items() if source != "deaths"), default=None)
        if last is not None and last > death:
            return "records after a death"
    return None


def decide(
    node_pairs: pd.DataFrame,
    uf: UnionFind,
    link_at: float,
    review_at: float,
    corroborate=None,
    persons: PersonEvidence | None = None,
    defer: bool = False,
    learned: tuple[pd.DataFrame, dict] | None = None,
    corroborated_at: float | None = None,
) -> Decisions:
    """Accept node pairs at or above `link_at` in descending weight order, respecting constraints.

    `corroborate` maps a comparison to the reason given when a pair's `<comparison>_agrees` flag
    is false. Without `persons` such a pair goes to clerical review however high its weight; with
    them, the persons are compared where the nodes could not be (`<comparison>_unseen`), key
    evidence is read at the level of the persons, and pairs left uncorroborated are decided by
    the learned share of relatives in their persons' configuration (`relatives`).

    Decisions touch only the two persons of a pair, so a connected part of the pairs can be
    decided apart (linkage.spark), except the relatives' probabilities, which are learned over
    every part: `defer` stops before them and returns the `cases`; `learned` (the counts and
    probabilities `relative_probabilities` gives over all parts' cases) decides them.

    `corroborated_at` (at most `link_at`; the link level against the prior of a reference
    population, `linkage.model.Model.link_at`): a pair from this weight up to `link_at` links,
    once every other pair is decided (`_link_band`), if nothing in it looks like relatives — it
    passes every corroboration rule and its persons hold no other key of a source — and no
    constraint refuses it; else it is decided as a pair below `link_at` is. A pair from
    `corroborated_at` up that looks like relatives — it fails a corroboration rule, or the keys its
    persons would hold twice take it under `corroborated_at` — is a relatives' case, decided by its
    persons' configuration with those from `link_at` up (`_reference_case`): at the reference size
    its weight would reach `link_at`, where such pairs go (a second PNC id under an alias, whose
    pair the falling prior takes under `link_at`, is no longer left apart unasked); a `keys` case
    whose configuration is unknown or under `review_probability` is reviewed as before (`_decide_late`)."""
    corroborated_at = link_at if corroborated_at is None else min(corroborated_at, link_at)
    # the pairs' order (descending weight, then names), and only the columns read here taken in
    # it: not a sorted copy of every column of the node pairs (their levels, variants, flags)
    keys = pd.DataFrame(
        {c: node_pairs[c].to_numpy() for c in ("weight", "a", "b")}, index=pd.RangeIndex(len(node_pairs)), copy=False
    )
    order = keys.sort_values(["weight", "a", "b"], ascending=[False, True, True], kind="mergesort").index.to_numpy()
    del keys
    links, review, deferred, band, late = [], [], [], [], []
    late_at = {}  # a band case's (a, b) -> its position: its corroboration rules asked again (`_decide_late`)
    refused = 0
    rules = [
        (c, node_pairs[f"{c}_agrees"].to_numpy()[order], _column(node_pairs, f"{c}_unseen")[order], why)
        for c, why in (corroborate or {}).items()
    ]
    a_in_order, b_in_order = node_pairs["a"].to_numpy()[order], node_pairs["b"].to_numpy()[order]
    w_in_order = node_pairs["weight"].to_numpy()[order]
    del order
    for i, (a, b, w) in enumerate(zip(a_in_order, b_in_order, w_in_order.tolist(), strict=True)):
        if w < review_at:
            break
        ra, rb = uf.find(a), uf.find(b)
        if ra == rb:
            continue
        if corroborated_at <= w < link_at:
            # A pair that reaches the reference population's link level and looks like relatives
            # there (a corroboration rule fails, or its persons' keys take it under that level) is
            # a relatives' case, decided by its persons' configuration, as it would be in a
            # population of the reference size: a second key's pair (a second PNC id under an
            # alias) no longer drops out of the relatives' rule as the prior falls.
            case = _reference_case(i, a, b, w, rules, persons, uf, ra, rb, corroborated_at)
            if case is not None:
                late.append(case)  # decided by the configurations learned from `link_at` up
                late_at[(a, b)] = i
            else:
                band.append((i, a, b, w))  # decided after the relatives (`_link_band` weighs its keys then)
            continue
        own = _own_source(a, b)
        extra, twice = persons.key_evidence(uf, ra, rb, own) if persons else (0.0, [])
        if w < link_at:
            # Below the link level, a pair that fails a corroboration rule (forenames or dates of
            # birth disagree: relatives' look) is not asked: above it, it would be decided by its
            # persons' configuration, and its own weight does not even reach the link level
            # (`review_queue`; docs/linkage.md, The clerical review queue).
            # (asked only of a pair its key evidence keeps at the review level: the rules compare
            # every identity of one person with every identity of the other)
            if w + extra >= review_at and _uncorroborated(i, rules, persons, uf, ra, rb) is None:
                review.append((a, b, w, "weight between review and link thresholds"))
            continue
        unsure = None
        for c, flags, unseen, why in rules:
            if not flags[i] or (persons is not None and unseen[i] and not persons.corroborated(c, uf, ra, rb)):
                unsure = (c, why)
                break
        if unsure:
            if persons is None:
                review.append((a, b, w, unsure[1]))
            else:
                deferred.append((a, b, w, *unsure))
            continue
        if w + extra < link_at:
            # The pair links by itself; its persons hold keys of their own in a source, as
            # relatives do, and as one person does who holds a second key under an alias (the
            # alias is why the pair is not exact, so the key weight, learned over all of a
            # source's pairs, counts that alias twice). Decided like relatives: by how often
            # such persons' configuration holds relatives.
            deferred.append((a, b, w, KEYS_RULE, f"the persons hold other keys of {', '.join(twice)}"))
            continue
        why = uf.conflict(ra, rb) or lived_on(uf, ra, rb)
        if why:
            refused += 1
            review.append((a, b, w, f"would join {why}"))
            continue
        uf.union(ra, rb)
        links.append((a, b, w))
    relatives = cases = probability = None
    if deferred:
        table = relative_cases(deferred, uf, persons)
        if defer:
            cases = table
        else:
            if learned is None:
                learned = relative_probabilities(table, _configuration_shares(uf, persons.seed), persons)
            relatives, probability = learned
            refused += apply_relatives(table, probability, uf, persons, links, review)
    elif learned is not None:  # (linkage.spark: a part whose only cases are the band's)
        probability = learned[1]
    if defer and (deferred or late):
        # A part with relatives' cases is decided again with the probabilities learned over every
        # part (linkage.spark); the band's cases go with them, marked, and are not learned from.
        if late:
            marked = relative_cases(late, uf, persons)
            marked["rule"] = BAND_CASE + marked["rule"]
            cases = marked if cases is None else pd.concat([cases, marked], ignore_index=True)
    else:
        _link_band(band, rules, persons, uf, review_at, links, review, corroborated_at)
        if late:

            def as_before(a, b, w: float) -> bool:  # the rule `_link_band` reviews a pair by
                ra, rb = uf.find(a), uf.find(b)
                own = _own_source(a, b)
                extra, _ = persons.key_evidence(uf, ra, rb, own)
                return w + extra >= review_at and _uncorroborated(late_at[(a, b)], rules, persons, uf, ra, rb) is None

            refused += _decide_late(late, probability, uf, persons, links, review, as_before)
    return Decisions(
        pd.DataFrame(links, columns=["a", "b", "weight"]),
        pd.DataFrame(review, columns=["a", "b", "weight", "why"]),
        refused,
        relatives,
        cases,
    )


def _own_source(a: str, b: str) -> str | None:
    """The source whose keys a pair of two keyed nodes of one source joins (its own keys, not
    counted as a second key of that source), else None."""
    return node_source(a) if node_source(a) == node_source(b) and "|k|" in a and "|k|" in b else None


def _reference_case(i: int, a, b, w: float, rules: list, persons, uf: UnionFind, ra, rb, level: float):
    """The relatives' case (a, b, weight, rule, why) a pair between the reference population's
    link level (`level`) and the spec's is, or None: it fails a corroboration rule (twins' or a
    father's and son's look), or the keys its persons would hold twice take it under `level`
    (rule `keys`). At the reference size its weight would reach the spec's link level, where
    `decide` sends such a pair to its persons' configuration; so it goes there at any size.
    Without the persons' evidence (FEBRL), None: such a pair is decided as before."""
    if persons is None:
        return None
    for c, flags, unseen, why in rules:
        if not flags[i] or (unseen[i] and not persons.corroborated(c, uf, ra, rb)):
            return (a, b, w, c, why)
    own = _own_source(a, b)
    extra, twice = persons.key_evidence(uf, ra, rb, own)
    if twice and w + extra < level:
        return (a, b, w, KEYS_RULE, f"the persons hold other keys of {', '.join(twice)}")
    return None


def _decide_late(
    late: list, probability: dict | None, uf: UnionFind, persons, links: list, review: list, as_before
) -> int:
    """The relatives' cases between the reference population's link level and the spec's
    (`_reference_case`), after every other decision: each by the probability of one person its
    persons' configuration was given from the spec's link level up (this run's `probability`, or
    the stored model's `persons.learned`), as `apply_relatives` decides those. They are not
    learned from: a falling prior brings twins under the spec's level in every configuration,
    while one person's second key there is mostly over it, so counted with them they would lower
    every lone key's probability (at 100,000 people on the error model a second treatment key's
    under the link level). A case failing a corroboration rule whose configuration was not seen
    from the spec's level up is left apart, as before. A `keys` case (it passed every rule when
    met) whose configuration was not seen, or gives one person under `review_probability`, is
    decided as before, as `_link_band` decides a pair under the reference level: reviewed if
    `as_before(a, b, weight)` (it passes the corroboration rules, and its weight with the keys'
    reaches the review level), else left apart."""
    table = relative_cases(late, uf, persons)

    def known(rule: str, config: str) -> float | None:
        if persons.learned is not None:
            return persons.learned.get(f"{rule}|{config}")
        return None if probability is None else probability.get((rule, config))

    p = [known(r, c) for r, c in zip(table["rule"], table["configuration"], strict=True)]
    # (a `keys` case unknown or under the review probability: decided by the rule before issue 14)
    old = np.array(
        [
            r == KEYS_RULE and (x is None or x < persons.review_probability)
            for r, x in zip(table["rule"], p, strict=True)
        ],
        dtype=bool,
    )
    by_config = np.array([x is not None and not o for x, o in zip(p, old, strict=True)], dtype=bool)
    before = table[old]
    table = table[by_config].copy()
    table["why"] = table["why"] + " (between the reference and the spec's link levels)"
    kept = [x for x, k in zip(p, by_config, strict=True) if k]
    given = {(r, c): x for r, c, x in zip(table["rule"], table["configuration"], kept, strict=True)}
    refused = apply_relatives(table, given, uf, persons, links, review)
    for a, b, w in before[["a", "b", "weight"]].itertuples(index=False):
        if uf.find(a) != uf.find(b) and as_before(a, b, w):
            review.append((a, b, w, "weight between review and link thresholds"))
    return refused


def _link_band(
    band: list, rules: list, persons, uf: UnionFind, review_at: float, links: list, review: list, level: float
) -> None:
    """The pairs from the reference population's link level (`level`, `decide`'s
    `corroborated_at`) up to the spec's, in descending weight, after every other decision (so the
    relatives' cases and configurations are those the spec's level alone gives): a pair links if
    its persons are apart, it passes every corroboration rule, the keys the merge would give its
    person twice (their weight counted) leave it at `level` or above, and no constraint refuses
    it; else it is decided as a pair below the link level is. (Pairs that looked like relatives
    when met were made relatives' cases: `_reference_case`.)"""
    for i, a, b, w in band:
        ra, rb = uf.find(a), uf.find(b)
        if ra == rb:
            continue
        own = _own_source(a, b)
        extra, twice = persons.key_evidence(uf, ra, rb, own) if persons else (0.0, [])
        # (the rules asked only where their answer decides the pair: it links, or it is reviewed)
        asked = not twice or w + extra >= review_at
        corroborated = asked and _uncorroborated(i, rules, persons, uf, ra, rb) is None
        keys_hold = not twice or w + extra >= level
        if corroborated and keys_hold and (uf.conflict(ra, rb) or lived_on(uf, ra, rb)) is None:
            uf.union(ra, rb)
            links.append((a, b, w))
        elif corroborated and w + extra >= review_at:
            review.append((a, b, w, "weight between review and link thresholds"))


def _uncorroborated(i: int, rules: list, persons: PersonEvidence | None, uf: UnionFind, ra, rb) -> str | None:
    """The first corroboration rule the `i`-th pair of `decide` fails (its comparison), else None:
    its nodes disagree, or they could not be compared and their persons disagree."""
    for c, flags, unseen, _ in rules:
        if not flags[i] or (persons is not None and unseen[i] and not persons.corroborated(c, uf, ra, rb)):
            return c
    return None


def _column(frame: pd.DataFrame, name: str) -> np.ndarray:
    return frame[name].to_numpy() if name in frame else np.zeros(len(frame), bool)


def relative_cases(deferred: list, uf: UnionFind, persons: PersonEvidence | None = None) -> pd.DataFrame:
    """The pairs whose comparisons look like relatives' (twins: all but the forename; a father
    and son: all but the date of birth), once per two persons, with the configuration of their
    sources; they are decided by the probability that such a pair of persons is one person,
    learned per configuration (`relative_probabilities`).

    Relatives are two people, each with records in the sources he is in, so their persons meet
    in the configurations that two persons drawn at random meet in (shares `u`, from random pairs
    of the persons the confident links made). One person in two (a second key, under an alias)
    almost never shows the smaller part in two sources or more and sharing one with the other:
    that is a second key in two sources at once. So the pairs seen in that configuration,
    divided by its share, estimate the relatives among all such pairs, and in each configuration
    c the expected relatives are that number times u(c); the rest are one person.

    `apart`: whether the two persons' records say they are two people whatever their configuration
    (`PersonEvidence.two_people`: two sexes, two addresses at one time); never linked by it.
    """
    cases, seen = [], set()
    for a, b, w, rule, why in deferred:
        ra, rb = uf.find(a), uf.find(b)
        if ra == rb or (rule, min(ra, rb), max(ra, rb)) in seen:
            continue
        seen.add((rule, min(ra, rb), max(ra, rb)))
        apart = persons is not None and persons.two_people(uf, ra, rb) is not None
        cases.append((a, b, w, rule, why, uf.configuration(ra, rb), apart))
    return pd.DataFrame(cases, columns=["a", "b", "weight", "rule", "why", "configuration", "apart"])


def relative_probabilities(
    table: pd.DataFrame, share: dict[str, float], persons: PersonEvidence
) -> tuple[pd.DataFrame, dict]:
    """Per rule and configuration of the cases (`relative_cases`, of every part decided), the
    pairs, the relatives expected among them and the probability of one person; and those
    probabilities by (rule, configuration). `share`: `configuration_shares`. Cases marked
    `BAND_CASE` (between the reference and the spec's link levels) are not counted."""
    table = table[~table["rule"].astype(str).str.startswith(BAND_CASE)]
    apart = table["apart"].astype(bool) if "apart" in table else pd.Series(False, index=table.index)
    counts = (
        table.assign(apart=apart)
        .groupby(["rule", "configuration"])["apart"]
        .agg(pairs="size", apart="sum")
        .reset_index()
    )
    per_rule = counts[counts["configuration"] == MULTI_OVERLAP].set_index("rule")
    # (a configuration no random pair showed is rare, not impossible)
    counts["share"] = counts["configuration"].map(share).fillna(1 / RELATIVE_SAMPLE)
    total = counts["rule"].map(per_rule["pairs"]).fillna(0).add(0.5) / share.get(MULTI_OVERLAP, 1.0)
    counts["expected_relatives"] = total * counts["share"]
    # The pairs apart (`PersonEvidence.two_people`: two sexes, two addresses at one time) are never
    # linked by their configuration, so its own estimate is that of the pairs the check lets through:
    # those pairs, and the relatives expected among them (`through`, counted per configuration).
    # (Scaling every configuration's relatives by the share apart where relatives are counted,
    # multi-overlap, was tried and joined more twins at default rates: docs/linkage.md, Measured.)
    counts["through"] = relatives_through(counts["expected_relatives"], counts["apart"])
    kept = counts["pairs"] - counts["apart"]
    own = ((kept - counts["through"]) / kept).clip(0.0, 1.0).fillna(0.0)
    # A configuration seen in a few pairs says little on its own (one pair of a father and son
    # under a rare surname, each in two sources, read 0.99): its estimate is shrunk towards its
    # kind's, as if RELATIVE_PRIOR_PAIRS more pairs had shown that. The kind of a lone key's
    # configuration is how it falls in time against the other person (`single-later:` of every
    # source, `single-after:`, `single-in:`: a second key follows the first in any source); the
    # kind's estimate is over its other configurations (the other sources), itself shrunk so
    # towards the rule's over all configurations. Other configurations (`single-out`,
    # `multi-apart`), and a kind seen in one source only, take the rule's.
    # (Multi-overlap, where the relatives are counted, is left as it is.)
    other = counts["configuration"] != MULTI_OVERLAP
    kind = counts["configuration"].str.extract(r"^([^:]+:)", expand=False)
    # (The kind's and the rule's estimates are over all their pairs, the pairs apart among them, as
    # before: a prior that errs low. Over the pairs let through they rose with every configuration's
    # caught relatives taken off, and at default rates lifted a lone key's configuration whose twins
    # the check does not catch over the link level: docs/linkage.md, Measured.)
    rule = _pool(counts[other], counts["rule"], pd.Series(0.0, index=counts.index), 0)
    timed = other & kind.notna()
    prior = _pool(counts[timed], [counts["rule"], kind], rule, RELATIVE_PRIOR_PAIRS, True).where(kind.notna(), rule)
    shrunk = (own * kept + RELATIVE_PRIOR_PAIRS * prior) / (kept + RELATIVE_PRIOR_PAIRS)
    counts["probability"] = np.where(other, shrunk, own)
    probability = counts.set_index(["rule", "configuration"])["probability"].to_dict()
    if persons.learned is not None:  # the model's, learned on everything when it was trained
        probability = {
            key: persons.learned.get(f"{key[0]}|{key[1]}", persons.review_probability) for key in probability
        }
        counts["probability"] = [probability[k] for k in zip(counts["rule"], counts["configuration"], strict=True)]
    return counts.drop(columns="share"), probability


def relatives_through(expected, apart) -> np.ndarray:
    """The relatives expected among a configuration's pairs that are not apart (two sexes, two
    addresses at one time: `PersonEvidence.two_people`), which its probability decides.

    The pairs apart are relatives (one person's records follow his moves, under whichever key, and
    have one sex). Where no more are caught than the relatives `expected` in the configuration, the
    rest slipped through: `expected - apart`, the configuration's own share caught (not one measured
    where relatives are counted, multi-overlap: a lone key and its twin hold fewer records and show
    their two addresses less often). Where more are caught than expected, the expectation is
    contradicted (the configuration holds more relatives than its share among random pairs says)
    and how many slipped through is not known: `expected`, as it is, nothing taken off."""
    expected, apart = np.asarray(expected, dtype="float64"), np.asarray(apart, dtype="float64")
    return np.where(apart <= expected, expected - apart, expected)


def _pool(members: pd.DataFrame, by, prior: pd.Series, prior_pairs: float, others: bool = False) -> pd.Series:
    """Per row of `by` (the rule, or the rule and kind, aligned with `prior`), the probability of
    one person over `members` of its group (pairs less relatives expected, over pairs) — with
    `others`, over the group's members but the row itself, so that a configuration's own pairs
    do not count twice — shrunk towards `prior` by `prior_pairs` pseudo-pairs; `prior` where the
    group has no (other) members."""
    keys = [by] if isinstance(by, pd.Series) else list(by)
    frame = pd.DataFrame({f"k{i}": k for i, k in enumerate(keys)})
    cols = list(frame.columns)
    sums = frame.loc[members.index].assign(pairs=members["pairs"], relatives=members["expected_relatives"])
    sums = sums.groupby(cols)[["pairs", "relatives"]].sum()
    rows = frame.join(sums, on=cols)
    if others:
        rows["pairs"] -= members["pairs"].reindex(frame.index).fillna(0)
        rows["relatives"] -= members["expected_relatives"].reindex(frame.index).fillna(0)
        rows.loc[rows["pairs"] <= 0, ["pairs", "relatives"]] = np.nan
    n = rows["pairs"].fillna(0.0)
    pool = ((rows["pairs"] - rows["relatives"]) / rows["pairs"]).clip(0.0, 1.0).fillna(0.0)
    return ((pool * n + prior_pairs * prior) / (n + prior_pairs)).where(n > 0, prior)


def apply_relatives(
    table: pd.DataFrame, probability: dict, uf: UnionFind, persons: PersonEvidence, links: list, review: list
) -> int:
    """Link, send to review or leave each case by its configuration's probability; the refusals."""
    refused = 0
    for a, b, w, rule, why, config in table[["a", "b", "weight", "rule", "why", "configuration"]].itertuples(
        index=False
    ):
        ra, rb = uf.find(a), uf.find(b)
        if ra == rb:
            continue
        p = float(probability[(rule, config)])
        if p >= persons.link_probability:
            conflict = uf.conflict(ra, rb) or lived_on(uf, ra, rb)
            apart = None if conflict else persons.two_people(uf, ra, rb)
            if apart:
                review.append((a, b, w, f"{why}; {apart} (one person in {p:.0%}: {config})"))
                continue
            if conflict is None:
                uf.union(ra, rb)
                links.append((a, b, w))
                continue
            refused += 1
            review.append((a, b, w, f"would join {conflict}"))
        elif p >= persons.review_probability:
            review.append((a, b, w, f"{why} (one person in {p:.0%} of such pairs: {config})"))
    return refused


def _configuration_shares(uf: UnionFind, seed: int) -> dict[str, float]:
    roots = uf.roots()
    mask = np.array([uf.masks(r)[0] for r in roots], dtype=np.int64)
    size = np.array([len(uf.members(r)) for r in roots], dtype=np.int64)
    spans = None
    if uf.spans is not None:
        spans = {s: (np.full(len(roots), np.nan), np.full(len(roots), np.nan)) for s in uf.bits}
        for i, r in enumerate(roots):
            for s, (first, last) in uf.span(r).items():
                spans[s][0][i], spans[s][1][i] = first, last
    bits = {b: s for s, b in uf.bits.items()}
    days = None if uf.node_days is None else (lambda i, source: uf.days(roots[i], source))
    return configuration_shares(np.array(roots, dtype=object), mask, size, bits, seed, spans, days)


def person_days(person: np.ndarray, source: np.ndarray, day: np.ndarray, sources: list[str]):
    """The record days of a person (its position among the persons) in a source, ascending, as
    `configuration_shares` reads them: from each record's person position, source and day (no
    NaN), held as one array sorted by person, source and day."""
    code = {s: i for i, s in enumerate(sources)}
    key = np.asarray(person, dtype=np.int64) * len(sources) + pd.Series(source).map(code).to_numpy(np.int64)
    order = np.lexsort((day, key))
    key, values = key[order], np.asarray(day, dtype="float32")[order]

    def of(i: int, s: str) -> np.ndarray:
        k = i * len(sources) + code[s]
        return values[np.searchsorted(key, k, side="left") : np.searchsorted(key, k, side="right")]

    return of


def configuration_shares(
    roots: np.ndarray,
    mask: np.ndarray,
    size: np.ndarray,
    name: dict[int, str],
    seed: int,
    spans: dict | None = None,
    days: Callable[[int, str], np.ndarray | None] | None = None,
) -> dict[str, float]:
    """Share of each configuration (`UnionFind.configuration`) among random pairs of persons: the
    persons (every root, by its node: the smallest of the person's) as their sources' bit mask
    (`name`: bit -> source) and their number of nodes.

    The pairs are drawn from the persons in the order of their roots' names, whatever order they
    come in: the sample, and so the relatives' probabilities, are the same for the same persons
    however the records were read (the Spark engine's records are not in the local engine's order,
    and its persons come from many components).

    `spans` (source -> first and last day of each person's records there, NaN where none, in the
    order of `roots`): with record dates, a pair whose smaller person is one source, all of it after
    the other's last record there, is `SINGLE_LATER`; beginning after the other's first and ending
    after its last, `SINGLE_AFTER` (else `SINGLE_IN`); and with `days` (the record days of the
    person at a position of `roots` in a source, ascending), a `SINGLE_AFTER` pair whose later person
    is one node and took over (`took_over`), `SINGLE_TOOK`."""
    if len(roots) < 2:
        return {}
    order = np.argsort(np.asarray(roots, dtype=object), kind="stable")
    mask, size = np.asarray(mask, dtype=np.int64)[order], np.asarray(size, dtype=np.int64)[order]
    count = np.array([int(m).bit_count() for m in mask], dtype=np.int64)
    rng = np.random.default_rng(seed)
    n = min(RELATIVE_SAMPLE, len(roots) * (len(roots) - 1) // 2)
    i, j = rng.integers(0, len(roots), n), rng.integers(0, len(roots), n)
    i, j = i[i != j], j[i != j]
    swap = (count[i] > count[j]) | ((count[i] == count[j]) & (size[i] > size[j]))
    small, big = np.where(swap, j, i), np.where(swap, i, j)
    shared = (mask[small] & mask[big]) != 0
    configs = np.where(
        count[small] >= 2,
        np.where(shared, MULTI_OVERLAP, MULTI_APART),
        np.where(shared, SINGLE_IN, SINGLE_OUT),
    ).astype(object)
    one = (count[small] == 1) & shared
    configs[one] = [SINGLE_IN + name[int(m)] for m in mask[small][one]]
    if spans is not None:
        tie = (count[small] == count[big]) & (size[small] == size[big])  # read both ways round (`in_time`)
        for s, (first, last) in spans.items():
            first, last = np.asarray(first, dtype="float64")[order], np.asarray(last, dtype="float64")[order]
            here = one & (configs == SINGLE_IN + s)
            later = here & ((first[small] > last[big]) | (tie & (first[big] > last[small])))  # NaN: never later
            after = (first[small] > first[big]) & (last[small] > last[big])
            after = here & ~later & (after | (tie & (first[big] > first[small]) & (last[big] > last[small])))
            configs[later] = SINGLE_LATER + s
            configs[after] = SINGLE_AFTER + s
            if days is None:
                continue
            # which of the two came second: the smaller, unless read the other way round (a tie)
            forward = (first[small] > first[big]) & (last[small] > last[big])
            for x in np.flatnonzero(after):
                second, other = (small[x], big[x]) if forward[x] else (big[x], small[x])
                if size[second] == 1 and took_over(days(int(order[second]), s), days(int(order[other]), s)):
                    configs[x] = SINGLE_TOOK + s
    return pd.Series(configs).value_counts(normalize=True).to_dict()


REVIEWED_APART = "sides of review decision"  # a refusal's reason when a reviewer's non-match parts the persons


def review_queue(review: pd.DataFrame, root_of: Callable[[str], str]) -> pd.DataFrame:
    """The clerical review queue from the node pairs the decisions sent to review (`review`: a, b,
    weight, why), read against the persons the run ended with (`root_of`: a node's person's root):
    a reviewer decides whether two *persons* are one, so

    - a pair whose two nodes a later link put in one person is not asked (nothing is left apart);
    - a pair refused only because a reviewer said the two persons are two people (a non-match:
      `would join two sides of review decision N identities`) is not asked again;
    - of the pairs between the same two persons, one is asked: the highest weight (then the pair's
      names, so that every engine keeps the same), its reason followed by how many more pairs of
      the two persons it stands for.

    Read after all decisions, from the persons alone, so the local and the Spark engine (whose
    review pairs come from many components, each pair's two persons in one) give the same queue."""
    if review.empty:
        return review
    ordered = review.sort_values(["weight", "a", "b"], ascending=[False, True, True], kind="mergesort")
    ra = np.array([root_of(a) for a in ordered["a"]], dtype=object)
    rb = np.array([root_of(b) for b in ordered["b"]], dtype=object)
    why = ordered["why"].astype(str)
    asked = (ra != rb) & ~why.str.contains(REVIEWED_APART, regex=False).to_numpy()
    ordered, ra, rb = ordered[asked], ra[asked], rb[asked]
    persons = pd.Series(np.where(ra < rb, ra, rb) + "\x00" + np.where(ra < rb, rb, ra), index=ordered.index)
    more = persons.map(persons.value_counts()) - 1
    first = ~persons.duplicated(keep="first")
    out = ordered[first.to_numpy()].copy()
    extra = more[first].to_numpy()
    out["why"] = [
        w if n == 0 else f"{w} (+{n} more pairs of these persons)" for w, n in zip(out["why"], extra, strict=True)
    ]
    return out.reset_index(drop=True)
