"""A landing folder of deliveries a careless or hostile provider might send (for
tests/test_ingest_hardening.py and bench/faults.py): the first month of a synthetic population
with rows breaking section 3's rules, then Parquet files of the wrong column types, a manifest whose
row_count is text, a knowledge date in the future and a snapshot left in a subfolder."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from outcomes.contract.extracts import delivery_filename, manifest_filename
from outcomes.pseudonymise.delivery import write_manifest
from outcomes.synth.generator import SynthConfig, synthesise

# The horizon the hostile landing is ingested with (its future delivery is dated 2099-01-31).
TODAY = dt.date(2026, 12, 1)


def _retyped(table: pa.Table, column: str, values) -> pa.Table:
    """The table with one column replaced by values of another Parquet type."""
    return table.set_column(table.schema.get_field_index(column), column, values)


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


def build_hostile(out: Path, persons: int = 300) -> tuple[Path, dict[str, dict[str, str]]]:
    """The hostile landing folder under `out`, and the rule each planted row must be quarantined under
    (by source and record_id)."""
    synthesise(SynthConfig(persons=persons, seed=3, start="2024-01", months=2), out)
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
        _retyped(deaths, "date_of_death", pc.cast(deaths["date_of_death"], pa.string())), landing, "deaths", second, 5
    )
    conv = read("convictions", second)
    _deliver(
        _retyped(conv, "trigger_offence", pc.cast(conv["trigger_offence"], pa.int64())),
        landing,
        "convictions",
        second,
        5,
    )
    ben = read("benefits", second)
    at_one = pc.add(pc.cast(pc.cast(ben["spell_start"], pa.timestamp("s")), pa.int64()), 13 * 3600)
    _deliver(_retyped(ben, "spell_start", pc.cast(at_one, pa.timestamp("s"))), landing, "benefits", second, 5)
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
