"""The backends' bulk paths: rows inserted and fetched in slices come back whole and typed alike."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pyarrow as pa
import pytest

from outcomes.eventstore import backend as backends
from outcomes.eventstore import connect
from outcomes.warehouse import resolve_target
from tests.backends import warehouse_target


@pytest.mark.parametrize("kind", ["duckdb", "postgres"])
def test_rows_round_trip_across_slices(kind, tmp_path, monkeypatch):
    # Slices of 3 rows: the first slice of `note` is all null, a later one not; NUL-free text with
    # commas, quotes and new lines crosses the CSV of COPY.
    monkeypatch.setattr(backends, "SLICE_ROWS", 3)
    rows = pa.table(
        {
            "id": pa.array(range(10), pa.int64()),
            "note": pa.array([None] * 4 + ['a, "b"', "line\nbreak", None, "x", "", "z"], pa.string()),
            "day": pa.array([dt.date(2024, 1, 1) + dt.timedelta(days=i) for i in range(10)], pa.date32()),
        }
    )
    with warehouse_target(kind, tmp_path) as value, connect(resolve_target(value)) as backend:
        with backend.transaction() as s:
            s.execute("create table t (id bigint, note varchar, day date)")
            s.insert("t", rows)
        with backend.transaction() as s:
            back = s.fetch("select id, note, day from t order by id")
            scaled = s.fetch("select cast(id as numeric(12, 0)) / 4 as q from t order by id")
            # Not a query: PostgreSQL cannot stream it through a cursor, and need not.
            shown = s.fetch("show timezone") if kind == "postgres" else None
    assert back.column("id").to_pylist() == list(range(10))
    assert back.column("note").to_pylist() == rows.column("note").to_pylist()
    assert back.column("day").to_pylist() == rows.column("day").to_pylist()
    assert [Decimal(str(v)) for v in scaled.column("q").to_pylist()] == [Decimal(i) / 4 for i in range(10)]
    assert shown is None or shown.num_rows == 1
