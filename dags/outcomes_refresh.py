"""The monthly refresh of the outcomes warehouse.

Providers deliver on month ends; the refresh runs on the 5th. Each run works as of its knowledge
date: the latest extract_date on or before its data interval's end, so re-running or backfilling
a month (in any order) publishes the same tables that month published first.

    wait_<source> (deferrable, per source) >> knowledge_date >> ingest (deliveries up to it)
        >> link_prepare >> link_score (mapped, one per chunk of pairs) >> link_finish
        >> build (dbt, tests included) >> quality_gate >> publish

Task bodies live in `outcomes.pipeline.tasks`; this file only wires them. Every task's failure
records an incident (`ops.incidents`) and e-mails it (outcomes.ops.notifier). docs/operations.md
is the operator's guide.
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.sdk import Asset, Param, dag, task
from airflow.sdk.exceptions import AirflowFailException

from outcomes.ops.notifier import IncidentNotifier
from outcomes.ops.sensors import DeliverySensor

SOURCES = ("treatment", "convictions", "benefits", "deaths")
# What a run does when a source's month has not landed by the deadline (docs/operations.md):
# treatment defines every cohort, so without it nothing is published; the outcome sources only
# make a month's outcomes later, so the run goes on, the lateness recorded as an incident.
LATE_POLICY = {"treatment": "stop", "convictions": "continue", "benefits": "continue", "deaths": "continue"}

# What each step leaves in the warehouse (one asset per schema a step writes).
EVENTS = Asset("outcomes-events", uri="outcomes://warehouse/events")
SPINE = Asset("outcomes-person-spine", uri="outcomes://warehouse/linkage")
MARTS = Asset("outcomes-marts", uri="outcomes://warehouse/marts")
PUBLISHED = Asset("outcomes-published", uri="outcomes://warehouse/published")


def _fail(exc: Exception) -> AirflowFailException:
    """Bad data or a closed gate does not improve by retrying: fail at once, with the reason."""
    return AirflowFailException(str(exc))


@dag(
    dag_id="outcomes_refresh",
    description="Monthly refresh as of the data interval: wait for deliveries, ingest, link, build, gate, publish",
    schedule="0 6 5 * *",
    start_date=pendulum.datetime(2023, 5, 1, tz="Europe/London"),
    catchup=False,
    max_active_runs=1,
    tags=["outcomes", "monthly"],
    default_args={
        "retries": 2,
        "retry_delay": timedelta(minutes=5),
        "owner": "outcomes-operations",
        "on_failure_callback": IncidentNotifier(),
    },
    params={
        "landing": Param(os.environ.get("OUTCOMES_LANDING", "data/synthetic/landing"), type="string"),
        "warehouse": Param(os.environ.get("OUTCOMES_WAREHOUSE", "warehouse/outcomes.duckdb"), type="string"),
        "reports": Param(os.environ.get("OUTCOMES_REPORTS", "warehouse/reports"), type="string"),
        # Synthetic runs only: ground truth for linkage precision and recall ("" for none).
        "truth": Param(os.environ.get("OUTCOMES_TRUTH", ""), type="string"),
        # How long each sensor waits for its source's month after the run starts.
        "delivery_wait_seconds": Param(2 * 86_400, type="number", minimum=0),
        # Candidate pairs per mapped scoring task (null: the engine's chunk, a million pairs).
        "link_chunk_pairs": Param(None, type=["null", "integer"], minimum=1),
        # The linkage engine: local (mapped scoring tasks) or spark (the cluster of $SPARK_MASTER,
        # from link_prepare); "" takes $OUTCOMES_LINK_ENGINE at run time, else local.
        "link_engine": Param(os.environ.get("OUTCOMES_LINK_ENGINE", ""), type="string"),
        # The quality gate (outcomes.ops.gate); null takes $OUTCOMES_GATE_* or the defaults.
        "quarantine_limit": Param(None, type=["null", "number"]),
        "quarantine_limits": Param({}, type="object"),
        "match_rate_points": Param(None, type=["null", "number"]),
        # Rebuild every table from the event state rather than only the changed persons (docs/marts.md).
        "full_refresh": Param(False, type="boolean"),
    },
)
def outcomes_refresh():
    sensors = [
        DeliverySensor(
            task_id=f"wait_{source}",
            source=source,
            landing="{{ params.landing }}",
            policy=LATE_POLICY[source],
            wait_seconds="{{ params.delivery_wait_seconds }}",
            poke_interval=60.0,
            retries=0,
        )
        for source in SOURCES
    ]

    @task(trigger_rule="none_failed")
    def knowledge_date(params=None, data_interval_end=None) -> str:
        from outcomes.pipeline.tasks import knowledge_task

        try:
            return knowledge_task(
                params["landing"], params["warehouse"], data_interval_end.in_timezone("Europe/London").to_date_string()
            )
        except ValueError as exc:
            raise _fail(exc) from None

    @task(outlets=[EVENTS])
    def ingest(as_of: str, params=None) -> str:
        from outcomes.pipeline.tasks import ingest_task

        return ingest_task(params["landing"], params["warehouse"], params["reports"], as_of)

    # Linkage as mapped tasks: prepare writes the candidate pairs in chunks, one task scores each
    # (spread over the workers), finish clusters them and writes the spine. Only paths in XCom.
    @task
    def link_prepare(as_of: str, params=None) -> list[str]:
        from linkage.engines import engine_name
        from outcomes.pipeline.tasks import link_prepare_task

        try:  # an engine that does not exist is configuration, not a passing fault
            engine = engine_name(params["link_engine"] or None)
        except ValueError as exc:
            raise _fail(exc) from None
        truth, chunk = params["truth"] or None, params["link_chunk_pairs"]
        return link_prepare_task(params["warehouse"], as_of, truth, chunk, engine)

    @task
    def link_score(path: str) -> str:
        from outcomes.pipeline.tasks import link_score_task

        return link_score_task(path)

    @task(outlets=[SPINE])
    def link_finish(as_of: str, scored: list[str], params=None) -> str:
        from outcomes.pipeline.tasks import link_finish_task

        return link_finish_task(params["warehouse"], params["reports"], as_of, scored)

    @task(outlets=[MARTS])
    def build(as_of: str, params=None) -> str:
        from outcomes.pipeline.tasks import build_task
        from outcomes.warehouse import WarehouseError

        try:
            return build_task(params["warehouse"], params["reports"], as_of, params.get("full_refresh", False))
        except WarehouseError as exc:  # a failing dbt test, or records missing from the spine
            raise _fail(exc) from None

    @task
    def quality_gate(as_of: str, ingest_report: str, params=None) -> str:
        from outcomes.ops.gate import GateClosed
        from outcomes.pipeline.tasks import gate_task

        try:
            return gate_task(
                params["warehouse"],
                params["reports"],
                as_of,
                ingest_report,
                params["quarantine_limit"],
                params["quarantine_limits"],
                params["match_rate_points"],
            )
        except GateClosed as exc:
            raise _fail(exc) from None

    @task(outlets=[PUBLISHED])
    def publish(as_of: str, params=None) -> str:
        from outcomes.pipeline.tasks import publish_task

        return publish_task(params["warehouse"], params["reports"], as_of)

    as_of = knowledge_date()
    sensors >> as_of
    ingested = ingest(as_of)
    chunks = link_prepare(as_of)
    linked = link_finish(as_of, link_score.expand(path=chunks))
    built = build(as_of)
    gate = quality_gate(as_of, ingested)
    ingested >> chunks
    linked >> built >> gate >> publish(as_of)


outcomes_refresh()
