"""Benchmark: ingest the full history of a synthetic population into DuckDB and PostgreSQL.

    python bench/ingest.py [--persons 1000000] [--work /tmp/bench-ingest] [--backends duckdb postgres]
                           [--pg postgresql+psycopg://postgres@127.0.0.1:5432/postgres]

The population is synthesised once (reused if already there), then each backend ingests every
delivery in a fresh process, into a fresh warehouse: wall time, rows delivered per second,
events written, peak memory (the ingesting process plus its validation worker, an upper bound of
what both held at once) and CPU time (both processes, user + system). Times are also given as
multiples of a CPU calibration measured in the same run.
"""

from __future__ import annotations

import argparse
import shutil
import uuid
from pathlib import Path

from _measure import calibration_seconds, ensure_population, in_child

INGEST = """
from pathlib import Path
from outcomes.eventstore import connect
from outcomes.ingest import Ingestor
from outcomes.warehouse import resolve_target
with connect(resolve_target({target!r})) as backend:
    report = Ingestor(backend, Path({archive!r})).ingest(Path({landing!r}))
    with backend.transaction() as s:
        events = sum(s.scalar(f"select count(*) from events.{{x}}")
                     for x in ("treatment", "convictions", "benefits", "deaths"))
result = {{"deliveries": len(report.outcomes), "rows": sum(o.rows_delivered for o in report.outcomes),
          "quarantined": sum(o.rows_quarantined for o in report.outcomes),
          "rejected": sum(o.status == "rejected" for o in report.outcomes), "events": events}}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=1_000_000)
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench-ingest"))
    parser.add_argument("--backends", nargs="+", default=["duckdb", "postgres"])
    parser.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    reference = calibration_seconds()
    print(f"calibration (300k HMAC-SHA256): {reference:.2f} s")
    population = args.work / f"population-{args.persons}"
    ensure_population(args.persons, population)
    landing = population / "landing"
    print(
        f"{'backend':>9} {'wall s':>8} {'x calib':>8} {'rows':>12} {'rows/s':>9} {'events':>11} "
        f"{'quarant.':>8} {'peak MiB':>9} {'(main':>7} {'+ worker)':>9} {'CPU s':>7}"
    )
    for backend in args.backends:
        work = args.work / f"wh-{backend}"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        db = None
        if backend == "duckdb":
            target = str(work / "outcomes.duckdb")
        else:
            import sqlalchemy as sa

            db = f"bench_{uuid.uuid4().hex[:8]}"
            admin = sa.create_engine(args.pg, isolation_level="AUTOCOMMIT")
            with admin.connect() as con:
                con.exec_driver_sql(f"create database {db}")
            target = args.pg.rsplit("/", 1)[0] + f"/{db}"
        try:
            r = in_child(INGEST.format(target=target, archive=str(work / "archive"), landing=str(landing)))
        finally:
            if db:
                with admin.connect() as con:
                    con.exec_driver_sql(f"drop database if exists {db} with (force)")
        print(
            f"{backend:>9} {r['wall_s']:>8.0f} {r['wall_s'] / reference:>8.0f} {r['rows']:>12,} "
            f"{r['rows'] / r['wall_s']:>9,.0f} {r['events']:>11,} {r['quarantined']:>8,} {r['peak_mib']:>9.0f} "
            f"{r['peak_self_mib']:>7.0f} {r['peak_children_mib']:>9.0f} {r['cpu_s']:>7.0f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
