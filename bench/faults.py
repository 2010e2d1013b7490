"""The fault table of docs/event-store.md: hostile deliveries, two ingests at once and a hostile
query, each tried through the `outcomes` command, with rows in / applied / quarantined / rejected / lost.

    python bench/faults.py [--persons 1500] [--work /tmp/bench-faults]
                           [--pg postgresql+psycopg://postgres@127.0.0.1:5432/postgres]

Lost = rows delivered − applied − unchanged − quarantined (applied deliveries) and 0 for a
rejected delivery only when its ledger row holds its reason; it must be 0 on every line.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from outcomes.eventstore import connect  # noqa: E402
from outcomes.warehouse import resolve_target  # noqa: E402
from tests.hostile_deliveries import TODAY, build_hostile  # noqa: E402

OUTCOMES = [sys.executable, "-m", "outcomes"]


def run(args: list[str], env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*OUTCOMES, *args], capture_output=True, text=True, env={**os.environ, **(env or {})})


def ledger(target: str) -> list[dict]:
    with connect(resolve_target(target)) as backend, backend.transaction() as s:
        return s.fetch(
            "select file_name, status, reason, coalesce(rows_delivered, 0) as rows_in, rows_applied, "
            "rows_quarantined, rows_unchanged from events.deliveries order by ledger_id"
        ).to_pylist()


def events(target: str) -> int:
    with connect(resolve_target(target)) as backend, backend.transaction() as s:
        return sum(
            s.scalar(f"select count(*) from events.{x}") for x in ("treatment", "convictions", "benefits", "deaths")
        )


def fresh_pg(admin: str) -> str:
    import sqlalchemy as sa

    name = f"outcomes_faults_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as con:
        con.exec_driver_sql(f"create database {name}")
    engine.dispose()
    return admin.rsplit("/", 1)[0] + "/" + name


def drop_pg(admin: str, url: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as con:
        con.exec_driver_sql(f"drop database if exists {url.rsplit('/', 1)[1]} with (force)")
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--persons", type=int, default=1500)
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench-faults"))
    parser.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    a = parser.parse_args()
    shutil.rmtree(a.work, ignore_errors=True)
    a.work.mkdir(parents=True)
    landing, planted = build_hostile(a.work, a.persons)
    warehouse = str(a.work / "w" / "outcomes.duckdb")
    ingest = ["ingest", "--landing", str(landing), "--horizon", str(TODAY), "--create-folder"]
    done = run([*ingest, "--warehouse", warehouse])
    print(f"$ outcomes {' '.join(ingest)} --warehouse {warehouse}  (exit {done.returncode})")
    print("| delivery | status | reason or rules | rows in | applied | unchanged | quarantined | rejected | lost |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|")
    rules = {}
    with connect(resolve_target(warehouse)) as backend, backend.transaction() as s:
        for source in ("treatment", "convictions", "benefits", "deaths"):
            for r in s.fetch(f"select rules, count(*) as n from quarantine.{source}_rows group by rules").to_pylist():
                rules.setdefault(source, []).append(f"{r['rules']} {r['n']}")
    for r in ledger(warehouse):
        rejected = r["rows_in"] if r["status"] == "rejected" else 0
        lost = (
            0
            if r["status"] == "rejected" and r["reason"]
            else (r["rows_in"] - r["rows_applied"] - r["rows_unchanged"] - r["rows_quarantined"])
        )
        why = r["reason"] or "; ".join(rules.get(r["file_name"].split("_")[0], [])) or "-"
        print(
            f"| {r['file_name']} | {r['status']} | {why} | {r['rows_in']:,} | {r['rows_applied']:,} | "
            f"{r['rows_unchanged']:,} | {r['rows_quarantined']:,} | {rejected:,} | {lost:,} |"
        )
    print(f"planted rule breaks: {json.dumps(planted)}")

    # Two ingests at once on PostgreSQL against one alone.
    single, pair = fresh_pg(a.pg), fresh_pg(a.pg)
    try:
        run([*ingest, "--warehouse", single])
        env = {"OUTCOMES_WAREHOUSE": pair}
        procs = [
            subprocess.Popen(
                [*OUTCOMES, *ingest, "--archive", str(a.work / "pair_archive")],
                env={**os.environ, **env},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        outs = [(p.wait(), *p.communicate()) for p in procs]
        one, two = ledger(single), ledger(pair)
        print(
            f"two ingests at once on PostgreSQL: exits {[o[0] for o in outs]}, waited: "
            f"{sum('waiting for another ingest' in o[2] for o in outs)}; ledger rows {len(two)} (one run: {len(one)}), "
            f"events {events(pair):,} (one run: {events(single):,})"
        )
    finally:
        drop_pg(a.pg, single)
        drop_pg(a.pg, pair)


if __name__ == "__main__":
    main()
