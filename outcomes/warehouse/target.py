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


# The first bytes of a DuckDB database file: 8 bytes of checksum, then the magic "DUCK".
_DUCKDB_MAGIC = b"DUCK"


def checked_target(value: str | None = None, *, creating: bool = False, create_folder: bool = False) -> Target:
    """`--warehouse TARGET` resolved and checked, so that a wrong one fails with one line naming it.

    A URL must be a PostgreSQL one that parses; a path must be a DuckDB file, or (`creating`, for
    the command that makes a warehouse) a new file in a folder that exists: a missing folder is
    made only with `create_folder` (or for the default target), never silently.
    """
    target = resolve_target(value)
    if target.is_url:
        scheme, rest = target.value.split("://", 1)
        if scheme in ("postgresql", "postgres"):  # the driver installed is psycopg (3)
            target = Target(f"postgresql+psycopg://{rest}")
        _check_url(target)
        return target
    path = target.path
    if path.is_dir():
        raise WarehouseError(f"--warehouse {path} is a folder: give the DuckDB file, e.g. {path / 'outcomes.duckdb'}")
    if path.exists():
        try:
            with path.open("rb") as f:
                head = f.read(12)
        except OSError as exc:
            raise WarehouseError(f"--warehouse {path} cannot be read: {exc.strerror}") from None
        # An empty file whose lock another process holds is a warehouse that command is making
        # this moment (DuckDB locks the file before it writes the header): DuckDB's open says so.
        if not head and _locked_elsewhere(path):
            return target
        if head[8:12] != _DUCKDB_MAGIC:
            raise WarehouseError(f"--warehouse {path} is not a DuckDB warehouse file")
        return target
    if not creating:
        raise WarehouseError(f"no warehouse at {path}: run `outcomes ingest` (or refresh) first")
    folder = path.parent
    for parent in [folder, *folder.parents]:
        if parent.exists() and not parent.is_dir():
            raise WarehouseError(f"--warehouse {path}: {parent} is a file, not a folder")
    if not folder.exists():
        # The default place (warehouse/ in the working folder) is the project's own: made on first use.
        if not create_folder and target.value != DEFAULT_TARGET:
            raise WarehouseError(
                f"--warehouse {path}: folder {folder} does not exist (create it, or pass --create-folder)"
            )
        folder.mkdir(parents=True)
    return target


def _locked_elsewhere(path: Path) -> bool:
    """Whether another process holds a lock on the file (DuckDB's lock is a POSIX record lock)."""
    import fcntl

    try:
        f = path.open("rb+")
    except OSError:
        return False  # not writable here: the header check says what it is
    with f:
        try:
            fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
        fcntl.lockf(f, fcntl.LOCK_UN)
    return False


def _check_url(target: Target) -> None:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    shown = target.value.split("@")[-1] if "@" in target.value else target.value
    scheme = target.value.split("://", 1)[0]
    if scheme != "postgresql+psycopg":
        raise WarehouseError(
            f"--warehouse {scheme}://…: unsupported; give a DuckDB path or postgresql+psycopg://user@host/db"
        )
    try:
        url = make_url(target.value)
        _ = url.port  # a port that is not a number raises here
    except ValueError:
        raise WarehouseError(f"--warehouse …{shown}: not a valid URL (its port is not a number)") from None
    except ArgumentError as exc:
        raise WarehouseError(f"--warehouse …{shown}: not a valid URL ({str(exc).splitlines()[0][:80]})") from None
    if not url.database:
        raise WarehouseError(f"--warehouse {target.redacted}: the URL names no database")
