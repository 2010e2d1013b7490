"""Warehouse backends for tests: a DuckDB file, or a fresh PostgreSQL database per test.

PostgreSQL is required under CI (CI=true); elsewhere its tests are skipped when no server answers.
"""

from __future__ import annotations

import os
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import in_ci

PG_ADMIN_URL = os.environ.get("OUTCOMES_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def postgres_available() -> bool:
    import sqlalchemy as sa

    try:
        engine = sa.create_engine(PG_ADMIN_URL)
        with engine.connect():
            pass
        engine.dispose()
        return True
    except sa.exc.SQLAlchemyError:
        return False


@contextmanager
def fresh_postgres_url():
    import sqlalchemy as sa

    if not postgres_available():
        if in_ci():
            pytest.fail(f"PostgreSQL is required under CI and did not answer at {PG_ADMIN_URL}")
        pytest.skip("no PostgreSQL server answering (CI runs these)")
    name = f"outcomes_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as con:
        con.exec_driver_sql(f"create database {name}")
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as con:
            con.exec_driver_sql(f"drop database if exists {name} with (force)")
        admin.dispose()


@contextmanager
def warehouse_target(kind: str, tmp_path: Path):
    """A warehouse target string of the given kind: 'duckdb' or 'postgres'."""
    if kind == "duckdb":
        yield str(tmp_path / "warehouse" / "outcomes.duckdb")
    else:
        with fresh_postgres_url() as url:
            yield url
