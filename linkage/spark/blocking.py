"""Blocking as Spark SQL joins: the passes of `linkage.blocking.candidate_pairs`, the same pairs.

The variants (identities and their block keys) are one Parquet table; each pass is an equi-join
of it with itself on the pass's key columns (new variants on the left when the run links new
records only), blocks larger than the spec's `max_block` left out where the pass is symmetric,
pairs of one node (or one source when linking only) dropped. The union keeps each pair once with
a bit mask of the passes that found it, and the statistics per pass are counted from that mask.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from linkage.blocking import UNION, PassStats, comparable_pairs, true_pairs
from linkage.spark.tables import read, stored, write_parquet
from linkage.spec import Pass, Spec


class SparkPairs:
    """Candidate pairs held by Spark (a < b, `passes`), ordered by (a, b) as the local engine's:
    `len` and `take` are what training reads (linkage.engine.take_pairs)."""

    def __init__(self, frame, work: Path | None = None) -> None:
        self.frame, self.work = frame, work  # work: where the sort is kept (linkage.spark.tables.stored)
        self._len: int | None = None

    def __len__(self) -> int:
        if self._len is None:
            self._len = self.frame.count()
        return self._len

    def take(self, positions: np.ndarray | None) -> pd.DataFrame:
        """The pairs at these positions of the (a, b) order (all of them when None), as pandas.
        Positions are numbered per range partition of the sort (no single-partition window); the
        sort's partition of each pair is fixed once (kept as a column of Parquet files, or a local
        checkpoint without a work folder) before the partitions' sizes are counted: two queries
        over the sort may part it differently (the range bounds are sampled, and adaptive
        execution may coalesce partitions), which at 3.6 million pairs
        numbered some pairs twice and others not at all, so that training saw another sample
        than the local engine's (a different model; measured, bench/linkage_spark.py at 500,000
        people)."""
        from pyspark.sql import Window
        from pyspark.sql import functions as F

        if positions is None:  # every pair: sorted here, no range-partitioning job in Spark
            out = self.frame.select("a", "b", "passes").toPandas()
            out = out.sort_values(["a", "b"], kind="mergesort").reset_index(drop=True)
            return out.astype({"a": np.int64, "b": np.int64, "passes": np.uint16})
        ordered = self.frame.orderBy("a", "b")
        if positions is not None:
            spark = self.frame.sparkSession
            part = stored(ordered.withColumn("part", F.spark_partition_id()), self.work, "sorted")
            sizes = part.groupBy("part").count().toPandas().sort_values("part")
            offsets = spark.createDataFrame(
                pd.DataFrame({"part": sizes["part"], "offset": sizes["count"].cumsum() - sizes["count"]})
            )
            within = Window.partitionBy("part").orderBy("a", "b")
            numbered = part.join(F.broadcast(offsets), "part").withColumn(
                "position", F.col("offset") + F.row_number().over(within) - 1
            )
            wanted = spark.createDataFrame(pd.DataFrame({"position": np.asarray(positions, dtype=np.int64)}))
            ordered = numbered.join(wanted, "position").orderBy("a", "b")
        out = ordered.select("a", "b", "passes").toPandas()
        return out.astype({"a": np.int64, "b": np.int64, "passes": np.uint16})


class SparkBlocker:
    """`candidate_pairs` in Spark: same arguments, the pairs as `SparkPairs`, the same stats."""

    def __init__(self, spark, work: Path) -> None:
        self.spark, self.work = spark, Path(work)
        self.variants = None  # the Spark table of variants, for scoring

    def __call__(
        self, variants: pd.DataFrame, spec: Spec, new: pd.Index | None = None, label: np.ndarray | None = None
    ) -> tuple[SparkPairs, list[PassStats]]:
        from pyspark.sql import functions as F

        # the Parquet file is the table every pass, scoring and clustering read (not cached in the
        # JVM's heap); written with its two added columns, no copy of the frame in the driver
        first = {"variant": variants.index.to_numpy(dtype=np.int64)}
        last = {"is_new": np.ones(len(variants), dtype=bool) if new is None else variants.index.isin(new)}
        v = self.spark.read.parquet(write_parquet(variants, self.work, "variants", first, last))
        self.variants = v
        found, big = None, None
        for i, p in enumerate(spec.passes):
            pairs, oversized = _pass_pairs(v, p, spec, one_frame=new is None and p.symmetric, new_only=new is not None)
            if new is not None and not p.symmetric:  # keyed differently on its two sides: a new variant on either
                pairs = pairs.unionAll(_pass_pairs(v, Pass(p.name, p.right_on, p.on), spec, False, True)[0])
            pairs = pairs.select("a", "b", F.lit(1 << i).alias("bit"))
            found = pairs if found is None else found.unionAll(pairs)
            if oversized is not None:
                oversized = oversized.agg(F.count(F.lit(1)).alias("blocks")).select(F.lit(i).alias("pass"), "blocks")
                big = oversized if big is None else big.unionAll(oversized)
        union = found.groupBy("a", "b").agg(F.bit_or("bit").alias("passes"))
        union = stored(union, self.work, "pairs")  # read by the statistics, training and scoring
        blocks = dict.fromkeys(range(len(spec.passes)), 0)
        if big is not None:  # one job for every pass's count of blocks too big
            blocks.update({int(x["pass"]): int(x["blocks"]) for x in big.collect()})
        stats = _stats(union, spec, variants, new, label, list(blocks.values()), self.spark, self.work)
        result = SparkPairs(union, self.work)
        result._len = stats[-1].pairs
        return result, stats


def _pass_pairs(v, p, spec: Spec, one_frame: bool, new_only: bool):
    """Pairs (a < b) of one pass, and (where the pass is capped) its blocks too big for it."""
    from pyspark.sql import functions as F

    on, right_on = list(p.on), list(p.right_on or p.on)
    left = v.dropna(subset=on)
    if new_only:
        left = left.where("is_new")
    right = v.dropna(subset=right_on)
    big = None
    if p.symmetric:  # a block's size is its rows on the right (everything), as blocking.py counts it
        sizes = right.groupBy(*right_on).count()
        big = sizes.where(F.col("count") > spec.max_block).drop("count")
        left = left.join(F.broadcast(big), on, "left_anti")  # a few blocks: no shuffle of the variants
        right = right.join(F.broadcast(big), right_on, "left_anti")
    cols = ["variant", "node", "source"]
    lhs = left.select(*cols, *[F.col(c).alias(f"k{i}") for i, c in enumerate(on)])
    rhs = right.select(
        *[F.col(c).alias(f"r_{c}") for c in cols], *[F.col(c).alias(f"k{i}") for i, c in enumerate(right_on)]
    )
    joined = lhs.join(rhs, [f"k{i}" for i in range(len(on))])
    if one_frame:  # one table: each pair once, as blocking.py makes it
        joined = joined.where(F.col("variant") < F.col("r_variant"))
    keep = (F.col("variant") != F.col("r_variant")) & (F.col("node") != F.col("r_node"))
    if spec.link_only:
        keep = keep & (F.col("source") != F.col("r_source"))
    pairs = joined.where(keep).select(
        F.least("variant", "r_variant").alias("a"), F.greatest("variant", "r_variant").alias("b")
    )
    return pairs, big  # (a pair found twice is kept once by the union's bit_or)


def _stats(union, spec: Spec, variants, new, label, oversized, spark, work: Path) -> list[PassStats]:
    """Per pass: its pairs (its bit set), new pairs (its bit the lowest set), reduction ratio and,
    with labels, the true pairs found; then the union: as blocking.candidate_pairs reports them."""
    from pyspark.sql import functions as F

    comparable = max(comparable_pairs(variants, spec, new), 1)
    total_true = true_pairs(variants, label, spec, new) if label is not None else None
    frame = union
    same = F.lit(False)
    if label is not None:
        labels = read(spark, pd.DataFrame({"v": np.arange(len(label), dtype=np.int64), "t": label}), work, "labels")
        frame = frame.join(labels.withColumnRenamed("v", "a").withColumnRenamed("t", "ta"), "a").join(
            labels.withColumnRenamed("v", "b").withColumnRenamed("t", "tb"), "b"
        )
        same = (F.col("ta") == F.col("tb")) & (F.col("ta") >= 0)
    lowest = F.col("passes").bitwiseAND(-F.col("passes"))
    aggs = [F.count(F.lit(1)).alias("union"), F.sum(same.cast("long")).alias("union_true")]
    for i in range(len(spec.passes)):
        has = F.col("passes").bitwiseAND(1 << i) != 0
        aggs += [
            F.sum(has.cast("long")).alias(f"p{i}"),
            F.sum((lowest == (1 << i)).cast("long")).alias(f"n{i}"),
            F.sum((has & same).cast("long")).alias(f"t{i}"),
        ]
    row = frame.agg(*aggs).collect()[0].asDict()
    row = {k: int(v or 0) for k, v in row.items()}
    out = []
    names = [(p.name, f"p{i}", f"n{i}", f"t{i}", oversized[i]) for i, p in enumerate(spec.passes)]
    names.append((UNION, "union", "union", "union_true", sum(oversized)))
    for name, pairs, fresh, true, big in names:
        s = PassStats(name, row[pairs], row[fresh], 1.0 - row[pairs] / comparable)
        if label is not None:
            s.true_pairs_found = row[true]
            s.pair_completeness = row[true] / total_true if total_true else 1.0
        s.oversized_blocks = big
        out.append(s)
    return out
