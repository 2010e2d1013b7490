"""The Airflow DAGs: they import cleanly, carry tags and retries, and a real run succeeds.

`dag.test()` exits normally even when a task fails, so the run's state is asserted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from outcomes.synth.generator import SynthConfig, synthesise

DAGS = Path(__file__).resolve().parents[1] / "dags"


@pytest.fixture(scope="module")
def airflow_env(tmp_path_factory):
    """An isolated Airflow home on SQLite, migrated once for this module."""
    home = tmp_path_factory.mktemp("airflow_home")
    env = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True, env={**os.environ, **env}
    )
    yield home
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="module")
def dagbag(airflow_env):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


def test_dags_import_without_errors(dagbag):
    assert dagbag.import_errors == {}
    assert "outcomes_refresh" in dagbag.dag_ids


def test_dags_have_tags_retries_and_no_catchup(dagbag):
    for dag_id in dagbag.dag_ids:
        dag = dagbag.get_dag(dag_id)
        assert "outcomes" in dag.tags, dag_id
        assert dag.catchup is False, dag_id
        for t in dag.tasks:
            assert t.retries >= 1, (dag_id, t.task_id)


def test_dag_files_do_no_heavy_work_at_import():
    """Parsing must not import the warehouse code (it is imported inside tasks)."""
    code = (
        f"import sys; sys.path.insert(0, {str(DAGS)!r}); import outcomes_refresh; "
        "heavy = [m for m in ('outcomes.ingest', 'duckdb', 'great_expectations', 'pandas') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_refresh_run_ingests_links_builds_and_publishes(dagbag, tmp_path):
    synthesise(SynthConfig(persons=300, seed=5, start="2024-01", months=3), tmp_path / "synth")
    conf = {
        "landing": str(tmp_path / "synth" / "landing"),
        "warehouse": str(tmp_path / "w" / "outcomes.duckdb"),
        "reports": str(tmp_path / "reports"),
    }
    run = dagbag.get_dag("outcomes_refresh").test(run_conf=conf)
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert run.state == "success", states
    assert set(states.values()) == {"success"}
    report = json.loads(next((tmp_path / "reports" / "ingest").glob("*.json")).read_text())
    assert len(report["deliveries"]) == 12
    assert all(d["status"] == "applied" for d in report["deliveries"])
    linked = json.loads(next((tmp_path / "reports" / "link").glob("*.json")).read_text())
    assert linked["records_new"] > 0 and len(linked["quality"]) == 10
    built = json.loads(next((tmp_path / "reports" / "build").glob("*.json")).read_text())
    assert {"marts.successful_completion", "marts.linkage_quality", "research.sustained_recovery"} <= set(
        built["tables"]
    )
    assert built["tables"]["marts.treatment_flow"]["rows"] > 0 and built["tests"] > 100
    published = json.loads(next((tmp_path / "reports" / "publish").glob("*.json")).read_text())
    assert "published.successful_completion" in published["tables"]
    report = next(tmp_path.joinpath("reports").glob("outcomes_report_*.html")).read_text()
    assert "Successful completion" in report or "successful_completion" in report
    # a second run finds nothing new and builds the same tables
    first_hashes = {t: v["sha256"] for t, v in built["tables"].items()}
    again = dagbag.get_dag("outcomes_refresh").test(run_conf=conf)
    assert again.state == "success"
    rebuilt = json.loads(next((tmp_path / "reports" / "build").glob("*.json")).read_text())
    assert {t: v["sha256"] for t, v in rebuilt["tables"].items()} == first_hashes
