"""Property: whatever is corrupted, every delivered row is applied or quarantined (or its whole
delivery rejected with a reason), and the good rows still land."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from outcomes.eventstore import connect, state_as_of
from outcomes.ingest import Ingestor
from outcomes.synth.generator import SynthConfig, synthesise
from outcomes.warehouse import resolve_target

ROW_FAULTS = ["bad_code", "bad_date", "future_date", "null_required", "duplicate_id"]
FILE_FAULTS = ["wrong_sha256", "missing_column", "truncated", "wrong_row_count"]
REQUIRED = {
    "treatment": "treatment_start_date",
    "convictions": "offence_date",
    "benefits": "spell_start",
    "deaths": "date_of_death",
}
CODED = {"treatment": "setting", "convictions": "offence_group", "benefits": "benefit_type", "deaths": "record_status"}
DATED = {
    "treatment": "referral_date",
    "convictions": "disposal_date",
    "benefits": "spell_start",
    "deaths": "date_of_registration",
}


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("prop")
    synthesise(SynthConfig(persons=250, seed=21, start="2024-01", months=2), out)
    return out / "landing"


corruption = st.fixed_dictionaries(
    {
        "file": st.integers(0, 7),
        "fault": st.sampled_from(ROW_FAULTS + FILE_FAULTS),
        "rows": st.lists(st.integers(1, 10_000), min_size=1, max_size=4, unique=True),
        "csv": st.booleans(),
    }
)


def _text(table: pa.Table) -> pa.Table:
    cols = []
    for f in table.schema:
        c = table[f.name]
        cols.append(pc.binary_join(c, "|") if pa.types.is_list(f.type) else pc.cast(c, pa.string()))
    return pa.table(cols, names=table.column_names)


def _write(table: pa.Table, path: Path, as_csv: bool) -> Path:
    if as_csv:
        path = path.with_suffix(".csv")
        pacsv.write_csv(_text(table), path, pacsv.WriteOptions(quoting_style="needed"))
    else:
        pq.write_table(table, path)
    return path


def _set(table: pa.Table, column: str, rows: list[int], value) -> pa.Table:
    values = table[column].to_pylist()
    for r in rows:
        values[r] = value
    typ = (
        pa.string()
        if value.__class__ is str and not pa.types.is_string(table.schema.field(column).type)
        else table.schema.field(column).type
    )
    if typ != table.schema.field(column).type:
        table = _text(table)
        values = [v if i in rows else (None if v is None else str(v)) for i, v in enumerate(values)]
    return table.set_column(table.schema.get_field_index(column), column, pa.array(values, typ))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(corruptions=st.lists(corruption, min_size=1, max_size=4))
def test_every_row_accounted_for(base, tmp_path_factory, corruptions):
    work = tmp_path_factory.mktemp("case")
    landing = work / "landing"
    shutil.copytree(base, landing)
    files = sorted(landing.glob("*.parquet"))
    expect_rejected: set[str] = set()
    bad_rows: dict[str, set[int]] = {}
    for c in corruptions:
        path = files[c["file"]]
        stem = path.stem
        if stem in expect_rejected or stem in bad_rows or not path.exists():
            continue  # one corruption per file keeps the expected outcome exact
        manifest_path = landing / f"{stem}.manifest.json"
        manifest = json.loads(manifest_path.read_text())
        source, extract = manifest["source"], dt.date.fromisoformat(manifest["extract_date"])
        table = pq.read_table(path)
        rows = sorted({r % table.num_rows for r in c["rows"]}) if table.num_rows else []
        fault, as_csv = c["fault"], c["csv"]
        if fault in ROW_FAULTS and not rows:
            continue
        if fault == "bad_code":
            table = _set(table, CODED[source], rows, "not_a_code")
        elif fault == "bad_date":
            table, as_csv = _set(table, DATED[source], rows, "2024-02-30"), True
        elif fault == "future_date":
            table = _set(table, DATED[source], rows, extract + dt.timedelta(days=1))
        elif fault == "null_required":
            table = _set(table, REQUIRED[source], rows, None)
        elif fault == "duplicate_id":
            ids = table["record_id"].to_pylist()
            rows = [r for r in rows if r != 0] or ([1] if table.num_rows > 1 else [])
            if not rows:
                continue
            table = _set(table, "record_id", rows, ids[0])
            rows = [0, *rows]
        elif fault == "missing_column":
            table = table.drop_columns([REQUIRED[source]])
        if fault in ROW_FAULTS and path.suffix == ".csv":
            as_csv = True
        path.unlink()
        new = _write(table, path.with_suffix(".parquet"), as_csv)
        files[c["file"]] = new
        manifest.update(row_count=table.num_rows, sha256=hashlib.sha256(new.read_bytes()).hexdigest())
        if fault == "wrong_sha256":
            manifest["sha256"] = "0" * 64
        elif fault == "wrong_row_count":
            manifest["row_count"] += 1
        elif fault == "truncated":
            new.write_bytes(new.read_bytes()[: max(1, new.stat().st_size // 2)])
        manifest_path.write_text(json.dumps(manifest))
        if fault in FILE_FAULTS:
            expect_rejected.add(stem)
            bad_rows.pop(stem, None)
        else:
            bad_rows.setdefault(stem, set()).update(rows)

    with connect(resolve_target(str(work / "w.duckdb"))) as backend:
        report = Ingestor(backend, work / "archive").ingest(landing)
        by_stem = {Path(o.file_name).stem: o for o in report.outcomes}
        assert len(by_stem) == 8
        for stem, o in by_stem.items():
            if stem in expect_rejected:
                assert o.status == "rejected" and o.reason, stem
                continue
            assert o.status == "applied", (stem, o.reason)
            assert o.rows_delivered == o.rows_applied + o.rows_quarantined
            assert o.rows_quarantined == len(bad_rows.get(stem, ())), (stem, o.quarantined_by_rule)
        # the good rows of every applied delivery are in the state on its date
        with backend.transaction() as s:
            applied = s.fetch(
                "select file_name, source, extract_date from events.deliveries where status = 'applied'"
            ).to_pylist()
        for row in applied:
            stem = Path(row["file_name"]).stem
            path = next(p for p in files if p.stem == stem)
            delivered = pq.read_table(path) if path.suffix == ".parquet" else pacsv.read_csv(path)
            ids = delivered["record_id"].to_pylist()
            good = {ids[i] for i in range(len(ids)) if i not in bad_rows.get(stem, set())}
            if row["source"] != "treatment":
                statuses = delivered["record_status"].to_pylist()
                good = {
                    ids[i] for i in range(len(ids)) if i not in bad_rows.get(stem, set()) and statuses[i] == "active"
                }
            state = set(state_as_of(backend, row["source"], row["extract_date"])["record_id"].to_pylist())
            assert good <= state, stem
