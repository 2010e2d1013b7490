"""`outcomes query` tried as a hostile user would: every statement that wrote, read outside the
warehouse or escaped its role before, and more. Afterwards the data and the file system are as
they were, on DuckDB and on PostgreSQL (run with the URL of a superuser)."""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from pathlib import Path

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from outcomes.cli import app
from outcomes.eventstore import connect
from outcomes.warehouse import resolve_target
from tests.backends import fresh_postgres_url

runner = CliRunner()
TABLES = {
    "events.deaths": pa.table({"record_id": [f"d{i}" for i in range(205)], "n": list(range(205))}),
    "linkage.person_records": pa.table({"record_id": ["a", "b"], "person_id": [1, 2]}),
    "published.linkage_quality": pa.table({"source_a": ["treatment"], "match_rate": [0.9]}),
}


def _sql_type(t: pa.DataType) -> str:
    return "bigint" if pa.types.is_integer(t) else "double precision" if pa.types.is_floating(t) else "varchar"


def _make_warehouse(target: str) -> None:
    with connect(resolve_target(target)) as backend, backend.transaction() as s:
        for name, rows in TABLES.items():
            schema = name.split(".")[0]
            s.execute(f"create schema if not exists {schema}")
            cols = ", ".join(f"{f.name} {_sql_type(f.type)}" for f in rows.schema)
            s.execute(f"create table {name} ({cols})")
            s.insert(name, rows)


def _fingerprint(target: str) -> dict:
    """Every table of the warehouse schemas with its rows' digest (a new or emptied table shows)."""
    with connect(resolve_target(target)) as backend, backend.transaction() as s:
        names = s.fetch(
            "select table_schema || '.' || table_name as t from information_schema.tables "
            "where table_schema in ('events', 'linkage', 'published', 'public', 'main') order by 1"
        )["t"].to_pylist()
        out = {}
        for name in names:
            rows = s.fetch(f"select * from {name} order by 1").to_pylist()
            out[name] = hashlib.sha256(json.dumps(rows, default=str).encode()).hexdigest()
        return out


def _files(*roots: Path) -> dict[str, str]:
    out = {}
    for root in roots:
        for p in sorted(root.rglob("*")):
            if p.is_file():
                out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.fixture(scope="module")
def canary() -> Path:
    """A world-readable file outside the warehouse holding a secret no query may print."""
    folder = Path("/tmp") / f"outcomes_canary_{uuid.uuid4().hex[:10]}"
    folder.mkdir()
    folder.chmod(0o777)
    secret = folder / "secret.txt"
    secret.write_text(f"secret-{uuid.uuid4().hex}\n")
    secret.chmod(0o644)
    (folder / "in.csv").write_text("record_id,n\nx,1\n")
    (folder / "in.csv").chmod(0o644)
    yield folder
    for p in folder.iterdir():
        p.unlink()
    folder.rmdir()


def _hostile(target: str, canary: Path, leak: Path) -> list[str]:
    secret, inp = canary / "secret.txt", canary / "in.csv"
    common = [
        "begin read write; commit; delete from events.deaths; end",
        "delete from events.deaths",
        "update events.deaths set n = 0",
        "insert into events.deaths values ('x', 1)",
        "drop table published.linkage_quality",
        "truncate published.linkage_quality",
        "create table events.made (a int)",
        "create table events.made as select 1 as a",
        "alter table events.deaths add column z int",
        f"copy events.deaths to '{leak}'",
        f"copy (select * from linkage.person_records) to '{leak}'",
        f"copy events.deaths from '{inp}'",
        "begin; delete from events.deaths; commit",
        "with gone as (delete from events.deaths returning *) select count(*) from gone",
    ]
    if target.startswith("postgresql"):
        return [
            *common,
            f"select pg_read_file('{secret}')",
            f"select pg_read_binary_file('{secret}')",
            "select pg_ls_dir('/tmp')",
            f"select lo_import('{secret}')",
            "select lo_from_bytea(0, 'x'::bytea)",
            f"copy (select 1) to program 'touch {leak}'",
            "create extension dblink",
            "create extension file_fdw",
            "select dblink_exec('dbname=postgres host=127.0.0.1 user=postgres', 'create database leaked')",
            "set role postgres",
            "set session authorization postgres",
            "reset role",
            "set transaction read write",
            "select set_config('transaction_read_only', 'off', false)",
            "select set_config('role', 'postgres', true), "
            f"query_to_xml('select pg_read_file(''{secret}'')', true, true, '')",
            "select set_config('role', 'postgres', true), "
            "query_to_xml('delete from events.deaths returning 1', true, true, '')",
            f"do $$ begin perform set_config('role', 'postgres', true); "
            f"execute 'copy events.deaths to ''{leak}'''; end $$",
            "do $$ begin execute 'delete from events.deaths'; end $$",
            "create temp table t as select 1 as a",
            "alter role outcomes_query superuser",
            "grant outcomes_events to public",
            "call pg_catalog.pg_terminate_backend(0)",
            "prepare p as delete from events.deaths",
            "create function f() returns int language sql as 'select 1'",
        ]
    return [
        *common,
        f"copy (select 'x' as a) to '{target}' (format csv)",
        f"copy (select 'x' as a) to '{leak}' (format csv)",
        f"export database '{leak.parent / 'exported'}'",
        f"attach '{target}' as w2 (read_only false)",
        f"attach '{leak.parent / 'other.duckdb'}' as other",
        "attach ':memory:' as scratch",
        f"select * from read_csv('{secret}')",
        f"select * from read_text('{secret}')",
        "select * from read_csv('/etc/passwd')",
        f"select * from glob('{canary}/**')",
        "select * from glob('/etc/*')",
        "set enable_external_access = true",
        "reset enable_external_access",
        "set lock_configuration = false",
        "set allowed_directories = ['/']",
        "set temp_directory = '/tmp'",
        "pragma enable_profiling",
        "call enable_logging()",
        "install httpfs",
        "load httpfs",
        "force install json",
        f"load '{leak.parent / 'ext.duckdb_extension'}'",
        f"import database '{canary}'",
        "checkpoint",
        "select getenv('HOME')",
    ]


@pytest.fixture(scope="module", params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def warehouse(request, tmp_path_factory):
    if request.param == "duckdb":
        target = str(tmp_path_factory.mktemp("query_wh") / "outcomes.duckdb")
        _make_warehouse(target)
        yield target
    else:
        with fresh_postgres_url() as url:
            import sqlalchemy as sa

            _make_warehouse(url)
            engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
            with engine.connect() as con:  # installed by an administrator: still out of the reader's reach
                con.exec_driver_sql("create extension if not exists dblink")
            engine.dispose()
            yield url


def test_a_plain_select_still_works(warehouse):
    result = runner.invoke(
        app, ["query", "select count(*) as n from events.deaths", "--format", "json", "--warehouse", warehouse]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [{"n": 205}]
    linked = runner.invoke(
        app, ["query", "select * from linkage.person_records order by 1", "--format", "csv", "--warehouse", warehouse]
    )
    assert linked.exit_code == 0 and linked.stdout.splitlines()[1:] == ['"a",1', '"b",2']


@pytest.mark.postgres
def test_postgres_queries_log_in_as_the_reader(tmp_path):
    with fresh_postgres_url() as url:
        _make_warehouse(url)
        result = runner.invoke(
            app,
            [
                "query",
                "select session_user as s, current_user as c, current_setting('transaction_read_only') as ro",
                "--format",
                "json",
                "--warehouse",
                url,
            ],
        )
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout) == [{"s": "outcomes_query", "c": "outcomes_query", "ro": "on"}]


def test_no_statement_writes_or_reaches_outside(warehouse, canary, tmp_path):
    leak = canary / f"leak_{uuid.uuid4().hex[:6]}.csv"
    watched = [canary, Path(warehouse).parent] if "://" not in warehouse else [canary]
    before, files_before = _fingerprint(warehouse), _files(*watched)
    secret = (canary / "secret.txt").read_text().strip()
    cwd = os.getcwd()
    os.chdir(tmp_path)  # a relative path written by a statement would land here
    try:
        passed = []
        for statement in _hostile(warehouse, canary, leak):
            result = runner.invoke(app, ["query", statement, "--format", "json", "--warehouse", warehouse])
            assert secret not in result.output, statement
            assert "Traceback" not in result.output, statement
            if result.exit_code == 0:
                passed.append(statement)
            else:
                assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1, (
                    statement,
                    result.output,
                )
            assert _fingerprint(warehouse) == before, statement
            assert _files(*watched) == files_before, statement
            assert not any(tmp_path.iterdir()), statement
    finally:
        os.chdir(cwd)
    # The few that run change nothing but the session, which ends with the query (a large object made
    # in it is rolled back with it: checked below).
    harmless = {
        "checkpoint",
        "reset role",
        "select lo_from_bytea(0, 'x'::bytea)",
        "set transaction read write",
        "call pg_catalog.pg_terminate_backend(0)",
        "prepare p as delete from events.deaths",
    }
    assert set(passed) <= harmless, passed
    assert not leak.exists()
    if "://" in warehouse:
        import sqlalchemy as sa

        engine = sa.create_engine(warehouse)
        with engine.connect() as con:
            assert con.exec_driver_sql("select count(*) from pg_largeobject_metadata").scalar() == 0
            assert con.exec_driver_sql("select count(*) from pg_database where datname = 'leaked'").scalar() == 0
            assert not con.exec_driver_sql("select rolsuper from pg_roles where rolname = 'outcomes_query'").scalar()
        engine.dispose()


@pytest.mark.postgres
def test_a_plain_reader_url_is_used_as_it_is():
    import sqlalchemy as sa

    with fresh_postgres_url() as url:
        _make_warehouse(url)
        assert runner.invoke(app, ["query", "select 1", "--warehouse", url]).exit_code == 0  # makes the readers
        plain = f"outcomes_test_plain_{uuid.uuid4().hex[:8]}"
        engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
        with engine.connect() as con:
            con.exec_driver_sql(f"create role {plain} login in role outcomes_events")
        try:
            as_plain = url.replace("postgres@", f"{plain}@")
            ok = runner.invoke(
                app,
                [
                    "query",
                    "select count(*) as n, session_user as s from events.deaths",
                    "--format",
                    "json",
                    "--warehouse",
                    as_plain,
                ],
            )
            assert ok.exit_code == 0, ok.output
            assert json.loads(ok.stdout) == [{"n": 205, "s": plain}]
            refused = runner.invoke(app, ["query", "delete from events.deaths", "--warehouse", as_plain])
            assert refused.exit_code == 2 and "read-only transaction" in refused.stderr
        finally:
            with engine.connect() as con:
                con.exec_driver_sql(f"drop owned by {plain}")
                con.exec_driver_sql(f"drop role {plain}")
            engine.dispose()
