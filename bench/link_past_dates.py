"""Benchmark: linking past dates after a one-shot refresh.

    python bench/link_past_dates.py --work /tmp/lkpast [--persons 20000] [--months 12] [--seed 42] [--oldest-first]

Makes (once, in WORK) `outcomes synth` of PERSONS people over MONTHS monthly deliveries, ingests
them all into a fresh DuckDB warehouse, links the latest date (the one-shot run), then links every
earlier month, newest first (or oldest first), each a past date beneath the runs already made
(linkage.run.PastRun). Newest first, each past date's spine starts empty (every record is new);
oldest first, each run adds only what the previous past date's spine lacks.
Prints per run: records linked, persons, how many of them kept the later spine's person id,
records moved to the later spine's person by merge/split events and records unlinked there; its
seconds and their ratio to the one-shot run's (same process, same machine); and whether the spine
as of the latest date is byte-identical at the end. Figures for docs/linkage.md; never a test.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def spine_hash(backend, day) -> str:
    from linkage.schema import spine_as_of_sql

    with backend.transaction() as s:
        rows = s.fetch(spine_as_of_sql() + " order by source, record_id", {"as_of": day}).to_pylist()
    return hashlib.sha256(json.dumps(rows).encode()).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--persons", type=int, default=20_000)
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--oldest-first", action="store_true", help="link the past dates oldest first")
    args = parser.parse_args()

    from linkage.run import link
    from outcomes.eventstore import connect
    from outcomes.ingest import Ingestor
    from outcomes.synth.generator import SynthConfig, synthesise
    from outcomes.warehouse import resolve_target

    population = args.work / f"synth-{args.persons}-{args.months}-{args.seed}"
    if not population.exists():
        synthesise(SynthConfig(persons=args.persons, seed=args.seed, months=args.months), population)
    warehouse = args.work / "warehouse"
    shutil.rmtree(warehouse, ignore_errors=True)
    warehouse.mkdir(parents=True)
    with connect(resolve_target(str(warehouse / "outcomes.duckdb"))) as backend:
        Ingestor(backend, warehouse / "archive").ingest(population / "landing")
        with backend.transaction() as s:
            days = [
                r["extract_date"]
                for r in s.fetch(
                    "select distinct extract_date from events.deliveries where status = 'applied' order by 1"
                ).to_pylist()
            ]
        latest = days[-1]
        started = time.perf_counter()
        one_shot = link(backend, as_of=latest)
        reference = time.perf_counter() - started
        before = spine_hash(backend, latest)
        print(
            f"one-shot run as of {latest}: {one_shot.records_new:,} records, {one_shot.persons_new:,} persons, "
            f"{reference:.1f} s"
        )
        print("past date | records | persons | kept later id | moved (merge/split) | unlinked | seconds | ratio")
        total = 0.0
        for day in days[:-1] if args.oldest_first else reversed(days[:-1]):
            started = time.perf_counter()
            r = link(backend, as_of=day)
            seconds = time.perf_counter() - started
            total += seconds
            print(
                f"{day} | {r.records_new:,} | {r.persons_new:,} | {r.ids_reused:,} | {r.moved_later:,} | "
                f"{r.unlinked_later:,} | {seconds:.1f} | {seconds / reference:.2f}"
            )
        print(f"all {len(days) - 1} past dates: {total:.1f} s, {total / reference:.2f} times the one-shot run")
        print(f"spine as of {latest} byte-identical after them: {spine_hash(backend, latest) == before}")


if __name__ == "__main__":
    main()
