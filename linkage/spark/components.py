"""Connected components in Spark by iterative joins (no graph library): random-mate contraction.

Each round, every node of the (contracted) graph picks, among itself and its neighbours, the
node of least priority (a hash of its name and the round: pseudo-random, so that a component's chain of names
shrinks by a constant share each round whatever its order; taking the smallest name instead
walks a sorted chain one node a round); every edge is then replaced by the edge between its two
ends' picks, and edges inside one pick vanish. When no edge is left, each node's component is
found by following its picks round by round (one join per round). Rounds grow with the log of
the longest chain, not its length.
"""

from __future__ import annotations

from pathlib import Path

from linkage.spark.tables import stored

MAX_ROUNDS = 64


def connected_components(edges, max_rounds: int = MAX_ROUNDS, work: Path | None = None):
    """(node, component) for every node of `edges` (src, dst: node names); a component is named
    by one of its nodes. Each round's graph and picks are kept as Parquet under `work` (the run's
    work folder; without one, local checkpoints)."""
    from pyspark.sql import functions as F

    def kept(frame, name):
        return stored(frame, work, name)

    def undirected(frame):
        both = frame.select("src", "dst").unionAll(frame.select(F.col("dst").alias("src"), F.col("src").alias("dst")))
        return both.where(F.col("src") != F.col("dst")).distinct()

    graph = kept(undirected(edges), "graph")
    picks = []  # per round: node -> the node it joined
    for round_ in range(max_rounds):
        if graph.limit(1).count() == 0:
            break
        closed = graph.select(F.col("src").alias("node"), F.col("dst").alias("c")).unionAll(
            graph.select(F.col("src").alias("node"), F.col("src").alias("c"))
        )
        # priorities drawn afresh each round (the round salts the hash), ties by name
        salted = F.xxhash64("c", F.lit(round_))
        ranked = closed.withColumn("p", F.struct(salted.alias("h"), F.col("c").alias("c")))
        pick = ranked.groupBy("node").agg(F.min("p").getField("c").alias("pick"))
        pick = kept(pick, "pick")
        picks.append(pick)
        ends = graph.join(pick.withColumnRenamed("node", "src"), "src").select(F.col("pick").alias("src"), "dst")
        ends = ends.join(pick.withColumnRenamed("node", "dst"), "dst").select("src", F.col("pick").alias("dst"))
        graph = kept(undirected(ends), "graph")
    else:
        raise RuntimeError(f"connected components did not settle in {max_rounds} rounds")
    if not picks:
        return edges.sparkSession.createDataFrame([], "node string, component string")
    found = picks[0].withColumnRenamed("pick", "component")
    for pick in picks[1:]:  # a node's pick, then that pick's pick in the next round, ...
        found = found.join(pick.withColumnRenamed("node", "component"), "component", "left").select(
            "node", F.coalesce("pick", "component").alias("component")
        )
    return found
