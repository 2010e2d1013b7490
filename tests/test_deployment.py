"""The server deployment: docker-compose.yml wires Airflow (Celery executor, Redis broker) and the
warehouse on PostgreSQL from the project's locked image. (Images cannot be pulled here, so the
file is checked for what it promises, not started.)"""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_compose_runs_airflow_on_celery_and_the_warehouse_on_postgres():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "redis", "airflow-init", "airflow-scheduler", "airflow-worker", "airflow-apiserver"} <= set(
        services
    )
    for name, service in services.items():
        if name.startswith("airflow"):
            env = service["environment"]
            assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
            assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://redis:6379")
            assert env["OUTCOMES_WAREHOUSE"].startswith("postgresql+psycopg://")
            assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg://")
            assert service["build"] == "."
    init = (ROOT / "deploy" / "postgres-init.sh").read_text()
    assert "create database outcomes" in init and "create database airflow" in init


def test_the_image_installs_the_locked_environment_with_the_celery_extra():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "uv sync --frozen --no-dev --extra server" in dockerfile
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert "apache-airflow-providers-celery" in pyproject
    assert 'name = "apache-airflow-providers-celery"' in (ROOT / "uv.lock").read_text()
