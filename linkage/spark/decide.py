"""Person-level decisions in Spark, one connected component at a time.

A decision reads and changes only the two persons of its pair, so the components of the graph of
scored node pairs, existing persons and reviewers' matches are decided apart, by the local
functions (`linkage.run.cluster_local`: existing persons, reviews, `cluster.decide` with the
persons' evidence) through `applyInPandas`. Components go to groups by a hash, each group whole
components: one call per component cost pandas' fixed overhead tens of thousands of times
(measured: minutes at 20,000 people, where the local engine clusters in a second). A group is
held whole by one Python worker (records, identities, pairs and the local decisions on them), so
there are at least `spark.sql.shuffle.partitions` groups and as many more as keep each near
`group_nodes` nodes (linkage.spark.engine sizes it from the run's memory budget). One thing is
learned over all components: how often each configuration of two persons' sources holds
relatives (`cluster.relative_cases` and `relative_probabilities`). So components are decided in
two rounds when such pairs exist: the first stops before them and returns them with each
component's persons; the driver learns the probabilities over all of them (with the shares of
configurations among all persons, singletons included, in the local engine's order); the second
decides the components that hold such pairs, and only those (a row of either round names its
component, `part`: a 64-bit hash of the component's name, so that the second round reads none of
the other components' records and the first round's rows of the components decided again are
left out; two components that shared a hash would be decided, or left out, together, which gives
the same decisions). Before, the second round decided every group holding such a pair: at
500,000 people nearly all of them, all of the records shuffled and decided twice.

What an executor receives: the spec, the model, reviewers' decisions and (only when a reviewer
said two records are two people, which may part a person) the links decided before, pickled
with the function; each group's node pairs, records and identities come grouped by component.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from linkage import model as fs
from linkage.cluster import (
    Decisions,
    PersonEvidence,
    configuration_shares,
    node_source,
    person_days,
    record_days,
    relative_probabilities,
)
from linkage.compare import Comparer
from linkage.run import Clustered, ClusterInputs, _review_nodes, cluster_local
from linkage.spark.components import connected_components
from linkage.spark.tables import as_local, read, written

OUT = (
    "component long, part long, kind string, a string, b string, weight double, why string, rule string, "
    "configuration string, n long"
)
_TYPES = {"long": pa.int64(), "string": pa.string(), "double": pa.float64()}
OUT_ARROW = pa.schema([(name, _TYPES[kind]) for name, kind in (c.split() for c in OUT.split(", "))])  # OUT, in Arrow
KINDS = ("link", "review")
GROUP_NODES = 100_000  # nodes a group of components holds, on average, unless the run sizes it


class SparkClustering:
    """`linkage.run.cluster_local` over Spark: same arguments, same `Clustered`."""

    def __init__(self, spark, work: Path, variants, group_nodes: int = GROUP_NODES) -> None:
        self.spark, self.work, self.variants = spark, Path(work), variants  # variants: the blocker's table
        self.group_nodes = group_nodes

    def __call__(
        self,
        inputs: ClusterInputs,
        _variants: pd.DataFrame,  # the identities travel as the blocker's Parquet table
        comparer: Comparer,
        spec,
        model: fs.Model,
        seed: int,
        learned: dict | None,
    ) -> Clustered:
        from pyspark.sql import functions as F

        r = inputs.r[["source", "record_id", "node"]]
        days = record_days(inputs.r)  # the records' event dates, as days (configurations in time)
        if days is not None:
            r = r.assign(record_day=days)
            if "variant" in inputs.r:  # and their identities (the persons' addresses in time)
                r = r.assign(variant=inputs.r["variant"].to_numpy(dtype=np.int64))
        held = r.merge(inputs.known, on=["source", "record_id"])
        pairs = inputs.pairs_by_node[inputs.pairs_by_node["weight"] >= spec.review_at].reset_index(drop=True)
        first = held.groupby("person_id")["node"].transform("min")
        reviewed = _review_nodes(inputs.reviews, inputs.r)
        matches = reviewed[reviewed["decision"] == "match"]
        edges = pd.concat(
            [
                pairs[["a", "b"]].set_axis(["src", "dst"], axis=1),
                pd.DataFrame({"src": held["node"].to_numpy(), "dst": first.to_numpy()}),
                matches[["node_a", "node_b"]].set_axis(["src", "dst"], axis=1),
            ],
            ignore_index=True,
        )
        edges = edges[edges["src"] != edges["dst"]]
        if edges.empty:  # nothing to decide: every node a person of its own
            return Clustered(str, Decisions(_empty(KINDS[0]), _empty(KINDS[1])), set())
        links = inputs.decided_links() if _may_part(held, reviewed) else pd.DataFrame()
        found = connected_components(read(self.spark, edges, self.work, "edges"), work=self.work)
        del edges, first, reviewed, matches  # in Spark now: not held through the decisions
        where = str(self.work / "components")
        found.write.parquet(where)  # read once per side below: two plans, no ambiguous self-join

        groups = int(self.spark.conf.get("spark.sql.shuffle.partitions"))
        groups = max(groups, -(-(len(inputs.r) + len(_variants)) // max(self.group_nodes, 1)))

        def component(only=None):  # node -> its group (whole components, many to a group: pandas per call), its part
            found = self.spark.read.parquet(where).select(
                "node",
                F.pmod(F.hash("component"), F.lit(groups)).alias("component"),
                F.xxhash64("component").alias("part"),
            )
            if only is not None:  # the parts to decide again, and nothing else
                keep = self.spark.createDataFrame(pd.DataFrame({"part": sorted(only)}, dtype="int64"))
                found = found.join(F.broadcast(keep), "part")
            return found

        # each record with its person if linked already: joined in Spark, not a pandas copy of every record
        known = read(self.spark, inputs.known[["source", "record_id", "person_id"]], self.work, "known")
        records = read(self.spark, r, self.work, "records").join(known, ["source", "record_id"], "left")
        del r, held
        every = records.withColumn("kind", F.lit("record")).unionByName(
            self.variants.drop("is_new").withColumn("kind", F.lit("variant")), allowMissingColumns=True
        )
        scored = read(self.spark, pairs, self.work, "node_pairs")
        del pairs
        context = (spec, model, inputs.reviews, inputs.past, links, seed, learned)

        def run(relatives, only=None):  # only: the parts to decide (default all)
            n = every.join(component(only), "node")
            p = scored.join(component(only).withColumnRenamed("node", "a"), "a")
            decide = _part(context, relatives)
            grouped = p.groupBy("component").cogroup(n.groupBy("component"))
            return Decided(written(grouped.applyInPandas(decide, OUT), self.work, "decided"))

        # Each round's rows stay in its Parquet files; the driver reads the kinds it needs when
        # it needs them, so it holds none of the first round's (a row per node a person moved)
        # while the second round runs: at 500,000 people the tree's peak was in that round.
        first_round = run(None)
        cases = first_round.read(["case"])
        counts, rounds = None, [first_round]
        if not cases.empty:
            share = _shares(first_round.read(["root", "mask"]), inputs.r, seed)
            persons = PersonEvidence(
                {}, {}, comparer.levels, spec.link_probability, spec.review_probability, seed, learned
            )
            table = cases[["a", "b", "weight", "rule", "why", "configuration"]].assign(apart=cases["n"].fillna(0) > 0)
            counts, probability = relative_probabilities(table, share, persons)
            again = set(cases["part"].tolist())
            del share, table, cases
            first_round.without = again  # decided again below
            rounds.append(run((counts, probability), again))
        return _clustered(rounds, counts)


def _empty(kind: str) -> pd.DataFrame:
    return pd.DataFrame(columns=["a", "b", "weight", "why"] if kind == "review" else ["a", "b", "weight"])


def _may_part(held: pd.DataFrame, reviewed: pd.DataFrame) -> bool:
    """Whether a person may be parted (a reviewer's non-match, or two deaths in one person): the
    links decided before are then read to rebuild it (linkage.run._replay)."""
    if (reviewed["decision"] == "non-match").any():
        return True
    deaths = held[held["source"] == "deaths"]
    return bool((deaths.groupby("person_id")["node"].nunique() > 1).any())


def _part(context, relatives):
    spec, model, reviews, past, links, seed, learned = context
    aliases = model.alias_sets()

    def decide(key, pairs: pd.DataFrame, nodes: pd.DataFrame) -> pd.DataFrame:
        component = key[0]
        part_of = dict(zip(nodes["node"], nodes["part"], strict=True))  # node -> its component's part
        records = nodes[nodes["kind"] == "record"]
        dated = ["record_day"] if "record_day" in records else []
        r = records[["source", "record_id", "node", *dated]].reset_index(drop=True)
        known = records.dropna(subset=["person_id"])[["source", "record_id", "person_id"]].reset_index(drop=True)
        variants = nodes[nodes["kind"] == "variant"].sort_values("variant").reset_index(drop=True)
        if dated and records["variant"].notna().all():  # each record's variant, as its position here
            at = records["variant"].to_numpy(dtype=np.int64)
            r["variant"] = np.searchsorted(variants["variant"].to_numpy(dtype=np.int64), at)
        variants = as_local(variants)
        comparer = Comparer(variants, spec, aliases)
        pairs = pairs.drop(columns=["component", "part"]).reset_index(drop=True)
        inputs = ClusterInputs(r, known, reviews, past, lambda: links, pairs)
        c = cluster_local(inputs, variants, comparer, spec, model, seed, learned, relatives is None, relatives)
        rows = [("link", a, b, w, None, None, None, None) for a, b, w in c.decisions.links.itertuples(index=False)]
        rows += [
            ("review", a, b, w, why, None, None, None) for a, b, w, why in c.decisions.review.itertuples(index=False)
        ]
        roots = ((n, c.root_of(n)) for n in pd.unique(r["node"]))
        rows += [("root", n, root, None, None, None, None, None) for n, root in roots if n != root]
        rows += [("joined", n, None, None, None, None, None, None) for n in c.review_joined]
        # the refusals by part (a row for every part decided, 0 or more): each is a review "would
        # join ..." (cluster.decide, cluster.apply_relatives), so counted by part from those rows
        refusals = dict.fromkeys(pd.unique(nodes["part"]).tolist(), 0)
        for a, why in c.decisions.review[["a", "why"]].itertuples(index=False):
            if why.startswith("would join "):
                refusals[part_of[a]] += 1
        if sum(refusals.values()) != c.decisions.refused:
            raise AssertionError(f"refusals by part {sum(refusals.values())}, in all {c.decisions.refused}")
        if c.decisions.cases is not None:
            rows += [
                ("case", x.a, x.b, x.weight, x.why, x.rule, x.configuration, int(x.apart))  # n: two people (two_people)
                for x in c.decisions.cases.itertuples(index=False)
            ]
        if relatives is None:
            for root in c.uf.roots():  # each person's sources and nodes, for the shares of configurations
                size = len(c.uf.members(root))
                if size > 1:
                    rows.append(("mask", root, None, None, ",".join(c.uf.names(c.uf.masks(root)[0])), None, None, size))
        parts = [part_of[row[1]] for row in rows]  # each row's part, by its first node
        rows += [("refused", None, None, None, None, None, None, n) for n in refusals.values()]
        parts += list(refusals)
        out = pd.DataFrame(rows, columns=["kind", "a", "b", "weight", "why", "rule", "configuration", "n"])
        out.insert(0, "part", np.array(parts, dtype=np.int64))
        out.insert(0, "component", int(component))
        return out.astype({"weight": "float64", "n": "Int64"})

    return decide


def _shares(out: pd.DataFrame, r: pd.DataFrame, seed: int) -> dict[str, float]:
    """`cluster.configuration_shares` over every person as the first round left them: its root
    (the smallest of its nodes, as the local union-find keeps it), sources and nodes."""
    nodes = pd.unique(r["node"])
    moved = out[out["kind"] == "root"].set_index("a")["b"]
    root = pd.Series(nodes).map(moved)
    roots = nodes[root.isna().to_numpy()]  # a node no component moved is a root (of itself or its part)
    masks = out[out["kind"] == "mask"].set_index("a")
    sources = pd.Series(roots).map(masks["why"]).fillna(pd.Series([node_source(n) for n in roots]))
    sizes = pd.Series(roots).map(masks["n"]).fillna(1).to_numpy(dtype=np.int64)
    names = sorted({s for v in sources for s in v.split(",")})
    bit = {s: 1 << i for i, s in enumerate(names)}
    mask = np.array([sum(bit[s] for s in v.split(",")) for v in sources], dtype=np.int64)
    spans, days, of = None, record_days(r), None
    if days is not None:  # each person's first and last record date per source
        person = r["node"].map(moved).fillna(r["node"])
        g = pd.DataFrame({"root": person.to_numpy(), "source": r["source"].to_numpy(), "day": days}).dropna()
        of = person_days(pd.Index(roots).get_indexer(g["root"]), g["source"].to_numpy(), g["day"].to_numpy(), names)
        g = g.groupby(["source", "root"])["day"].agg(["min", "max"])
        spans = {}
        for s in names:
            at = g.loc[s] if s in g.index.get_level_values(0) else g.iloc[:0].droplevel(0)
            first = pd.Series(roots).map(at["min"]).to_numpy(dtype="float64")
            spans[s] = (first, pd.Series(roots).map(at["max"]).to_numpy(dtype="float64"))
    return configuration_shares(roots, mask, sizes, {b: s for s, b in bit.items()}, seed, spans, of)


class Decided:
    """A round of decisions as Parquet files (the rows of OUT), read by kind: the rows of the
    parts (components) in `without` (decided again in a later round) left out."""

    def __init__(self, files: list[str]) -> None:
        self.files, self.without = files, set()

    def arrow(self, kinds: list[str], columns: list[str] | None = None) -> pa.Table:
        if not self.files:
            return OUT_ARROW.empty_table().select(columns or OUT_ARROW.names)
        wanted = columns and ["part", *columns]
        table = pq.read_table(self.files, schema=OUT_ARROW, filters=[("kind", "in", kinds)], columns=wanted)
        if self.without:
            keep = pc.invert(pc.is_in(table["part"], value_set=pa.array(sorted(self.without), pa.int64())))
            table = table.filter(keep)
        return table.select(columns) if columns else table

    def read(self, kinds: list[str]) -> pd.DataFrame:
        return self.arrow(kinds).to_pandas(self_destruct=True)


def _clustered(rounds: list[Decided], counts: pd.DataFrame | None) -> Clustered:
    def rows(kinds, columns):
        return pa.concat_tables([r.arrow(kinds, columns) for r in rounds])

    links = rows(["link"], ["a", "b", "weight"]).to_pandas()
    review = rows(["review"], ["a", "b", "weight", "why"]).to_pandas()
    # the local engine's order: by weight, then the pair
    links = links.sort_values(["weight", "a", "b"], ascending=[False, True, True], kind="mergesort")
    review = review.sort_values(["weight", "a", "b"], ascending=[False, True, True], kind="mergesort")
    refused = int(pc.sum(rows(["refused"], ["n"])["n"]).as_py() or 0)
    decisions = Decisions(links.reset_index(drop=True), review.reset_index(drop=True), refused, counts)
    roots = rows(["root"], ["a", "b"])
    moved = dict(zip(roots["a"].to_pylist(), roots["b"].to_pylist(), strict=True))  # a node not moved is its own root
    del roots
    joined = set(rows(["joined"], ["a"])["a"].to_pylist())
    return Clustered(lambda n: moved.get(n, n), decisions, joined)
