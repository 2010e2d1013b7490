"""Which engine links: `local` (linkage.run, one process) or `spark` (linkage.spark, a Spark
cluster named by SPARK_MASTER). Chosen by configuration: an explicit name (the CLI's --engine,
the DAG's `link_engine` param), else $OUTCOMES_LINK_ENGINE, else local."""

from __future__ import annotations

import os
from collections.abc import Callable

ENGINES = ("local", "spark")
DEFAULT = "local"


def engine_name(name: str | None = None) -> str:
    """The engine to use; a clear error for one that does not exist."""
    chosen = (name or os.environ.get("OUTCOMES_LINK_ENGINE") or DEFAULT).strip().lower()
    if chosen not in ENGINES:
        source = "" if name else " (from OUTCOMES_LINK_ENGINE)"
        raise ValueError(f"unknown link engine {chosen!r}{source}: choose one of {', '.join(ENGINES)}")
    return chosen


def link_function(name: str | None = None) -> Callable:
    """`link(backend, truth=, retrain=, as_of=, records=, on_stage=)` of the chosen engine."""
    if engine_name(name) == "spark":
        from linkage.spark.engine import link_spark

        return link_spark
    from linkage.run import link

    return link
