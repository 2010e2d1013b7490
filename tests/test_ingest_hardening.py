"""Deliveries a careless or hostile provider might send, on DuckDB and PostgreSQL: wrong Parquet
types, a file in a subfolder, a knowledge date in the future, a manifest whose row_count is text,
and rows breaking rules of extracts.md section 3. Each is rejected or quarantined with a reason
that names it; nothing is applied wrongly and nothing is lost."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from outcomes.eventstore import connect
from outcomes.ingest import Ingestor
from outcomes.warehouse import resolve_target
from tests.backends import warehouse_target
from tests.hostile_deliveries import TODAY, build_hostile

BACKENDS = ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> tuple[Path, dict]:
    return build_hostile(tmp_path_factory.mktemp("hostile"))


@pytest.mark.parametrize("kind", BACKENDS)
def test_hostile_deliveries_are_rejected_or_quarantined_by_name(kind, hostile, tmp_path):
    landing, planted = hostile
    lines = []
    with warehouse_target(kind, tmp_path) as target, connect(resolve_target(target)) as backend:
        ingestor = Ingestor(backend, tmp_path / "archive", horizon=TODAY)
        report = ingestor.ingest(landing, on_delivery=lambda o: lines.append(o.line()))
        by_name = {o.file_name: o for o in report.outcomes}
        rejected = {name: o.reason for name, o in by_name.items() if o.status == "rejected"}

        assert (
            "date_of_death is string, expected date32[day]"
            in rejected[next(n for n in rejected if n.startswith("deaths") and n.endswith("_05.parquet"))]
        )
        assert any("trigger_offence is int64, expected bool" in r for r in rejected.values())
        assert any("spell_start is timestamp[" in r and "expected date32[day]" in r for r in rejected.values())
        assert any("row_count must be a whole number of rows, not '" in r for r in rejected.values())
        future = rejected["deaths_20990131_01.parquet"]
        assert future.startswith(f"extract_date 2099-01-31 is after {TODAY}")
        sub = [n for n in rejected if n.startswith("late/")]
        assert len(sub) == 1 and sub[0].startswith("late/treatment_"), rejected
        assert "in a subfolder of the landing folder (late/)" in rejected[sub[0]]
        assert len(rejected) == 6 and len(lines) == len(report.outcomes) == 10  # 4 applied, 6 rejected

        with backend.transaction() as s:
            ledger = s.fetch("select file_name, status, reason from events.deliveries").to_pylist()
            assert {r["file_name"] for r in ledger if r["status"] == "rejected"} == set(rejected)
            for source, wanted in planted.items():
                held = s.fetch(f"select record_id, rules from quarantine.{source}_rows").to_pylist()
                got = {r["record_id"]: r["rules"] for r in held}
                for record_id, rule in wanted.items():
                    assert rule in got[record_id].split("; "), (record_id, got.get(record_id))
                applied = s.fetch(f"select distinct record_id from events.{source}")["record_id"].to_pylist()
                assert not set(wanted) & set(applied)
            # every delivered row is applied, unchanged or quarantined: none lost
            for r in s.fetch(
                "select rows_delivered, rows_applied, rows_quarantined, rows_unchanged from events.deliveries "
                "where status = 'applied'"
            ).to_pylist():
                assert r["rows_delivered"] == r["rows_applied"] + r["rows_quarantined"] + r["rows_unchanged"] or (
                    r["rows_delivered"] == r["rows_applied"] + r["rows_quarantined"]
                )

        again = ingestor.ingest(landing)
        assert again.outcomes == [] and again.already_rejected == 6
        # moved up out of the subfolder, the snapshot is applied
        moved = tmp_path / "moved_landing"
        shutil.copytree(landing, moved)
        for p in (moved / "late").iterdir():
            p.rename(moved / p.name)
        third = ingestor.ingest(moved)
        assert [(o.file_name, o.status) for o in third.outcomes] == [(Path(sub[0]).name, "applied")]
