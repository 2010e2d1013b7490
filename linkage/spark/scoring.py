"""Scoring in Spark: each Arrow batch of candidate pairs, joined with the identities of its two
variants, is scored by the local engine's partition function (`linkage.engine.score_chunk`:
recordlinkage comparisons, then the stored model's weights) through `mapInPandas`.

What an executor receives: the spec and the model (its m and u, prior, term frequencies and
alias pairs), pickled with the function; the identities come with the pairs, batch by batch
(`spark.sql.execution.arrow.maxRecordsPerBatch` pairs a batch: linkage.spark.engine sizes it from
the run's memory budget). The scored pairs come back as Parquet (linkage.spark.tables.collect)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from linkage import model as fs
from linkage.compare import Comparer
from linkage.engine import score_chunk, tf_arrays
from linkage.spark.tables import as_local, collect
from linkage.spec import Spec


def scored_pairs(pairs, variants, spec: Spec, model: fs.Model, work: Path) -> tuple[pd.DataFrame, int]:
    """The pairs at or above the review threshold, as `linkage.engine.score_pairs` returns them
    (ordered by a, b), and the number of partitions they were scored in."""
    from pyspark.sql import functions as F

    columns = _identity_columns(spec, variants.columns)
    side = {x: variants.select(F.col("variant").alias(x), *[F.col(c).alias(f"{x}_{c}") for c in columns]) for x in "ab"}
    joined = pairs.select("a", "b").join(side["a"], "a").join(side["b"], "b")
    schema = ", ".join(["a long", "b long", "weight double", *[f"`{c}` byte" for c in spec.names]])
    scored = joined.mapInPandas(_scorer(spec, model, columns), schema)
    partitions = joined.rdd.getNumPartitions()
    out = collect(scored, work, "scored").sort_values(["a", "b"], kind="mergesort").reset_index(drop=True)
    out = out.astype({"a": np.int64, "b": np.int64, "weight": np.float64, **dict.fromkeys(spec.names, np.int8)})
    return out, partitions


def _identity_columns(spec: Spec, available) -> list[str]:
    """The variant columns comparisons and term frequencies read."""
    wanted = ["node", "source"]
    for c in spec.comparisons:
        wanted += [c.column, *(x for x in (c.bloom, c.initial, c.tf_by) if x)]
    return [c for c in dict.fromkeys(wanted) if c in available]


def _scorer(spec: Spec, model: fs.Model, columns: list[str]):
    aliases = model.alias_sets()

    def score(batches):
        for batch in batches:
            yield score_batch(batch, spec, model, aliases, columns)

    return score


def score_batch(batch: pd.DataFrame, spec: Spec, model: fs.Model, aliases: dict, columns: list[str]) -> pd.DataFrame:
    """One batch of pairs (a, b and each side's identity columns `a_*`, `b_*`): the batch's two
    sides become a variants frame of its own (a at 0..n-1, b at n..2n-1), scored by the local
    partition function; positions are mapped back to the global variant numbers."""
    n = len(batch)
    local = pd.concat([batch[[f"{x}_{c}" for c in columns]].set_axis(columns, axis=1) for x in "ab"], ignore_index=True)
    local = as_local(local)
    comparer = Comparer(local, spec, aliases)
    a = np.arange(n, dtype=np.int64)
    out = score_chunk(comparer, model, spec, tf_arrays(local, spec), a, a + n)
    out["a"] = batch["a"].to_numpy()[out["a"].to_numpy()]
    out["b"] = batch["b"].to_numpy()[out["b"].to_numpy() - n]
    return out
