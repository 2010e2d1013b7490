"""The monthly refresh of the outcomes warehouse.

Providers deliver on month ends; the refresh runs on the 5th and applies whatever has landed.
Task bodies live in `outcomes.pipeline.tasks`; this file only wires them: ingest >> link >> build
(dbt, as of the latest applied extract) >> publish (disclosure control and the HTML report).
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.sdk import Asset, Param, dag, task

EVENTS = Asset("outcomes-events", uri="file://outcomes/warehouse/events")
SPINE = Asset("outcomes-person-spine", uri="file://outcomes/warehouse/linkage")
MARTS = Asset("outcomes-marts", uri="file://outcomes/warehouse/marts")
PUBLISHED = Asset("outcomes-published", uri="file://outcomes/warehouse/published")


@dag(
    dag_id="outcomes_refresh",
    description="Monthly refresh: ingest new deliveries, link new records, build the outcome marts, publish",
    schedule="0 6 5 * *",
    start_date=pendulum.datetime(2023, 5, 1, tz="Europe/London"),
    catchup=False,
    max_active_runs=1,
    tags=["outcomes", "monthly"],
    default_args={"retries": 2, "retry_delay": timedelta(minutes=5), "owner": "outcomes-operations"},
    params={
        "landing": Param(os.environ.get("OUTCOMES_LANDING", "data/synthetic/landing"), type="string"),
        "warehouse": Param(os.environ.get("OUTCOMES_WAREHOUSE", "warehouse/outcomes.duckdb"), type="string"),
        "reports": Param(os.environ.get("OUTCOMES_REPORTS", "warehouse/reports"), type="string"),
        # Synthetic runs only: ground truth for linkage precision and recall ("" for none).
        "truth": Param(os.environ.get("OUTCOMES_TRUTH", ""), type="string"),
    },
)
def outcomes_refresh():
    @task(outlets=[EVENTS])
    def ingest(params=None, data_interval_end=None) -> str:
        from outcomes.pipeline.tasks import ingest_task

        return ingest_task(
            params["landing"], params["warehouse"], params["reports"], data_interval_end.strftime("%Y-%m-%d")
        )

    @task(outlets=[SPINE])
    def link(params=None, data_interval_end=None) -> str:
        from outcomes.pipeline.tasks import link_task

        return link_task(
            params["warehouse"], params["reports"], data_interval_end.strftime("%Y-%m-%d"), params["truth"] or None
        )

    @task(outlets=[MARTS])
    def build(params=None, data_interval_end=None) -> str:
        from outcomes.pipeline.tasks import build_task

        return build_task(params["warehouse"], params["reports"], data_interval_end.strftime("%Y-%m-%d"))

    @task(outlets=[PUBLISHED])
    def publish(params=None, data_interval_end=None) -> str:
        from outcomes.pipeline.tasks import publish_task

        return publish_task(params["warehouse"], params["reports"], data_interval_end.strftime("%Y-%m-%d"))

    ingest() >> link() >> build() >> publish()


outcomes_refresh()
