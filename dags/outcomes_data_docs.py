"""The data documentation after each publication: dbt's static docs site and great-expectations'
data docs of the delivery suites, written beside the report (`<reports>/data-docs/`), and the
report of the published knowledge date written again so that it links them.

Scheduled on the `outcomes-published` asset that `outcomes_refresh`'s publish task updates, so it
runs after every publication without slowing the refresh itself. The task body lives in
`outcomes.report.data_docs`.
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.sdk import Asset, Param, dag, task

from outcomes.ops.notifier import IncidentNotifier

PUBLISHED = Asset("outcomes-published", uri="outcomes://warehouse/published")  # as in outcomes_refresh


@dag(
    dag_id="outcomes_data_docs",
    description="After each publication: dbt docs and great-expectations data docs beside the report",
    schedule=[PUBLISHED],
    start_date=pendulum.datetime(2023, 5, 1, tz="Europe/London"),
    catchup=False,
    max_active_runs=1,
    tags=["outcomes", "docs"],
    default_args={
        "retries": 1,
        "retry_delay": timedelta(minutes=5),
        "owner": "outcomes-operations",
        "on_failure_callback": IncidentNotifier(),
    },
    params={
        "warehouse": Param(os.environ.get("OUTCOMES_WAREHOUSE", "warehouse/outcomes.duckdb"), type="string"),
        "reports": Param(os.environ.get("OUTCOMES_REPORTS", "warehouse/reports"), type="string"),
    },
)
def outcomes_data_docs():
    @task
    def data_docs(params=None) -> str:
        from outcomes.report.data_docs import publish_data_docs

        return publish_data_docs(params["warehouse"], params["reports"])

    data_docs()


outcomes_data_docs()
