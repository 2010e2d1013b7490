"""Deliveries a careless or hostile provider might send, on DuckDB and PostgreSQL: wrong Parquet
types, a file in a subfolder, a knowledge date in the future, a manifest whose row_count is text,
and rows breaking rules of extracts.md section 3. Each is rejected or quarantined with a reason
that names it; nothing is applied wrongly and nothing is lost."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from outcomes.contract.extracts import delivery_filename, manifest_filename
from outcomes.eventstore import connect
from outcomes.ingest import Ingestor
from outcomes.pseudonymise.delivery import write_manifest
from outcomes.synth.generator import SynthConfig, synthesise
from outcomes.warehouse import resolve_target
from tests.backends import warehouse_target

BACKENDS = ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)]
TODAY = dt.date(2026, 12, 1)


def _deliver(table: pa.Table, folder: Path, source: str, date: dt.date, seq: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / delivery_filename(source, date, seq)
    pq.write_table(table, path)
    write_manifest(path, source, date, table.num_rows, "hostile test")
    return path


def _replace(table: pa.Table, column: str, rows: list[int], value) -> pa.Table:
    values = table[column].to_pylist()
    for r in rows:
        values[r] = value
    return table.set_column(table.schema.get_field_index(column), column, pa.array(values, table[column].type))


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("hostile")
    synthesise(SynthConfig(persons=300, seed=3, start="2024-01", months=2), out)
    src = out / "landing"
    landing = out / "hostile_landing"
    landing.mkdir()
    first = min(dt.date.fromisoformat(json.loads(m.read_text())["extract_date"]) for m in src.glob("*.json"))
    second = max(dt.date.fromisoformat(json.loads(m.read_text())["extract_date"]) for m in src.glob("*.json"))

    def read(source: str, date: dt.date) -> pa.Table:
        return pq.read_table(src / delivery_filename(source, date, 1))

    planted = {}
    # month 1: rows breaking section 3's rules, the rest valid
    treatment = read("treatment", first)
    open_rows = pc.is_null(treatment["discharge_date"]).to_numpy(zero_copy_only=False).nonzero()[0]
    treatment = _replace(treatment, "discharge_reason", [int(open_rows[0])], "dropped_out")
    treatment = _replace(treatment, "forename_initial", [int(open_rows[1])], "ab")
    treatment = _replace(treatment, "la_code", [int(open_rows[2])], "ZZ9999999")
    treatment = _replace(treatment, "la_code", [int(open_rows[3])], "E99999999")
    planted["treatment"] = {
        treatment["record_id"][int(open_rows[0])].as_py(): "discharge_reason_while_open",
        treatment["record_id"][int(open_rows[1])].as_py(): "format:forename_initial",
        treatment["record_id"][int(open_rows[2])].as_py(): "code_list:la_code",
        treatment["record_id"][int(open_rows[3])].as_py(): "code_list:la_code",
    }
    _deliver(treatment, landing, "treatment", first, 1)
    convictions = _replace(read("convictions", first), "offence_code", [0], "NOTACODE")
    planted["convictions"] = {convictions["record_id"][0].as_py(): "format:offence_code"}
    _deliver(convictions, landing, "convictions", first, 1)
    for source in ("benefits", "deaths"):
        _deliver(read(source, first), landing, source, first, 1)

    # Parquet types that a cast would have let through
    deaths = read("deaths", second)
    _deliver(
        deaths.set_column(
            deaths.schema.get_field_index("date_of_death"),
            "date_of_death",
            pc.cast(deaths["date_of_death"], pa.string()),
        ),
        landing,
        "deaths",
        second,
        5,
    )
    conv = read("convictions", second)
    _deliver(
        conv.set_column(
            conv.schema.get_field_index("trigger_offence"),
            "trigger_offence",
            pc.cast(conv["trigger_offence"], pa.int64()),
        ),
        landing,
        "convictions",
        second,
        5,
    )
    ben = read("benefits", second)
    at_one = pc.add(pc.cast(pc.cast(ben["spell_start"], pa.timestamp("s")), pa.int64()), 13 * 3600)
    _deliver(
        ben.set_column(ben.schema.get_field_index("spell_start"), "spell_start", pc.cast(at_one, pa.timestamp("s"))),
        landing,
        "benefits",
        second,
        5,
    )
    # a manifest whose row_count is text
    text_count = _deliver(read("benefits", second), landing, "benefits", second, 6)
    manifest = text_count.with_name(manifest_filename(text_count.name))
    body = json.loads(manifest.read_text())
    manifest.write_text(json.dumps({**body, "row_count": str(body["row_count"])}))
    # a knowledge date in the future
    _deliver(read("deaths", second), landing, "deaths", dt.date(2099, 1, 31), 1)
    # month 2's treatment snapshot, left in a subfolder
    late = landing / "late"
    late.mkdir()
    for name in (
        delivery_filename("treatment", second, 1),
        manifest_filename(delivery_filename("treatment", second, 1)),
    ):
        shutil.copy(src / name, late / name)
    return landing, planted


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
