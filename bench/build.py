"""Benchmark: build every outcome table with dbt for a large population, then the monthly build.

    python bench/build.py [--persons 100000] [--work /tmp/bench-build] [--population DIR]

The population is synthesised once (or taken from --population, e.g. bench/ingest.py's). Its
history minus the last month is ingested into a fresh DuckDB warehouse and linked; `build` runs
(the full build) and the history is published; then the last month is ingested and linked,
`build` runs again: the monthly build of a refresh, incremental (only the persons with new events
or links are recomputed), and the month is published. The reference is a full build of the same
month (`--full-refresh`) right after it, in the same run: the script prints the ratio of the two
and whether every mart and research table is identical, and the whole monthly refresh (ingest,
link, build, publish) against the first (the same four steps over the history).

Each step runs as the product's refresh (`outcomes refresh`) runs it: the link under its memory
budget (`--memory-limit`, default 4GB as `outcomes link`'s own, for the history;
`--month-memory-limit`, default 2GB, issue 14's monthly bound, for the month), the ingest with
DuckDB's memory held to `--ingest-memory` (default 1GB; "" for DuckDB's own, 80% of RAM), and the
publish step as the refresh's last three: the quality gate (its reasons are printed; the bench
publishes even when it is closed, so that the step is timed), `publish` (disclosure control and
the `published` tables) and the HTML report. `--keep-first DIR` keeps a copy of the warehouse as
it stands after the history's link (before any build), for a later run of a month on it.
Each step runs in a fresh process: wall time and peak memory (dbt runs in a child process of its
own, reported separately), also as multiples of a CPU calibration measured in the same run.

    python bench/build.py --rebuild /tmp/bench-build-100k/warehouse/outcomes.duckdb --work DIR

repeats the three builds, and only them, on a copy of a warehouse an earlier run left (its whole
history ingested and linked): a build as of the month before the last (full, as it is earlier
than the warehouse's last build), the monthly build (incremental since it) and the same month in
full. The dbt build of a month can so be compared between two versions of the code on one
ingested and linked population (run the script with the other version first on PYTHONPATH).

Each build's CPU time (its process and its children, dbt's included) is printed with the ratio of
the two, split (with this code's dbt child) into dbt's import, dbt's command (loading the parsed
project and running the nodes) and the rest; dbt's time of every model and test is written to
`--work`/nodes-<step>.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from _measure import EARLIER_AS_OF, calibration_seconds, ensure_population, in_child

# Each step imports what it runs and nothing else: a build step does not pay for importing the
# linker (recordlinkage, pandas: about 2 to 4 s of CPU) or the ingest, as `outcomes build` does not.
STEP = """
import resource
from pathlib import Path
from outcomes.eventstore import connect
from outcomes.warehouse import resolve_target
target = resolve_target({target!r})
step = {step!r}
result = {{}}
if step == "ingest":
    from outcomes.ingest import Ingestor
    with connect(target) as backend:
        if {ingest_memory!r} and getattr(backend, "dialect", None) == "duckdb":  # DuckDB's buffer pool
            backend.con.execute("set memory_limit = '{ingest_memory}'")
        report = Ingestor(backend, Path({archive!r})).ingest(Path({landing!r}))
    result = {{"rows": sum(o.rows_delivered for o in report.outcomes), "deliveries": len(report.outcomes)}}
elif step == "link":
    from linkage.run import link
    with connect(target) as backend:
        r = link(backend, memory_limit={memory_limit!r})
    result = {{"records_new": r.records_new, "candidate_pairs": r.candidate_pairs, "memory_limit": {memory_limit!r}}}
elif step == "publish":  # as `outcomes refresh` ends: the gate, publish, the report
    import time
    from outcomes.marts import publish
    from outcomes.ops.gate import GateConfig, gate_reasons
    from outcomes.report import write_report
    laps = {{}}
    t = time.perf_counter()
    with connect(target) as backend:
        with backend.transaction() as s:
            as_of = s.scalar("select max(as_of) from marts.successful_completion")
        reasons = gate_reasons(backend, as_of, GateConfig.from_env(), [])
    laps["gate_s"] = time.perf_counter() - t
    t = time.perf_counter()
    p = publish(target, as_of)
    laps["publish_s"] = time.perf_counter() - t
    t = time.perf_counter()
    report = Path({archive!r}).parent / f"outcomes_report_{{as_of}}.html"
    with connect(target) as backend:
        write_report(backend, report)
    laps["report_s"] = time.perf_counter() - t
    result = {{"as_of": str(as_of), "gate": reasons or "open", "published_tables": len(p.hashes),
              "published_rows": sum(p.rows.values()), "tests": p.tests,
              "laps_s": {{k: round(v, 1) for k, v in laps.items()}}}}
else:
    from outcomes.marts import build
    as_of = None
    if step == "earlier build":  # as of the last extract date before the latest month
        with connect(target) as backend, backend.transaction() as s:
            as_of = s.scalar({earlier_as_of!r})
    b = build(target, as_of=as_of, full_refresh=step == "full build")
    kinds = {{"model": 0.0, "test": 0.0, "unit_test": 0.0}}
    for unique_id, seconds in b.node_seconds.items():
        kinds[unique_id.split(".")[0]] += seconds
    result = {{"as_of": str(b.as_of), "plan": b.plan, "tables": len(b.hashes), "mart_rows": sum(b.rows.values()),
              "tests": b.tests, "slowest": [(name, round(s, 1)) for name, s in b.slowest(8)], "hashes": b.hashes,
              "dbt_s": {{kind: round(s, 1) for kind, s in kinds.items()}}, "nodes": b.node_seconds,
              "dbt_phases": getattr(b, "dbt_phases", {{}})}}
result["dbt_peak_mib"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
"""


def _split(landing: Path, work: Path) -> tuple[Path, Path]:
    """Hard-link the deliveries into two landing folders: all but the last month, and the last month."""
    months = sorted({p.name.split("_")[1].split(".")[0] for p in landing.glob("*.manifest.json")})
    history, last = work / "landing-history", work / "landing-last"
    for folder in (history, last):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    for f in landing.iterdir():
        month = f.name.split("_")[1].split(".")[0]
        (last if month == months[-1] else history).joinpath(f.name).hardlink_to(f)
    return history, last


FIRST = ("ingest history", "link history", "full build", "publish history")
MONTH = ("ingest last month", "link last month", "monthly build", "publish last month")


def refresh_totals(by: dict[str, dict], key: str = "wall_s") -> tuple[float, float]:
    """The first refresh's and the month's totals of `key` (wall or CPU seconds), each the sum of
    its four steps: ingest, link, build, publish."""
    return sum(by[k][key] for k in FIRST), sum(by[k][key] for k in MONTH)


def _nodes_file(label: str) -> str:
    return f"nodes-{label.replace(' ', '_').replace(',', '')}.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=100_000)
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench-build"))
    parser.add_argument("--population", type=Path, help="an existing population folder (with landing/)")
    parser.add_argument("--rebuild", type=Path, help="only the builds, on a copy of this warehouse of an earlier run")
    parser.add_argument("--memory-limit", default="4GB", help="the history's link budget (default 4GB)")
    parser.add_argument("--month-memory-limit", default="2GB", help="the month's link budget (default 2GB)")
    parser.add_argument("--ingest-memory", default="1GB", help="DuckDB's memory_limit while ingesting")
    parser.add_argument("--keep-first", type=Path, help="copy the warehouse here after the history's link")
    args = parser.parse_args()
    reference = calibration_seconds()
    print(f"calibration (300k HMAC-SHA256): {reference:.2f} s")
    warehouse = args.work / "warehouse"
    shutil.rmtree(warehouse, ignore_errors=True)
    warehouse.mkdir(parents=True)
    target = str(warehouse / "outcomes.duckdb")
    if args.rebuild:
        shutil.copy(args.rebuild, target)
        history = last = None
        steps = [("earlier build", "earlier build", None)]
    else:
        population = args.population or args.work / f"population-{args.persons}"
        ensure_population(args.persons, population)
        history, last = _split(population / "landing", args.work)
        steps = [
            ("ingest history", "ingest", history),
            ("link history", "link", None),
            ("full build", "build", None),
            ("publish history", "publish", None),
            ("ingest last month", "ingest", last),
            ("link last month", "link", None),
        ]
    rows = []
    builds = [("monthly build", "build", None)]
    if not args.rebuild:
        builds.append(("publish last month", "publish", None))
    for label, step, landing in [*steps, *builds, ("same month, full", "full build", None)]:
        code = STEP.format(
            target=target,
            step=step,
            earlier_as_of=EARLIER_AS_OF,
            archive=str(warehouse / "archive"),
            landing=str(landing or ""),
            ingest_memory=args.ingest_memory,
            memory_limit=args.month_memory_limit if label == "link last month" else args.memory_limit,
        )
        r = in_child(code)
        rows.append((label, r))
        if label == "link history" and args.keep_first:
            args.keep_first.mkdir(parents=True, exist_ok=True)
            shutil.copy(target, args.keep_first / "outcomes.duckdb")
            print(f"kept the warehouse after the history's link: {args.keep_first / 'outcomes.duckdb'}", flush=True)
        if "nodes" in r:  # dbt's time per node, for a look at where a build's time goes
            (args.work / _nodes_file(label)).write_text(json.dumps(r.pop("nodes"), indent=1, sort_keys=True))
        detail = {k: v for k, v in r.items() if k not in ("wall_s", "peak_mib", "dbt_peak_mib", "hashes")}
        print(
            f"{label:18s} {r['wall_s']:8.1f} s  CPU {r['cpu_s']:8.1f} s  ×{r['wall_s'] / reference:7.1f} calib  "
            f"peak {r['peak_mib']:7.0f} MiB  dbt peak {r['dbt_peak_mib']:7.0f} MiB  {detail}",
            flush=True,
        )
    by = dict(rows)
    monthly, full = by["monthly build"], by["same month, full"]
    print(
        f"\nmonthly build (incremental) / full build of the same month: {monthly['wall_s']:.1f} s / "
        f"{full['wall_s']:.1f} s = {monthly['wall_s'] / full['wall_s']:.2f}; CPU {monthly['cpu_s']:.1f} s / "
        f"{full['cpu_s']:.1f} s = {monthly['cpu_s'] / full['cpu_s']:.2f}; "
        f"tables identical: {monthly['hashes'] == full['hashes']} ({len(full['hashes'])} tables)"
    )
    if not args.rebuild:  # the whole refresh: ingest, link, build, publish
        history_full = by["full build"]
        print(
            f"monthly build / the history's full build: {monthly['wall_s']:.1f} s / {history_full['wall_s']:.1f} s "
            f"= {monthly['wall_s'] / history_full['wall_s']:.2f}; CPU {monthly['cpu_s'] / history_full['cpu_s']:.2f}"
        )
        first, month = refresh_totals(by)
        first_cpu, month_cpu = refresh_totals(by, "cpu_s")
        print(
            f"the month's refresh (ingest, link, monthly build, publish) / the first (ingest, link, full build, "
            f"publish): {month:.1f} s / {first:.1f} s = {month / first:.3f}; "
            f"CPU {month_cpu:.1f} s / {first_cpu:.1f} s = {month_cpu / first_cpu:.3f}"
        )
    for label, r in ((k, by[k]) for k in ("monthly build", "same month, full")):
        phases = r.get("dbt_phases") or {}
        if phases:  # this code's dbt child (outcomes/marts/dbt_child.py): where its CPU went
            rest = r["cpu_s"] - phases["import_cpu_s"] - phases["command_cpu_s"]
            nodes = len(json.loads((args.work / _nodes_file(label)).read_text()))
            print(
                f"{label}: CPU {r['cpu_s']:.1f} s = dbt import {phases['import_cpu_s']:.1f} s + dbt command "
                f"{phases['command_cpu_s']:.1f} s (project load and {nodes} nodes) + the rest {rest:.1f} s "
                "(plan, hashes, the step's own imports)"
            )
    print("\n| step | wall time | CPU | × calibration | peak memory (process and children) | peak memory (dbt) |")
    print("|---|---|---|---|---|---|")
    for label, r in rows:
        print(
            f"| {label} | {r['wall_s']:.0f} s | {r['cpu_s']:.0f} s | {r['wall_s'] / reference:.0f} | "
            f"{r['peak_mib']:,.0f} MiB | {r['dbt_peak_mib']:,.0f} MiB |"
        )


if __name__ == "__main__":
    main()
