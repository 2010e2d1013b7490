"""Validation for ingestion in bounded chunks and in a worker process: the same rows break the same
rules, and the warehouse comes out the same, as validating each delivery whole in the ingesting process."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import random
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from outcomes.contract import SOURCES
from outcomes.eventstore import connect
from outcomes.ingest import Ingestor
from outcomes.ingest.landing import check, discover
from outcomes.ingest.rows import canonical_text
from outcomes.ingest.validate import ValidationPool, chunk_positions, rules_by_row
from outcomes.synth.generator import SynthConfig, synthesise
from outcomes.warehouse import resolve_target
from tests.test_ingest import state_digest

SMALL = SynthConfig(persons=500, seed=13, start="2024-01", months=3)


@pytest.fixture(scope="module")
def corrupted(tmp_path_factory) -> Path:
    """A small landing folder whose initial convictions load breaks rules, duplicates far apart included."""
    out = tmp_path_factory.mktemp("worker")
    synthesise(SMALL, out)
    landing = out / "landing"
    path = sorted(landing.glob("convictions_*.parquet"))[0]
    table = pq.read_table(path)
    n = table.num_rows
    assert n > 100
    ids = table["record_id"].to_pylist()
    ids[n - 1] = ids[0]  # a repeated record_id, first and last row
    ids[n // 2] = ids[1]
    groups = table["offence_group"].to_pylist()
    groups[7] = "not_a_code"
    dates = table["disposal_date"].to_pylist()
    dates[n - 3] = SMALL_EXTRACT_FUTURE
    table = table.set_column(table.schema.get_field_index("record_id"), "record_id", pa.array(ids, pa.string()))
    table = table.set_column(
        table.schema.get_field_index("offence_group"), "offence_group", pa.array(groups, pa.string())
    )
    table = table.set_column(table.schema.get_field_index("disposal_date"), "disposal_date", pa.array(dates))
    pq.write_table(table, path)
    manifest = path.with_name(path.name.replace(".parquet", ".manifest.json"))
    m = json.loads(manifest.read_text())
    m["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    manifest.write_text(json.dumps(m))
    return landing


SMALL_EXTRACT_FUTURE = dt.date(2099, 1, 1)


def _delivery_text(landing: Path, prefix: str):
    d = check(next(d for d in sorted(discover(landing), key=lambda d: d.path.name) if d.path.name.startswith(prefix)))
    assert d.reason is None
    return d, canonical_text(d.table, d.source)


def test_chunks_keep_each_record_id_together():
    rng = random.Random(1)
    ids = [rng.choice([None, *(f"R{i}" for i in range(60))]) for _ in range(500)]
    chunks = chunk_positions(pa.chunked_array([pa.array(ids[:200]), pa.array(ids[200:])]), chunk_rows=100)
    assert chunks is not None and 2 <= len(chunks) <= 5
    every = sorted(int(p) for chunk in chunks for p in chunk)
    assert every == list(range(500))  # each row in exactly one chunk
    home: dict[str, int] = {}
    for k, chunk in enumerate(chunks):
        assert list(chunk) == sorted(chunk)
        for p in chunk:
            if ids[p] is not None:
                assert home.setdefault(ids[p], k) == k  # every row of a record_id in one chunk
    assert chunk_positions(pa.array(ids), chunk_rows=500) is None  # small enough: one chunk
    assert chunk_positions(pa.array([], pa.string()), chunk_rows=10) is None


def test_chunked_validation_finds_what_one_pass_finds(corrupted):
    d, text = _delivery_text(corrupted, "convictions_")
    whole = rules_by_row(d.source, text, d.extract_date, chunk_rows=10**9)
    n = text.num_rows
    assert whole[0] == whole[n - 1] == {"duplicate:record_id"}
    assert whole[7] == {"code_list:offence_group"}
    assert "date_after_extract:disposal_date" in whole[n - 3]
    assert rules_by_row(d.source, text, d.extract_date, chunk_rows=n // 3 + 1) == whole


def test_the_worker_validates_as_the_caller_would_and_hands_back_errors(corrupted):
    d, text = _delivery_text(corrupted, "convictions_")
    with ValidationPool() as pool:
        first = pool.submit(d.source, text, d.extract_date)
        unknown = pool.submit("prescriptions", text, d.extract_date)
        again = pool.submit(d.source, text.slice(0, 10), d.extract_date)
        assert first.result() == rules_by_row(d.source, text, d.extract_date)
        with pytest.raises(ValueError, match="unknown source"):
            unknown.result()
        assert again.result() == {7: {"code_list:offence_group"}}  # the repeats' partners are past row 10


def _warehouse(landing: Path, work: Path, workers: int) -> tuple[dict, list, dict]:
    with connect(resolve_target(str(work / "w.duckdb"))) as backend:
        report = Ingestor(backend, work / "archive", workers=workers).ingest(landing)
        dates = sorted({o.file_name.split("_")[1] for o in report.outcomes})
        digest = state_digest(backend, [dt.date.fromisoformat(f"{x[:4]}-{x[4:6]}-{x[6:]}") for x in dates])
        quarantined = {}
        with backend.transaction() as s:
            for source in SOURCES:
                rows = s.fetch(
                    f"select * exclude (ingested_at) from quarantine.{source}_rows order by delivery_id, row_number"
                )
                quarantined[source] = rows.to_pylist()
        lines = [o.line() for o in report.outcomes] + [f"{report.already_applied} already applied"]
    return digest, lines, quarantined


def test_worker_and_in_process_ingests_give_the_same_warehouse(corrupted, tmp_path):
    landing = tmp_path / "landing"
    shutil.copytree(corrupted, landing)
    # the same data again under the next seq: prepared ahead, then found already applied
    data = sorted(landing.glob("benefits_*.parquet"))[1]
    again = data.with_name(data.name.replace("_01.", "_02."))
    shutil.copy(data, again)
    shutil.copy(
        data.with_name(data.name.replace(".parquet", ".manifest.json")),
        again.with_suffix("").with_suffix(".manifest.json"),
    )
    in_process = _warehouse(landing, tmp_path / "a", workers=0)
    with_worker = _warehouse(landing, tmp_path / "b", workers=1)
    assert with_worker == in_process
    assert in_process[1][-1] == "1 already applied"
    # the corrupted rows are quarantined (both rows of each repeated record_id)
    assert sum(len(rows) for rows in in_process[2].values()) == 6


def test_workers_argument_is_checked(tmp_path):
    with connect(resolve_target(str(tmp_path / "w.duckdb"))) as backend:
        with pytest.raises(ValueError, match="workers"):
            Ingestor(backend, tmp_path / "archive", workers=2)
        with pytest.raises(ValueError, match="custom validate"):
            Ingestor(backend, tmp_path / "archive", validate=lambda *a: None, workers=1)
