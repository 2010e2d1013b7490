"""`link` on Spark: the local run's stages (linkage.run: prepare, score, finish) with blocking,
scoring and the person-level decisions in Spark, and the same writes.

The driver reads the records and builds nodes and variants (pandas, as the local engine does),
trains the model on a sample of the pairs when none is stored, turns scored variant pairs into
node pairs and numbers the persons; then `linkage.run.finish` writes the spine, link events,
decisions and quality to the warehouse exactly as a local run does. Identities travel to Spark
as Parquet in a work folder (`OUTCOMES_SPARK_WORK`, default a temporary folder: on a cluster a
path every executor can read), removed when the run ends.

The run's memory budget (`memory_limit`, as `linkage.run.link` reads it) sizes what a Python
worker holds at once (`batch_sizes`): the pairs of a scoring batch and the nodes of a group of
components. A session started here sizes its JVM from it too (linkage.spark.session).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from linkage.run import LinkResult, _Laps, apply_memory_limit, block, finish, read
from linkage.spark.blocking import SparkBlocker
from linkage.spark.decide import GROUP_NODES, SparkClustering
from linkage.spark.scoring import scored_pairs
from linkage.spark.session import DEFAULTS, budget, spark_session

ARROW_BATCH = "spark.sql.execution.arrow.maxRecordsPerBatch"
WORKER_SHARE = 8  # what all Python workers hold at once: an eighth of the budget, shared among them
SCORE_PAIR_BYTES = 10_240  # a worker's peak bytes per pair of its scoring batch (both identities, comparisons):
# measured at 500,000 people, two full batches of 40,690 pairs less the idle daemon, 10.1 KB a pair
# resident (7.7 KB proportional); 5.2 to 5.9 KB at 100,000 people (docs/linkage.md); reckoned 4, then 6 KB
GROUP_NODE_BYTES = 4096  # a worker's peak bytes per node of its group of components (records, identities, decisions)


def batch_sizes(limit_bytes: int, workers: int) -> tuple[int, int]:
    """Pairs per scoring batch and nodes per group of components, such that `workers` Python
    workers at once hold about an eighth of the budget: (between 10,000 and 1,000,000 pairs,
    between 20,000 and 2,000,000 nodes)."""
    each = limit_bytes // WORKER_SHARE // max(workers, 1)
    pairs = min(max(each // SCORE_PAIR_BYTES, 10_000), 1_000_000)
    nodes = min(max(each // GROUP_NODE_BYTES, 20_000), 2_000_000)
    return int(pairs), int(nodes)


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
    spark = spark or spark_session(memory_limit=memory_limit)
    base = work or os.environ.get("OUTCOMES_SPARK_WORK") or None
    if base:
        Path(base).mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="outcomes-spark-", dir=base))
    limit = budget(memory_limit)
    batch = spark.conf.get(ARROW_BATCH)
    group_nodes = GROUP_NODES
    # sized from the budget on this machine (local[n]: the workers share its memory), unless the
    # batch was set (spark-submit, OUTCOMES_SPARK_CONF_...); a cluster's executors have their own
    if limit is not None and spark.sparkContext.master.startswith("local") and batch == DEFAULTS[ARROW_BATCH]:
        workers = spark.sparkContext.defaultParallelism  # Python workers at once (local[n]: n)
        pairs, group_nodes = batch_sizes(limit, workers)
        spark.conf.set(ARROW_BATCH, str(pairs))
    try:
        blocker = SparkBlocker(spark, folder)
        # linkage.run.prepare's stages, with the records given dropped once `read` has taken its
        # copy (as linkage.run.link drops them): a caller that hands them over (the bench) does not
        # keep every record's identity block beside the run's own frames to the end
        applied_limit = apply_memory_limit(backend, memory_limit)
        started = time.perf_counter()
        inputs = read(backend, truth, retrain, as_of, records, _Laps({}, on_stage), False, started)
        del records
        if isinstance(inputs, LinkResult):
            return inputs
        inputs.result.memory_limit = applied_limit
        state = block(inputs, blocker)
        scored = [None]  # handed over to finish: emptied once node pairs are made
        scored[0], state.result.chunks = scored_pairs(
            state.pairs.frame, blocker.variants, state.spec, state.model, folder
        )
        state.pairs = None
        return finish(backend, state, scored, SparkClustering(spark, folder, blocker.variants, group_nodes))
    finally:
        spark.conf.set(ARROW_BATCH, batch)  # the session's own again
        spark.catalog.clearCache()
        shutil.rmtree(folder, ignore_errors=True)
