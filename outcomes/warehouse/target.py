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
        """Run one statement in a session that can only read the warehouse (see `query`)."""
        from outcomes.warehouse.query import read_only_query

        return read_only_query(self, sql)


def resolve_target(value: str | None = None) -> Target:
    return Target(value or os.environ.get(ENV_VAR) or DEFAULT_TARGET)
