"""The Airflow DAGs: they import cleanly, carry tags and retries, and real runs (Airflow on
SQLite, the DuckDB warehouse) publish each month as of its data interval, reproducibly.

`dag.test()` exits normally even when a task fails, so run and task states are asserted.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from outcomes.synth.generator import SynthConfig, synthesise
from tests.refresh_runs import DAGS, airflow_home, built, published, run_month

MONTHS = {"2024-03-05": "2024-02-29", "2024-04-05": "2024-03-31"}


@pytest.fixture(scope="module")
def dagbag(tmp_path_factory):
    with airflow_home(tmp_path_factory.mktemp("airflow_home")):
        from airflow.dag_processing.dagbag import DagBag  # after AIRFLOW_HOME is set: Airflow reads it on import

        yield DagBag(dag_folder=str(DAGS))


def test_dags_import_without_errors(dagbag):
    assert dagbag.import_errors == {}
    assert "outcomes_refresh" in dagbag.dag_ids


def test_dags_have_tags_retries_and_no_catchup(dagbag):
    for dag_id in dagbag.dag_ids:
        dag = dagbag.get_dag(dag_id)
        assert "outcomes" in dag.tags, dag_id
        assert dag.catchup is False, dag_id
        for t in dag.tasks:
            if not t.task_id.startswith("wait_"):  # a sensor's deadline is its retry
                assert t.retries >= 1, (dag_id, t.task_id)
            assert t.on_failure_callback, (dag_id, t.task_id)


def test_delivery_sensors_defer_one_per_source(dagbag):
    from outcomes.ops.sensors import DeliverySensor

    dag = dagbag.get_dag("outcomes_refresh")
    sensors = {t.task_id: t for t in dag.tasks if t.task_id.startswith("wait_")}
    assert set(sensors) == {"wait_treatment", "wait_convictions", "wait_benefits", "wait_deaths"}
    # The DagBag holds the parsed operators: their policies are those docs/operations.md states.
    policies = {task_id: s.policy for task_id, s in sensors.items()}
    assert policies == {
        "wait_treatment": "stop",
        "wait_convictions": "continue",
        "wait_benefits": "continue",
        "wait_deaths": "continue",
    }
    assert all(isinstance(s, DeliverySensor) for s in sensors.values())
    assert dag.get_task("knowledge_date").upstream_task_ids == set(sensors)


def test_dag_files_do_no_heavy_work_at_import():
    """Parsing must not import the warehouse code (it is imported inside tasks)."""
    code = (
        f"import sys; sys.path.insert(0, {str(DAGS)!r}); import outcomes_refresh; "
        "heavy = [m for m in ('outcomes.ingest', 'duckdb', 'great_expectations', 'pandas', 'linkage.run') "
        "if m in sys.modules]; print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1:] in ([], [""])


def test_monthly_runs_publish_as_of_their_interval_and_backfills_reproduce(dagbag, tmp_path):
    """Deployment (a): two months published in order; the month before them, never run, is then
    backfilled (linked beneath the later runs) and published; re-running the first month after both
    gives back its published and built hashes. (Four DAG runs: each is a dbt build, CI's main cost.)"""
    synthesise(SynthConfig(persons=300, seed=5, start="2024-01", months=3), tmp_path / "synth")
    reports = tmp_path / "reports"
    conf = {
        "landing": str(tmp_path / "synth" / "landing"),
        "warehouse": str(tmp_path / "w" / "outcomes.duckdb"),
        "reports": str(reports),
        "truth": str(tmp_path / "synth" / "truth"),
    }
    dag = dagbag.get_dag("outcomes_refresh")
    first_published, first_built = {}, {}
    for day, as_of in MONTHS.items():
        run = run_month(dag, day, conf)
        assert run.state == "success", run.tasks
        assert set(run.tasks.values()) == {"success"}, run.tasks
        first_published[as_of], first_built[as_of] = published(reports, as_of), built(reports, as_of)

    # Each run knew only the deliveries up to its knowledge date.
    ingested = json.loads((reports / "ingest" / "2024-02-29.json").read_text())
    assert sorted(d["file_name"][-20:-8] for d in ingested["deliveries"]) == sorted(
        f"_{date}_01" for date in ("20240131", "20240229") for _ in range(4)
    )
    assert all(d["status"] == "applied" for d in ingested["deliveries"])
    files = [d["file_name"] for d in json.loads((reports / "ingest" / "2024-03-31.json").read_text())["deliveries"]]
    assert len(files) == 4 and all("20240331" in f for f in files), files
    linked = json.loads((reports / "link" / "2024-02-29.json").read_text())
    assert linked["as_of"] == "2024-02-29" and linked["records_new"] > 0 and len(linked["quality"]) == 10
    feb, mar = first_built["2024-02-29"], first_built["2024-03-31"]
    assert feb["as_of"] == "2024-02-29" and mar["as_of"] == "2024-03-31"
    # The first month builds in full, with dbt's unit tests and every data test.
    assert feb["mode"] == "full" and feb["tests"] > 0, feb["plan"]
    assert feb["tables"]["marts.treatment_flow"]["rows"] > 0
    # Later knowledge changes the outcome tables: the months are not one build under two names.
    assert feb["tables"]["marts.treatment_flow"]["sha256"] != mar["tables"]["marts.treatment_flow"]["sha256"]
    assert "published.successful_completion" in first_published["2024-02-29"]
    for as_of in MONTHS.values():
        assert "Successful completion" in (reports / f"outcomes_report_{as_of}.html").read_text()

    # A month never run before, backfilled after the later ones: linked beneath their runs, built and
    # published as of its date.
    run = run_month(dag, "2024-02-05", conf)
    assert run.state == "success", run.tasks
    linked = json.loads((reports / "link" / "2024-01-31.json").read_text())
    assert linked["as_of"] == "2024-01-31" and linked["later"] == "2024-02-29" and linked["records_new"] > 0
    assert built(reports, "2024-01-31")["tables"]["marts.treatment_flow"]["rows"] > 0
    assert "published.successful_completion" in published(reports, "2024-01-31")
    # A backfill of a month after later months (and an earlier one) have landed gives back its tables.
    run = run_month(dag, "2024-03-05", conf)
    assert run.state == "success", run.tasks
    assert published(reports, "2024-02-29") == first_published["2024-02-29"]
    assert built(reports, "2024-02-29")["tables"] == first_built["2024-02-29"]["tables"]


def test_link_step_takes_its_engine_from_configuration(dagbag, monkeypatch):
    """The DAG's link step passes the engine its `link_engine` param names (or, when empty,
    $OUTCOMES_LINK_ENGINE at run time) to linkage; an engine that does not exist fails the task
    at once, not after retries."""
    from airflow.sdk.exceptions import AirflowFailException

    import outcomes.pipeline.tasks as tasks

    seen = []
    monkeypatch.setattr(tasks, "link_prepare_task", lambda *args: seen.append(args[-1]) or ["chunk"])
    prepare = dagbag.get_dag("outcomes_refresh").get_task("link_prepare").python_callable
    params = {"warehouse": "w.duckdb", "truth": "", "link_chunk_pairs": None}
    monkeypatch.setenv("OUTCOMES_LINK_ENGINE", "spark")
    assert prepare("2024-02-29", params={**params, "link_engine": ""}) == ["chunk"]
    assert prepare("2024-02-29", params={**params, "link_engine": "local"}) == ["chunk"]
    assert seen == ["spark", "local"]
    with pytest.raises(AirflowFailException, match="unknown link engine 'mapreduce'"):
        prepare("2024-02-29", params={**params, "link_engine": "mapreduce"})
