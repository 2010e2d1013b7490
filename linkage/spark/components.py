"""Connected components in Spark by iterative joins (no graph library): every node starts with
its own name as label, then repeatedly takes the smallest label among itself and its neighbours
and jumps to its label's label (pointer jumping, so long chains close in a few rounds), until no
label changes. A component's label is its smallest node."""

from __future__ import annotations

MAX_ROUNDS = 64


def connected_components(edges, max_rounds: int = MAX_ROUNDS):
    """(node, component) for every node of `edges` (src, dst: node names)."""
    from pyspark.sql import functions as F

    both = edges.select("src", "dst").unionAll(edges.select(F.col("dst").alias("src"), F.col("src").alias("dst")))
    both = both.where(F.col("src") != F.col("dst")).distinct().localCheckpoint()
    labels = both.groupBy("src").agg(F.least(F.min("dst"), F.first("src")).alias("label"))
    labels = labels.withColumnRenamed("src", "node").localCheckpoint()
    for _ in range(max_rounds):
        heard = both.join(labels.withColumnRenamed("node", "dst"), "dst").groupBy("src").agg(F.min("label").alias("m"))
        step = labels.join(heard.withColumnRenamed("src", "node"), "node", "left").select(
            "node", F.least("label", F.coalesce("m", "label")).alias("label")
        )
        jumped = step.alias("x").join(step.alias("y"), F.col("x.label") == F.col("y.node"), "left")
        new = jumped.select(
            F.col("x.node").alias("node"), F.least("x.label", F.coalesce("y.label", "x.label")).alias("label")
        ).localCheckpoint()
        changed = new.join(labels.withColumnRenamed("label", "old"), "node").where(F.col("label") != F.col("old"))
        if changed.limit(1).count() == 0:
            return new.withColumnRenamed("label", "component")
        labels = new
    raise RuntimeError(f"connected components did not settle in {max_rounds} rounds")
