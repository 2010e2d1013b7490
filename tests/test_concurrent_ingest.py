"""Two `outcomes ingest` processes started at once on one warehouse leave exactly what one run
leaves: the same events, the same ledger, no false rejection (PostgreSQL: the second waits for the
first's advisory lock; DuckDB: the second is refused by the file lock, with one line)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from outcomes.contract import SOURCES
from outcomes.eventstore import connect
from outcomes.eventstore.schema import event_table, quarantine_table
from outcomes.ingest import Ingestor
from outcomes.synth.generator import SynthConfig, synthesise
from outcomes.warehouse import resolve_target
from tests.backends import warehouse_target

BACKENDS = ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)]
CONFIG = SynthConfig(persons=400, seed=23, start="2024-01", months=4)
LEDGER = "ledger_id, delivery_id, file_name, source, extract_date, seq, status, reason, rows_applied, rows_quarantined"


@pytest.fixture(scope="module")
def landing(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("concurrent")
    synthesise(CONFIG, out)
    return out / "landing"


def contents(target: str) -> dict:
    """Every event (less when it was written), the ledger and quarantine, as digests and counts."""
    out = {}
    with connect(resolve_target(target)) as backend, backend.transaction() as s:
        out["ledger"] = s.fetch(f"select {LEDGER} from events.deliveries order by ledger_id").to_pylist()
        for source in SOURCES:
            for table in (event_table(source), quarantine_table(source)):
                rows = s.fetch(f"select * from {table}").to_pylist()
                for r in rows:
                    r.pop("ingested_at", None)
                lines = sorted(json.dumps(r, default=str, sort_keys=True) for r in rows)
                out[table] = (len(lines), hashlib.sha256("\n".join(lines).encode()).hexdigest())
        out["rejected"] = s.scalar("select count(*) from events.deliveries where status = 'rejected'")
    return out


def _ingest_process(target: str, landing: Path, archive: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "outcomes", "ingest", "--landing", str(landing), "--archive", str(archive)],
        env={**os.environ, "OUTCOMES_WAREHOUSE": target},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("kind", BACKENDS)
def test_two_ingests_at_once_equal_one(kind, landing, tmp_path):
    with warehouse_target(kind, tmp_path / "single") as single:
        with connect(resolve_target(single)) as backend:
            report = Ingestor(backend, tmp_path / "single_archive").ingest(landing)
        assert all(o.status == "applied" for o in report.outcomes)
        expected = contents(single)
    with warehouse_target(kind, tmp_path / "pair") as target:
        if kind == "duckdb":
            Path(target).parent.mkdir(parents=True)
        procs = [_ingest_process(target, landing, tmp_path / "pair_archive") for _ in range(2)]
        results = [(p.wait(timeout=300), *p.communicate()) for p in procs]
        codes = sorted(code for code, _, _ in results)
        if kind == "postgres":
            assert codes == [0, 0], results
        else:
            # The loser of the file lock says so on one line and applies nothing.
            assert codes[0] == 0, results
            for code, _, stderr in results:
                if code:
                    assert code == 2 and len(stderr.strip().splitlines()) == 1 and "lock" in stderr, stderr
        summaries = sorted(stdout.strip().splitlines()[-1] for code, stdout, _ in results if code == 0)
        deliveries = len(list(landing.glob("*.parquet")))
        assert summaries[-1] == f"{deliveries} applied, 0 rejected; 0 already applied, 0 already rejected"
        if len(summaries) == 2:
            assert summaries[0] == f"0 applied, 0 rejected; {deliveries} already applied, 0 already rejected"
        got = contents(target)
    assert got["rejected"] == 0
    assert len(got["ledger"]) == deliveries
    assert got == expected
