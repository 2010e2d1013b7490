"""Resolving `--warehouse TARGET` (interfaces.md): a DuckDB path or a SQLAlchemy URL."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

DEFAULT_TARGET = "warehouse/outcomes.duckdb"
ENV_VAR = "OUTCOMES_WAREHOUSE"


class WarehouseError(RuntimeError):
    """The warehouse cannot be reached or refused the work; the message says why."""


@dataclass(frozen=True)
class Target:
    value: str

    @property
    def is_url(self) -> bool:
        return "://" in self.value

    @property
    def path(self) -> Path:
        if self.is_url:
            raise WarehouseError(f"{self.redacted} is a server URL, not a DuckDB file")
        return Path(self.value)

    @property
    def default_archive(self) -> Path:
        """Where delivered files are archived: beside the DuckDB file, or $OUTCOMES_ARCHIVE for a server."""
        if self.is_url:
            return Path(os.environ.get("OUTCOMES_ARCHIVE", "warehouse/archive"))
        return self.path.parent / "archive"

    @property
    def redacted(self) -> str:
        """The target with any password hidden, for messages and logs."""
        if not self.is_url:
            return self.value
        from sqlalchemy.engine import make_url

        return make_url(self.value).render_as_string(hide_password=True)

    def read_only_query(self, sql: str) -> pa.Table:
        """Run one statement in a read-only session and return its rows."""
        import sqlparse

        statements = [s for s in sqlparse.split(sql) if s.strip().rstrip(";").strip()]
        if len(statements) != 1:
            raise WarehouseError(f"query takes exactly one SQL statement, not {len(statements)}")
        if self.is_url:
            return self._server_query(statements[0])
        if not self.path.exists():
            raise WarehouseError(f"no warehouse at {self.path}: run `outcomes refresh` (or ingest) first")
        import duckdb

        try:
            with duckdb.connect(str(self.path), read_only=True) as con:
                return con.sql(statements[0]).to_arrow_table()
        except duckdb.Error as exc:
            raise WarehouseError(str(exc).splitlines()[0]) from None

    def _server_query(self, sql: str) -> pa.Table:
        import sqlalchemy as sa

        engine = sa.create_engine(self.value)
        try:
            with engine.connect() as con:
                con.exec_driver_sql("SET TRANSACTION READ ONLY")
                result = con.exec_driver_sql(sql)
                names = list(result.keys())
                rows = result.fetchall()
        except sa.exc.SQLAlchemyError as exc:
            raise WarehouseError(str(exc.orig if getattr(exc, "orig", None) else exc).splitlines()[0]) from None
        finally:
            engine.dispose()
        return pa.table({n: pa.array([r[i] for r in rows]) for i, n in enumerate(names)})


def resolve_target(value: str | None = None) -> Target:
    return Target(value or os.environ.get(ENV_VAR) or DEFAULT_TARGET)
