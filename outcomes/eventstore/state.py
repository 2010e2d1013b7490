"""Reading the as-of state: the only way downstream code reads events."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa

from outcomes.contract import SOURCES
from outcomes.eventstore.backend import Backend
from outcomes.eventstore.schema import as_of_sql


def state_as_of(backend: Backend, source: str, as_of: dt.date) -> pa.Table:
    """Every record of `source` in its latest version known on `as_of`, ordered by record_id."""
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}")
    with backend.transaction() as s:
        return s.fetch(f"{as_of_sql(source)} order by record_id", {"as_of": as_of})
