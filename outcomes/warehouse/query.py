"""`outcomes query`: one SQL statement that cannot write, read outside the warehouse, or change who runs it.

Read-only by construction, not by parsing the statement:

- **DuckDB**: the file is opened `read_only` with external access off (no file but the warehouse
  can be read or written: no COPY, EXPORT, ATTACH of a file, read_csv, glob, INSTALL or LOAD), and
  the configuration locked so that no SET, RESET or PRAGMA can undo it.
- **PostgreSQL**: the statement runs in a READ ONLY transaction on a connection that *logs in* as
  the reader role `outcomes_query` (no superuser, no file-reading role, only USAGE and SELECT on
  the warehouse schemas), never as the URL's own user. `SET ROLE` alone would not do: a session
  whose login is a superuser can `set_config('role', 'postgres', …)` back inside one statement.
  The statement goes through the extended protocol, which takes exactly one statement.

The one-statement check before all this only makes the message friendlier.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import pyarrow as pa

from outcomes.warehouse.target import Target, WarehouseError

READER_ROLE = "outcomes_query"

# DuckDB settings of a query session; lock_configuration last, so nothing can be changed back.
DUCKDB_LOCKED = {
    "enable_external_access": False,
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "allow_community_extensions": False,
    "allow_unsigned_extensions": False,
    "lock_configuration": True,
}

# Built-in roles that reach the server's file system or programs: a login holding one is not a reader.
_SERVER_ROLES = ("pg_read_server_files", "pg_write_server_files", "pg_execute_server_program")


def one_statement(sql: str) -> str:
    import sqlparse

    statements = [s for s in sqlparse.split(sql) if s.strip().rstrip(";").strip()]
    if len(statements) != 1:
        raise WarehouseError(f"query takes exactly one SQL statement, not {len(statements)}")
    return statements[0].strip().rstrip(";").strip()


def read_only_query(target: Target, sql: str) -> pa.Table:
    statement = one_statement(sql)
    if target.is_url:
        return _postgres_query(target, statement)
    return _duckdb_query(target.path, statement)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _duckdb_query(path: Path, statement: str) -> pa.Table:
    import duckdb

    if not path.is_file():
        raise WarehouseError(f"no warehouse at {path}: run `outcomes refresh` (or ingest) first")
    try:
        con = duckdb.connect(str(path), read_only=True, config=DUCKDB_LOCKED)
    except duckdb.Error as exc:
        raise WarehouseError(f"cannot open {path} as a DuckDB warehouse: {_first_line(exc)}") from None
    try:
        relation = con.sql(statement)
        return relation.to_arrow_table() if relation is not None else pa.table({})
    except duckdb.Error as exc:
        raise WarehouseError(_first_line(exc)) from None
    finally:
        con.close()


# -- PostgreSQL ----------------------------------------------------------------------------------
def _postgres_query(target: Target, statement: str) -> pa.Table:
    import psycopg
    import sqlalchemy as sa

    url = sa.engine.make_url(target.value)
    params = _libpq_params(url)
    try:
        with psycopg.connect(**params, autocommit=True) as admin:
            login = _reader_login(admin, params, target)
        with psycopg.connect(**login, autocommit=True) as reader:
            return _run_read_only(reader, statement)
    except psycopg.Error as exc:
        raise WarehouseError(_first_line(exc)) from None


def _grant_schema_readers(target: Target) -> None:
    """The schema reader roles hold SELECT on every table there is (tables made since the last
    build included), so the reader sees the whole warehouse, and only reads it."""
    import sqlalchemy as sa

    from outcomes.eventstore import connect
    from outcomes.marts.roles import apply_grants

    try:
        with connect(target) as backend:
            apply_grants(backend)
    except sa.exc.SQLAlchemyError as exc:
        raise WarehouseError(_first_line(getattr(exc, "orig", None) or exc)) from None


def _libpq_params(url) -> dict:
    params = {"host": url.host, "port": url.port, "dbname": url.database, "user": url.username}
    if url.password is not None:
        params["password"] = url.password
    params.update({k: v for k, v in url.query.items() if isinstance(v, str)})
    return {k: v for k, v in params.items() if v is not None}


def _reader_login(admin, params: dict, target: Target) -> dict:
    """Connection parameters that log in as a role that can only read the warehouse.

    A URL whose user is no superuser and holds no file-reading role is such a login already (its
    transaction is read only). Otherwise the URL's user makes sure `outcomes_query` exists and reads
    every warehouse schema, gives it a fresh password valid for a minute (sent as a SCRAM verifier,
    so the server never sees it), and the query logs in as it.
    """
    from outcomes.marts.roles import SCHEMAS, schema_role

    row = admin.execute(
        "select rolsuper, rolcreaterole, "
        + ", ".join(f"pg_has_role(current_user, '{r}', 'member')" for r in _SERVER_ROLES)
        + " from pg_roles where rolname = current_user"
    ).fetchone()
    superuser, createrole, *server_roles = row
    if not superuser and not any(server_roles):
        return params
    if not (superuser or createrole):
        raise WarehouseError(
            f"the URL's user {params.get('user')!r} can read server files: `outcomes query` needs a URL whose "
            f"user is a plain reader, or one allowed to create the reader role {READER_ROLE}"
        )
    _grant_schema_readers(target)
    password = secrets.token_urlsafe(24)
    verifier = admin.pgconn.encrypt_password(password.encode(), READER_ROLE.encode(), b"scram-sha-256").decode()
    with admin.transaction():
        admin.execute("select pg_advisory_xact_lock(727002)")  # one reader set-up at a time per database
        # Roles are cluster-wide and several databases may race to create this one: tolerate the loser.
        admin.execute(
            f"do $$ begin create role {READER_ROLE} login; "
            "exception when duplicate_object or unique_violation then null; end $$"
        )
        admin.execute(f"alter role {READER_ROLE} login nosuperuser nocreatedb nocreaterole inherit noreplication")
        for schema in SCHEMAS:
            admin.execute(f"grant {schema_role(schema)} to {READER_ROLE}")
        until = admin.execute("select (now() + interval '1 minute')::text").fetchone()[0]
        admin.execute(f"alter role {READER_ROLE} password '{verifier}' valid until '{until}'")
    return {**params, "user": READER_ROLE, "password": password}


def _run_read_only(reader, statement: str) -> pa.Table:
    row = reader.execute(
        "select rolsuper, "
        + ", ".join(f"pg_has_role(current_user, '{r}', 'member')" for r in _SERVER_ROLES)
        + " from pg_roles where rolname = session_user"
    ).fetchone()
    if row is None or any(row):
        raise WarehouseError("refusing to query: the login is not a plain reader")
    reader.execute("begin transaction isolation level repeatable read, read only")
    reader.execute("select 1")  # takes the snapshot: from here the transaction cannot be made read-write
    try:
        # prepare=True sends the extended protocol's Parse: the server takes one statement, no more.
        cur = reader.execute(statement, prepare=True)
        if cur.description is None:
            return pa.table({})
        names = [c.name for c in cur.description]
        rows = cur.fetchall()
    finally:
        reader.execute("rollback")
    return pa.table({n: pa.array([r[i] for r in rows]) for i, n in enumerate(names)})
