"""The two warehouse backends behind one small interface: the embedded DuckDB file and a
PostgreSQL server reached through SQLAlchemy. SQL handed to them is written to run on both."""

from __future__ import annotations

import io
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv

from outcomes.warehouse.target import Target, WarehouseError

_NAMED = re.compile(r"(?<![:\w]):([a-z_][a-z0-9_]*)")


class Backend(ABC):
    """A connection to the warehouse; `transaction()` yields a session that commits or rolls back."""

    dialect: str

    @abstractmethod
    def close(self) -> None: ...

    @abstractmethod
    def transaction(self) -> AbstractContextManager[Session]: ...

    @contextmanager
    def exclusive(self, on_wait: Callable[[], None] | None = None) -> Iterator[None]:  # noqa: ARG002
        """Held for a whole run that must be the only one on this warehouse (an ingest). DuckDB's
        file lock already keeps a second writing process out, so this holds nothing more there."""
        yield

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Session(ABC):
    @abstractmethod
    def execute(self, sql: str, params: dict[str, Any] | None = None) -> None: ...

    @abstractmethod
    def fetch(self, sql: str, params: dict[str, Any] | None = None) -> pa.Table: ...

    def scalar(self, sql: str, params: dict[str, Any] | None = None) -> Any:
        table = self.fetch(sql, params)
        return table.column(0)[0].as_py() if table.num_rows else None

    @abstractmethod
    def insert(self, table_name: str, rows: pa.Table) -> None:
        """Bulk-insert an Arrow table whose column names are the target table's."""


# -- DuckDB --------------------------------------------------------------------------------------
class DuckDBSession(Session):
    def __init__(self, con) -> None:
        self.con = con

    def execute(self, sql, params=None):
        self.con.execute(_NAMED.sub(r"$\1", sql), params or {})

    def fetch(self, sql, params=None):
        return self.con.sql(_NAMED.sub(r"$\1", sql), params=params or None).to_arrow_table()

    def insert(self, table_name, rows):
        if rows.num_rows == 0:
            return
        # Read by name for this one statement (a replacement scan) and copied. A registered view
        # stays in DuckDB's catalog, with its Arrow data, until the transaction commits, even once
        # unregistered: a whole link run's identities in slices held 480 MB at 100,000 people.
        # (A connection with enable_external_access=false refuses replacement scans: none writes.)
        _insert_rows = rows  # read by DuckDB by its name
        cols = ", ".join(rows.column_names)
        self.con.execute(f"insert into {table_name} ({cols}) select {cols} from _insert_rows")


class DuckDBBackend(Backend):
    dialect = "duckdb"

    def __init__(self, path: str, read_only: bool = False) -> None:
        from pathlib import Path

        import duckdb

        Path(path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self.con = duckdb.connect(path, read_only=read_only)
        except duckdb.Error as exc:
            raise WarehouseError(f"cannot open {path}: {str(exc).splitlines()[0]}") from None

    def close(self):
        self.con.close()

    @contextmanager
    def transaction(self):
        self.con.execute("begin transaction")
        try:
            yield DuckDBSession(self.con)
        except BaseException:
            self.con.execute("rollback")
            raise
        self.con.execute("commit")


# -- PostgreSQL ----------------------------------------------------------------------------------
class PostgresSession(Session):
    def __init__(self, con) -> None:
        self.con = con  # SQLAlchemy Connection

    def execute(self, sql, params=None):
        from sqlalchemy import text

        self.con.execute(text(sql), params or {})

    def fetch(self, sql, params=None):
        from sqlalchemy import text

        # A query is read through a server-side cursor in slices, so a large result (a snapshot's
        # state) never sits in memory whole as Python rows; PostgreSQL declares cursors for queries only.
        query = sql.lstrip().split(None, 1)[0].lower() in ("select", "with", "values")
        options = {"stream_results": True, "max_row_buffer": SLICE_ROWS} if query else {}
        result = self.con.execute(text(sql), params or {}, execution_options=options)
        names = list(result.keys())
        if not names:
            return pa.table({})
        slices = [[pa.array([r[i] for r in part]) for i in range(len(names))] for part in result.partitions(SLICE_ROWS)]
        return pa.table({n: _one_type([s[i] for s in slices]) for i, n in enumerate(names)})

    def insert(self, table_name, rows):
        if rows.num_rows == 0:
            return
        raw = self.con.connection.driver_connection  # psycopg 3 connection, same transaction
        cols = ", ".join(rows.column_names)
        options = pacsv.WriteOptions(include_header=False, quoting_style="needed")
        with raw.cursor() as cur, cur.copy(f"copy {table_name} ({cols}) from stdin with (format csv)") as copy:
            # One COPY, written a slice at a time, so the CSV of a large delivery is never held whole.
            for start in range(0, rows.num_rows, SLICE_ROWS):
                buf = io.BytesIO()
                # combine_chunks: pyarrow 26's CSV writer garbles rows after an empty leading chunk
                pacsv.write_csv(rows.slice(start, SLICE_ROWS).combine_chunks(), buf, options)
                copy.write(buf.getbuffer())


# The advisory lock key of a run that must be alone on its database (`Backend.exclusive`).
RUN_LOCK = 727003

# Rows per slice of a PostgreSQL fetch or COPY.
SLICE_ROWS = 100_000


def _one_type(chunks: list[pa.Array]) -> pa.ChunkedArray:
    """The slices of one fetched column as one typed column (a slice of nulls has no type of its own;
    numeric values may infer different decimal precisions)."""
    if not chunks:
        return pa.chunked_array([], pa.null())
    common = pa.unify_schemas([pa.schema([("c", c.type)]) for c in chunks], promote_options="permissive")[0].type
    return pa.chunked_array([c.cast(common) for c in chunks], common)


class PostgresBackend(Backend):
    dialect = "postgresql"

    def __init__(self, url: str) -> None:
        import sqlalchemy as sa

        self.engine = sa.create_engine(url, pool_pre_ping=True)
        try:
            with self.engine.connect():
                pass
        except sa.exc.SQLAlchemyError as exc:
            raise WarehouseError(
                f"cannot reach {Target(url).redacted}: {str(exc.orig or exc).splitlines()[0]}"
            ) from None

    def close(self):
        self.engine.dispose()

    @contextmanager
    def exclusive(self, on_wait=None):
        """A session-level advisory lock on a fixed key, held on its own connection for the run: a
        second ingest of the same database waits here, then finds what the first applied. (Advisory
        locks are per database, so ingests of other databases on the server go on.)"""
        with self.engine.connect() as con:
            con.exec_driver_sql("set application_name = 'outcomes ingest'")
            if not con.exec_driver_sql(f"select pg_try_advisory_lock({RUN_LOCK})").scalar():
                if on_wait is not None:
                    on_wait()
                con.exec_driver_sql(f"select pg_advisory_lock({RUN_LOCK})")
            con.commit()
            try:
                yield
            finally:
                con.exec_driver_sql(f"select pg_advisory_unlock({RUN_LOCK})")
                con.commit()

    @contextmanager
    def transaction(self):
        with self.engine.begin() as con:
            # One writer at a time: a second ingest waits instead of interleaving.
            con.exec_driver_sql("select pg_advisory_xact_lock(727001)")
            yield PostgresSession(con)


def connect(target: Target, read_only: bool = False) -> Backend:
    if target.is_url:
        if not target.value.startswith("postgresql"):
            raise WarehouseError(f"unsupported warehouse URL {target.redacted}: use postgresql+psycopg://…")
        return PostgresBackend(target.value)
    return DuckDBBackend(str(target.path), read_only=read_only)
