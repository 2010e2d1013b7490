"""write_changed_rows (dbt_project/macros/increments.sql) on a one-model project that uses the
project's macros: a row whose grain holds a null is replaced, not kept beside its new version, on
DuckDB and on PostgreSQL."""

from __future__ import annotations

import shutil
from contextlib import ExitStack
from pathlib import Path

import pytest
import sqlalchemy as sa

from outcomes.marts.dbt import PROJECT_DIR
from tests.backends import fresh_postgres_url

MODEL = """{{ config(
    materialized='incremental', incremental_strategy='replace_changed', changed_rows='true',
    write_changed_only=true, meta={'grain': ['k', 'g']}
) }}
select 1 as k, cast(null as varchar) as g, '{{ "new" if is_incremental() else "old" }}' as v
union all
select 2, 'x', 'same'
"""
# In the incremental run a row the table holds comes out twice (a key repeated by mistake): the
# write must leave the table with the key repeated, for the grain check to catch, not fold it.
DOUBLED = """{{ config(
    materialized='incremental', incremental_strategy='replace_changed', changed_rows='true',
    write_changed_only=true, meta={'grain': ['k']}
) }}
select 2 as k, 'same' as v
{% if is_incremental() %}union all select 2, 'same'{% endif %}
"""


def _project(root: Path, profile: str) -> Path:
    project = root / "project"
    (project / "models").mkdir(parents=True)
    shutil.copytree(PROJECT_DIR / "macros", project / "macros")
    (project / "models" / "m.sql").write_text(MODEL)
    (project / "models" / "d.sql").write_text(DOUBLED)
    (project / "dbt_project.yml").write_text(
        "name: changed_rows\nversion: '1.0.0'\nconfig-version: 2\nprofile: changed_rows\n"
        "macro-paths: [macros]\nmodel-paths: [models]\n"
    )
    (project / "profiles.yml").write_text(f"changed_rows:\n  target: t\n  outputs:\n    t:\n{profile}")
    return project


def _run(project: Path) -> None:
    from dbt.cli.main import dbtRunner

    args = ["run", "--project-dir", str(project), "--profiles-dir", str(project), "--quiet", "--no-write-json"]
    outcome = dbtRunner().invoke([*args, "--target-path", str(project / "target"), "--log-path", str(project)])
    assert outcome.success, outcome.exception or [r.message for r in outcome.result]


@pytest.mark.parametrize("kind", ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_null_in_the_grain_is_replaced_and_a_repeated_key_kept_for_the_check(kind, tmp_path, monkeypatch):
    monkeypatch.delenv("OUTCOMES_PREVIOUS_AS_OF", raising=False)
    with ExitStack() as stack:
        if kind == "duckdb":
            database = tmp_path / "w.duckdb"
            profile = f"      type: duckdb\n      path: '{database}'\n      schema: main\n"
        else:
            url = sa.engine.make_url(stack.enter_context(fresh_postgres_url()))
            profile = (
                f"      type: postgres\n      host: '{url.host}'\n      port: {url.port or 5432}\n"
                f"      user: '{url.username}'\n      password: '{url.password or ''}'\n"
                f"      dbname: '{url.database}'\n      schema: public\n      threads: 1\n"
            )
        project = _project(tmp_path, profile)
        _run(project)  # the table, created
        _run(project)  # incremental: row 1 (a null in its grain) changes, row 2 is the same
        if kind == "duckdb":
            import duckdb

            with duckdb.connect(str(database)) as con:
                rows = sorted(con.execute("select k, g, v from main.m").fetchall())
                doubled = con.execute("select count(*) from main.d").fetchall()[0][0]
        else:
            engine = sa.create_engine(url)
            with engine.connect() as con:
                rows = sorted(tuple(r) for r in con.exec_driver_sql("select k, g, v from public.m").fetchall())
                doubled = con.exec_driver_sql("select count(*) from public.d").scalar()
            engine.dispose()
    assert rows == [(1, None, "new"), (2, "x", "same")]
    assert doubled >= 2
