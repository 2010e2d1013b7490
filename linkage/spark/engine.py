"""`link` on Spark: the local run's stages (linkage.run: prepare, score, finish) with blocking,
scoring and the person-level decisions in Spark, and the same writes.

The driver reads the records and builds nodes and variants (pandas, as the local engine does),
trains the model on a sample of the pairs when none is stored, turns scored variant pairs into
node pairs and numbers the persons; then `linkage.run.finish` writes the spine, link events,
decisions and quality to the warehouse exactly as a local run does. Identities travel to Spark
as Parquet in a work folder (`OUTCOMES_SPARK_WORK`, default a temporary folder: on a cluster a
path every executor can read), removed when the run ends.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from linkage.run import LinkResult, finish, prepare
from linkage.spark.blocking import SparkBlocker
from linkage.spark.decide import SparkClustering
from linkage.spark.scoring import scored_pairs
from linkage.spark.session import spark_session


def link_spark(
    backend,
    truth: Path | None = None,
    retrain: bool = False,
    as_of: dt.date | None = None,
    records=None,
    on_stage: Callable[[str], None] | None = None,
    spark=None,
    work: Path | None = None,
    memory_limit: str | None = None,
) -> LinkResult:
    """`linkage.run.link` on Spark (`spark`: a session, default `spark_session()`): the same
    arguments, the same result and writes."""
    spark = spark or spark_session()
    base = work or os.environ.get("OUTCOMES_SPARK_WORK") or None
    if base:
        Path(base).mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="outcomes-spark-", dir=base))
    try:
        blocker = SparkBlocker(spark, folder)
        state = prepare(backend, truth, retrain, as_of, records, on_stage, blocker=blocker, memory_limit=memory_limit)
        if isinstance(state, LinkResult):
            return state
        scored, state.result.chunks = scored_pairs(state.pairs.frame, blocker.variants, state.spec, state.model)
        state.pairs = None
        return finish(backend, state, scored, SparkClustering(spark, folder, blocker.variants))
    finally:
        spark.catalog.clearCache()
        shutil.rmtree(folder, ignore_errors=True)
