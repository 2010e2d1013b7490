"""Ingestion into the event store: accounting, idempotence, order independence, as-of stability,
crash safety — on DuckDB and on PostgreSQL."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from outcomes.contract import SOURCES
from outcomes.eventstore import connect, state_as_of
from outcomes.ingest import Ingestor
from outcomes.synth.generator import SynthConfig, synthesise
from outcomes.warehouse import resolve_target
from tests.backends import warehouse_target

BACKENDS = ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)]
TINY = SynthConfig(persons=600, seed=11, start="2024-01", months=6)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tiny")
    synthesise(TINY, out)
    return out / "landing"


def pairs(landing: Path) -> list[tuple[Path, Path]]:
    return [(p, p.with_name(p.name.replace(".parquet", ".manifest.json"))) for p in sorted(landing.glob("*.parquet"))]


def distinct_data(landing: Path) -> set[str]:
    """sha256 of each distinct data file: deliveries of the same bytes are applied once."""
    return {hashlib.sha256(data.read_bytes()).hexdigest() for data, _ in pairs(landing)}


def copy_pairs(items, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for data, manifest in items:
        shutil.copy(data, dest / data.name)
        shutil.copy(manifest, dest / manifest.name)
    return dest


def state_digest(backend, dates) -> dict:
    """sha256 of the as-of state of every source on each date."""
    out = {}
    for d in dates:
        for source in SOURCES:
            table = state_as_of(backend, source, d)
            out[(d, source)] = hashlib.sha256(json.dumps(table.to_pylist(), default=str).encode()).hexdigest()
    return out


def extract_dates(landing: Path) -> list[dt.date]:
    return sorted({dt.date.fromisoformat(json.loads(m.read_text())["extract_date"]) for _, m in pairs(landing)})


@pytest.mark.parametrize("kind", BACKENDS)
def test_every_delivery_applied_and_accounted_for(kind, tiny, tmp_path):
    with warehouse_target(kind, tmp_path) as target, connect(resolve_target(target)) as backend:
        report = Ingestor(backend, tmp_path / "archive").ingest(tiny)
        # a file with the same bytes as one applied (e.g. two empty months of deaths) is a no-op
        # repeat: counted as already applied, not a delivery of its own
        assert len(report.outcomes) + report.already_applied == len(pairs(tiny)) == 4 * TINY.months
        assert report.already_applied == len(pairs(tiny)) - len(distinct_data(tiny))
        assert all(o.status == "applied" for o in report.outcomes)
        with backend.transaction() as s:
            ledger = s.fetch("select * from events.deliveries order by ledger_id").to_pylist()
            for row in ledger:
                assert row["rows_delivered"] == row["rows_applied"] + row["rows_quarantined"]
                manifest = json.loads((tiny / row["file_name"].replace(".parquet", ".manifest.json")).read_text())
                assert row["rows_delivered"] == manifest["row_count"]
                assert Path(row["archive_path"]).exists()
            # every applied delta row is one event; snapshots store only changes
            for source in ("convictions", "benefits", "deaths"):
                events = s.scalar(f"select count(*) from events.{source}")
                applied = sum(r["rows_applied"] for r in ledger if r["source"] == source)
                assert events == applied
            snapshot_rows = sum(r["rows_delivered"] for r in ledger if r["source"] == "treatment")
            assert s.scalar("select count(*) from events.treatment") < snapshot_rows / 2

        # the last snapshot is exactly the treatment state on its date
        last = max(extract_dates(tiny))
        snapshot = pq.read_table(tiny / f"treatment_{last:%Y%m%d}_01.parquet")
        state = state_as_of(backend, "treatment", last)
        assert sorted(state["record_id"].to_pylist()) == sorted(snapshot["record_id"].to_pylist())

        again = Ingestor(backend, tmp_path / "archive").ingest(tiny)
        assert again.outcomes == [] and again.already_applied == len(pairs(tiny))
        with backend.transaction() as s:
            assert s.scalar("select count(*) from events.deliveries") == len(ledger)


def in_order_state(kind, landing: Path, work: Path, dates) -> dict:
    """The state digest after ingesting every delivery in one ordinary run."""
    with warehouse_target(kind, work) as target, connect(resolve_target(target)) as backend:
        Ingestor(backend, work / "archive").ingest(landing)
        return state_digest(backend, dates)


@pytest.fixture(scope="module")
def in_order(tiny, tmp_path_factory):
    """in_order_state(kind) of the module's deliveries, ingested once per backend for the module: the
    reference both the shuffled and the killed ingests must reach."""
    digests = {}

    def state(kind: str) -> dict:
        if kind not in digests:
            work = tmp_path_factory.mktemp(f"in_order_{kind}")
            digests[kind] = in_order_state(kind, tiny, work, extract_dates(tiny))
        return digests[kind]

    return state


@pytest.mark.parametrize("kind", BACKENDS)
def test_shuffled_arrival_gives_the_same_state(kind, tiny, in_order, tmp_path):
    dates = extract_dates(tiny)
    in_order = in_order(kind)
    items = pairs(tiny)
    random.Random(5).shuffle(items)
    with warehouse_target(kind, tmp_path / "b") as target, connect(resolve_target(target)) as backend:
        ingestor = Ingestor(backend, tmp_path / "b" / "archive")
        # one delivery per run, in shuffled order: late snapshots and deltas arrive after later ones
        for i, item in enumerate(items):
            ingestor.ingest(copy_pairs([item], tmp_path / "landing" / str(i)))
        assert state_digest(backend, dates) == in_order


def test_state_on_a_date_is_unchanged_by_later_deliveries(tiny, tmp_path):
    dates = extract_dates(tiny)
    cut = dates[2]
    early = [p for p in pairs(tiny) if json.loads(p[1].read_text())["extract_date"] <= cut.isoformat()]
    with connect(resolve_target(str(tmp_path / "w.duckdb"))) as backend:
        ingestor = Ingestor(backend, tmp_path / "archive")
        ingestor.ingest(copy_pairs(early, tmp_path / "early"))
        before = state_digest(backend, dates[:3])
        ingestor.ingest(tiny)
        assert state_digest(backend, dates[:3]) == before


def test_conflicting_redelivery_is_rejected_and_nothing_lost(tiny, tmp_path):
    landing = copy_pairs(pairs(tiny)[:2], tmp_path / "landing")
    with connect(resolve_target(str(tmp_path / "w.duckdb"))) as backend:
        ingestor = Ingestor(backend, tmp_path / "archive")
        ingestor.ingest(landing)
        # a different file under the same name (source, date, seq): a correction must use seq 02
        data, manifest = pairs(landing)[0]
        table = pq.read_table(data).slice(1)
        pq.write_table(table, data)
        m = json.loads(manifest.read_text())
        m.update(row_count=table.num_rows, sha256=hashlib.sha256(data.read_bytes()).hexdigest())
        manifest.write_text(json.dumps(m))
        report = ingestor.ingest(landing)
        assert [o.status for o in report.outcomes] == ["rejected"]
        assert "next seq" in report.outcomes[0].reason
        with backend.transaction() as s:
            assert s.scalar("select count(*) from quarantine.rejected_deliveries") == 1


KILL_SCRIPT = """
import sys
from pathlib import Path
from outcomes.eventstore import connect
from outcomes.ingest import Ingestor
from outcomes.warehouse import resolve_target
with connect(resolve_target(sys.argv[1])) as backend:
    Ingestor(backend, Path(sys.argv[3])).ingest(Path(sys.argv[2]), on_delivery=lambda o: print(o.file_name, flush=True))
"""


@pytest.mark.parametrize("kind", BACKENDS)
def test_killed_ingest_leaves_nothing_half_applied(kind, tiny, in_order, tmp_path):
    dates = extract_dates(tiny)
    reference = in_order(kind)
    rng = random.Random(int(os.environ.get("KILL_SEED", "3")))
    with warehouse_target(kind, tmp_path / "k") as target:
        for attempt in range(3):
            proc = subprocess.Popen(
                [sys.executable, "-c", KILL_SCRIPT, target, str(tiny), str(tmp_path / "arch")],
                stdout=subprocess.PIPE,
                text=True,
            )
            # let it apply a few deliveries, then kill it wherever it is
            for _ in range(rng.randint(2, 10)):
                if not proc.stdout.readline():
                    break
            time.sleep(rng.random() * 0.3)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            with connect(resolve_target(target)) as backend, backend.transaction() as s:
                # every ledger entry has all its events, and no events lack a ledger entry
                for source in SOURCES:
                    orphan = s.scalar(
                        f"select count(*) from events.{source} e where not exists "
                        "(select 1 from events.deliveries d where d.ledger_id = e.applied_in)"
                    )
                    assert orphan == 0, (attempt, source)
        with connect(resolve_target(target)) as backend:
            Ingestor(backend, tmp_path / "arch").ingest(tiny)
            assert state_digest(backend, dates) == reference
            with backend.transaction() as s:
                applied = s.scalar("select count(*) from events.deliveries where status = 'applied'")
                assert applied == len(distinct_data(tiny))


def test_cli_ingest_prints_a_line_per_delivery(tiny, tmp_path):
    from typer.testing import CliRunner

    from outcomes.cli import app

    landing = copy_pairs(pairs(tiny)[:3], tmp_path / "landing")
    (landing / "notes.txt").write_text("not a delivery")
    result = CliRunner().invoke(app, ["ingest", "--landing", str(landing), "--warehouse", str(tmp_path / "w.duckdb")])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert sum(": applied " in line for line in lines) == 3
    assert any(line.startswith("notes.txt: rejected: file name is not") for line in lines)
    assert "3 applied, 1 rejected" in lines[-1]
    again = CliRunner().invoke(app, ["ingest", "--landing", str(landing), "--warehouse", str(tmp_path / "w.duckdb")])
    assert again.exit_code == 0 and "0 applied, 0 rejected; 3 already applied, 1 already rejected" in again.output
    assert (tmp_path / "archive").is_dir()
