"""The server deployment as written: docker-compose.yml keeps its services, pinned image tags and
health checks, and its environment is exactly what the code reads. (Images cannot be pulled on
these machines; tests/test_deployment_runs.py runs the same Airflow set-ups from processes.)"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CODE = ("outcomes", "linkage", "dags")
SERVICES = {
    "postgres",
    "redis",
    "mail",
    "airflow-init",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
}


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def outcomes_vars_read_by_code() -> set[str]:
    """OUTCOMES_* names the Python code and dbt's project read, less those our own code sets for
    the dbt child process (outcomes/marts/dbt.py), which no deployment sets."""
    read = set()
    for folder in CODE:
        for path in (ROOT / folder).rglob("*.py"):
            # a name ending in "_" is a prefix (OUTCOMES_SPARK_CONF_<option>), not a variable
            read |= set(re.findall(r"[\"'](OUTCOMES_[A-Z_]*[A-Z])[\"']", path.read_text()))
    for path in (ROOT / "dbt_project").rglob("*.yml"):
        if "target" not in path.parts and "dbt_packages" not in path.parts:
            read |= set(re.findall(r"env_var\(\s*['\"](OUTCOMES_[A-Z_]+)['\"]", path.read_text()))
    dbt_py = (ROOT / "outcomes" / "marts" / "dbt.py").read_text()
    set_for_dbt = set(re.findall(r"\b(OUTCOMES_[A-Z_]+)=", dbt_py))  # NAME=value on dbt's command line
    set_for_dbt |= set(re.findall(r"env\[[\"'](OUTCOMES_[A-Z_]+)[\"']\]\s*=", dbt_py))  # dbt's environment
    return read - set_for_dbt


def test_compose_keeps_its_services_with_pinned_tags_and_health_checks():
    services = compose()["services"]
    assert set(services) == SERVICES
    for name, service in services.items():
        image = service["image"]
        repo, _, tag = image.rpartition(":")
        assert repo and re.fullmatch(r"v?\d+(\.\d+)+", tag), (name, image)  # a version, never `latest`
        if name != "airflow-init":  # a one-off job, waited for by exit status
            assert service["healthcheck"]["test"], name
    for name, service in services.items():
        if name.startswith("airflow"):
            env = service["environment"]
            assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
            assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://redis:6379")
            assert env["OUTCOMES_WAREHOUSE"].startswith("postgresql+psycopg://")
            assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg://")
            assert service["build"] == "."
            assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
    init = (ROOT / "deploy" / "postgres-init.sh").read_text()
    assert "create database outcomes" in init and "create database airflow" in init


def test_compose_sets_exactly_the_environment_the_code_reads():
    from airflow.configuration import retrieve_configuration_description

    options = retrieve_configuration_description(include_providers=True)  # Airflow's and its providers'
    code = outcomes_vars_read_by_code()
    assert {"OUTCOMES_WAREHOUSE", "OUTCOMES_SMTP_HOST", "OUTCOMES_GATE_QUARANTINE_LIMIT"} <= code
    for name, service in compose()["services"].items():
        if not name.startswith("airflow"):
            continue
        env = set(service["environment"])
        assert {v for v in env if v.startswith("OUTCOMES_")} == code, name
        others = env - code
        for var in others:  # every other variable is an Airflow option Airflow knows
            m = re.fullmatch(r"AIRFLOW__([A-Z_]+?)__([A-Z_]+)", var)
            assert m and m[2].lower() in options.get(m[1].lower(), {}).get("options", {}), (name, var)


def test_the_image_installs_the_locked_environment_with_the_celery_extra():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "uv sync --frozen --no-dev --extra server" in dockerfile
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert "apache-airflow-providers-celery" in pyproject
    assert 'name = "apache-airflow-providers-celery"' in (ROOT / "uv.lock").read_text()
