"""The small warehouse the report tests, the browser test and the guides' queries share (one per
test session and worker): synthetic deliveries (one of them with broken rows, one rejected), ingest,
link, every dbt model (marts, research, published), and the report."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from linkage.run import link
from outcomes.disclosure.control import control
from outcomes.eventstore import connect
from outcomes.ingest import Ingestor
from outcomes.marts.dbt import run_dbt
from outcomes.report import write_report
from outcomes.synth.generator import SynthConfig, synthesise
from outcomes.warehouse import resolve_target

POPULATION = SynthConfig(persons=1_500, seed=7, start="2025-01", months=3)  # a financial year ends in March
AS_OF = "2025-03-31"
BROKEN_RULE = "date_order:discharge_date<treatment_start_date"
BROKEN_ROWS = 3


def _manifest(data: Path) -> Path:
    return data.with_name(data.name.replace(".parquet", ".manifest.json"))


def _rewrite_manifest(data: Path, rows: int, sha256: str | None = None) -> None:
    manifest = _manifest(data)
    m = json.loads(manifest.read_text())
    m.update(row_count=rows, sha256=sha256 or hashlib.sha256(data.read_bytes()).hexdigest())
    manifest.write_text(json.dumps(m))


def _break_rows(landing: Path) -> None:
    """Three treatment rows discharged before they started (quarantined), and a delivery whose
    manifest does not match its file (rejected)."""
    data = landing / "treatment_20250228_01.parquet"
    table = pq.read_table(data)
    discharged = pc.is_valid(table["discharge_date"]).to_pylist()
    picked = [i for i, ok in enumerate(discharged) if ok][:BROKEN_ROWS]
    start = table["treatment_start_date"].to_pylist()
    discharge = table["discharge_date"].to_pylist()
    for i in picked:
        discharge[i] = start[i] - dt.timedelta(days=1)
    column = table.schema.get_field_index("discharge_date")
    table = table.set_column(column, table.schema.field(column), [discharge])
    pq.write_table(table, data)
    _rewrite_manifest(data, table.num_rows)
    original = landing / "treatment_20250331_01.parquet"
    extra = original.with_name("treatment_20250331_02.parquet")
    pq.write_table(pq.read_table(original).slice(1), extra)
    _manifest(extra).write_text(_manifest(original).read_text())
    _rewrite_manifest(extra, pq.read_metadata(extra).num_rows, sha256="0" * 64)


def build_report_warehouse(work: Path) -> tuple[str, Path]:
    """A DuckDB warehouse with every outcome table as of AS_OF under `work`, and its report."""
    synthesise(POPULATION, work / "pop")
    landing = work / "pop" / "landing"
    _break_rows(landing)
    target = resolve_target(str(work / "warehouse" / "outcomes.duckdb"))
    with connect(target) as backend:
        Ingestor(backend, work / "archive").ingest(landing)
        link(backend, truth=work / "pop" / "truth")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DBT_LOG_PATH", str(work / "dbt" / "logs"))  # never dbt_project/'s own log folder
        run_dbt(target, ["run", "--exclude", "published"], AS_OF, work_dir=work / "dbt")
        with connect(target) as backend:
            control(backend)  # the disclosure step of `outcomes publish`, which the published models read
        run_dbt(target, ["run", "--select", "published"], AS_OF, work_dir=work / "dbt")
    with connect(target) as backend:
        report = write_report(backend, work / "out" / "report.html")
    return target.value, report
