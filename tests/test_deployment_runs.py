"""Every deployment actually run: the refresh DAG end to end under a real scheduler.

(a) Airflow on SQLite with the DuckDB warehouse is tests/test_dags.py (through `dag.test()`).
(b) Airflow's metadata on PostgreSQL, the LocalExecutor, the warehouse on PostgreSQL.
(c) The CeleryExecutor with Redis (127.0.0.1:6379) and two workers started here; the mapped link
    tasks run on both.
Run and task states come from Airflow's metadata database; outcome rows from the warehouse.
"""

from __future__ import annotations

import pytest

from outcomes.synth.generator import SynthConfig, synthesise
from tests.airflow_services import Deployment
from tests.backends import fresh_postgres_url

pytestmark = pytest.mark.postgres

DAG = "outcomes_refresh"


@pytest.fixture(scope="module")
def population(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    synthesise(SynthConfig(persons=300, seed=21, start="2024-01", months=3), out)
    return out


def _warehouse_rows(url: str) -> dict[str, int]:
    from outcomes.eventstore import connect
    from outcomes.warehouse import resolve_target

    with connect(resolve_target(url)) as backend, backend.transaction() as s:
        return {
            "deliveries_applied": s.scalar("select count(*) from events.deliveries where status = 'applied'"),
            "spine": s.scalar("select count(*) from linkage.person_records"),
            "successful_completion": s.scalar("select count(*) from marts.successful_completion"),
            "published": s.scalar("select count(*) from published.successful_completion"),
        }


def _assert_run(deployment: Deployment, run_id: str, executor: str) -> dict:
    states = deployment.task_states(run_id)
    assert deployment.run_state(DAG, run_id) == "success", states
    assert {v["state"] for v in states.values()} == {"success"}, states
    expected = {"wait_treatment", "knowledge_date", "ingest", "link_score", "link_finish", "build", "publish"}
    assert expected <= {task for task, _ in states}
    # queued by the scheduler's executor, not run in-process
    job = next(v["queued_by_job_id"] for (task, _), v in states.items() if task == "ingest")
    assert deployment.scheduler_executor(job).startswith("SchedulerJob"), job
    assert executor in deployment.tail("scheduler", 400)
    return states


def test_local_executor_with_metadata_and_warehouse_on_postgres(population, tmp_path):
    with fresh_postgres_url() as metadata, fresh_postgres_url() as warehouse:
        with Deployment(tmp_path / "airflow", metadata, "LocalExecutor") as deployment:
            conf = {
                "landing": str(population / "landing"),
                "warehouse": warehouse,
                "reports": str(tmp_path / "reports"),
                "truth": "",
            }
            run_id = deployment.backfill(DAG, "2024-04-05", conf)
            _assert_run(deployment, run_id, "LocalExecutor")
        rows = _warehouse_rows(warehouse)
    assert rows["deliveries_applied"] == 12
    assert rows["spine"] > 300 and rows["successful_completion"] > 0 and rows["published"] > 0
    assert (tmp_path / "reports" / "outcomes_report_2024-03-31.html").exists()


def test_celery_executor_with_two_workers_sharing_the_mapped_link_tasks(population, tmp_path):
    import uuid

    queue = f"outcomes_test_{uuid.uuid4().hex[:10]}"  # Redis is shared: only our workers serve this queue
    with fresh_postgres_url() as metadata, fresh_postgres_url() as warehouse:
        extra = {
            "AIRFLOW__CELERY__BROKER_URL": "redis://127.0.0.1:6379/0",
            "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + metadata,
            "AIRFLOW__OPERATORS__DEFAULT_QUEUE": queue,
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "tests.worker_name.hostname",
        }
        with Deployment(tmp_path / "airflow", metadata, "CeleryExecutor", extra) as deployment:
            for name in ("worker1", "worker2"):
                env = {**deployment.env, "TEST_WORKER_NAME": name}
                deployment.start(
                    name,
                    "celery", "worker", "--queues", queue, "--concurrency", "1",
                    "--celery-hostname", f"{name}@{queue}", "--skip-serve-logs",
                    env=env,
                )  # fmt: skip
            conf = {
                "landing": str(population / "landing"),
                "warehouse": warehouse,
                "reports": str(tmp_path / "reports"),
                "truth": "",
                "link_chunk_pairs": 150,
            }
            run_id = deployment.backfill(DAG, "2024-04-05", conf)
            states = _assert_run(deployment, run_id, "CeleryExecutor")
        rows = _warehouse_rows(warehouse)
    scoring = {k: v for k, v in states.items() if k[0] == "link_score"}
    assert len(scoring) >= 4, scoring
    assert {v["queue"] for v in states.values()} == {queue}
    assert {v["hostname"] for v in scoring.values()} == {"worker1", "worker2"}, scoring
    assert {v["hostname"] for v in states.values()} <= {"worker1", "worker2"}
    assert rows["deliveries_applied"] == 12 and rows["successful_completion"] > 0 and rows["published"] > 0
