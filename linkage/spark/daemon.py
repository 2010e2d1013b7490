"""PySpark's worker daemon, with the linkage modules imported before it forks its workers
(`spark.python.daemon.module`): every worker inherits them instead of importing recordlinkage
and pandas again (seconds each)."""

from pyspark.daemon import manager

import linkage.spark.decide
import linkage.spark.scoring  # noqa: F401

if __name__ == "__main__":
    manager()
