"""Benchmark: the month's publish against the history's (issue 14), on a warehouse an earlier
bench/build.py run left (its whole history ingested and linked).

    cd bench && python publish.py --warehouse /tmp/bench-build-100k/warehouse/outcomes.duckdb --work DIR

On a copy of the warehouse, each step in a fresh process (bench/_measure.py's in_child):

1. the build as of the month before the last (full: earlier than the warehouse's last build);
2. `publish history`: the refresh's publish step as bench/build.py times it, the quality gate,
   `outcomes.marts.publish` (disclosure control, then dbt builds the `published` tables with their
   tests) and the HTML report;
3. the monthly build (incremental since 1);
4. `publish last month`: the same step as 2, as of the month;
5. `same month, full publish` (where the code has `publish(full=True)`): every component of cells
   solved again, the reference the month's publish must equal, table for table.

Prints each publish's CPU (its process and its children: dbt's) split into disclosure control,
dbt and the rest, the ratio of the month's publish to the history's (the bar: a month's publish
costs what the month costs), and whether 4 and 5 give the same `published` tables (sha256 of
each). The calibration (300k HMAC-SHA256) is measured in the same run. To compare two versions of
the code, run the script with each on PYTHONPATH (a `git archive` copy), alternated.
`--profile DIR` writes a cProfile of each publish step's own process to DIR (dbt's child not in it).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from _measure import EARLIER_AS_OF, calibration_seconds, in_child

STEP = """
import inspect, resource, time
from pathlib import Path
from outcomes.eventstore import connect
from outcomes.warehouse import resolve_target
target = resolve_target({target!r})
step = {step!r}
result = {{}}
if step.startswith("publish"):  # as `outcomes refresh` ends: the gate, publish, the report
    import cProfile
    from outcomes.marts import publish
    from outcomes.ops.gate import GateConfig, gate_reasons
    from outcomes.report import write_report
    profile = cProfile.Profile() if {profile!r} else None
    if profile:
        profile.enable()
    laps, cpu = {{}}, {{}}
    def lap(name, started, children):
        laps[name] = time.perf_counter() - started
        cpu[name + "_dbt"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime + \\
            resource.getrusage(resource.RUSAGE_CHILDREN).ru_stime - children
    def children_cpu():
        r = resource.getrusage(resource.RUSAGE_CHILDREN)
        return r.ru_utime + r.ru_stime
    t, c = time.perf_counter(), children_cpu()
    with connect(target) as backend:
        with backend.transaction() as s:
            as_of = s.scalar("select max(as_of) from marts.successful_completion")
        reasons = gate_reasons(backend, as_of, GateConfig.from_env(), [])
    lap("gate", t, c)
    t, c = time.perf_counter(), children_cpu()
    if step == "publish full":
        p = publish(target, as_of, full=True)
    else:
        p = publish(target, as_of)
    lap("publish", t, c)
    t, c = time.perf_counter(), children_cpu()
    report = Path({work!r}) / f"outcomes_report_{{as_of}}.html"
    with connect(target) as backend:
        write_report(backend, report)
    lap("report", t, c)
    if profile:
        profile.disable()
        profile.dump_stats({profile!r})
    result = {{"as_of": str(as_of), "gate": reasons or "open", "published_tables": len(p.hashes),
              "published_rows": sum(p.rows.values()), "tests": p.tests, "hashes": p.hashes,
              "disclosure": p.disclosure[:2], "laps_s": {{k: round(v, 2) for k, v in laps.items()}},
              "dbt_cpu_s": round(cpu["publish_dbt"], 2),
              "full_supported": "full" in inspect.signature(publish).parameters}}
else:
    from outcomes.marts import build
    as_of = None
    if step == "earlier build":  # as of the last extract date before the latest month
        with connect(target) as backend, backend.transaction() as s:
            as_of = s.scalar({earlier_as_of!r})
    b = build(target, as_of=as_of)
    result = {{"as_of": str(b.as_of), "plan": b.plan, "tables": len(b.hashes)}}
"""


def disclosure_seconds(lines: list[str]) -> float:
    """The disclosure step's own seconds, from the first line of its report (`..., 12.3 s`)."""
    return float(lines[0].rsplit(",", 1)[1].strip().removesuffix(" s")) if lines else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warehouse", type=Path, required=True, help="a bench/build.py run's warehouse")
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench-publish"))
    parser.add_argument("--profile", type=Path, help="write a cProfile of each publish step here")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--no-full", action="store_true", help="leave out the same month's full publish")
    args = parser.parse_args()
    reference = calibration_seconds()
    print(f"calibration (300k HMAC-SHA256): {reference:.2f} s", flush=True)
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    target = str(args.work / "outcomes.duckdb")
    shutil.copy(args.warehouse, target)
    # The history's publish starts as a first publish does: no solutions of an earlier one to reuse.
    in_child(
        f"import duckdb\ncon = duckdb.connect({target!r})\n"
        "con.execute('drop table if exists disclosure.solved_components')\ncon.close()\nresult = {}\n"
    )
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    rows: dict[str, dict] = {}
    steps = [
        ("earlier build", "earlier build"),
        ("publish history", "publish"),
        ("monthly build", "build"),
        ("publish last month", "publish"),
        ("same month, full publish", "publish full"),
    ]
    for label, step in steps:
        if step == "publish full" and (args.no_full or not rows["publish last month"].get("full_supported")):
            continue  # this code's every publish is a full one
        profile = str(args.profile / f"{label.replace(' ', '_').replace(',', '')}.prof") if args.profile else ""
        r = in_child(
            STEP.format(target=target, step=step, work=str(args.work), profile=profile, earlier_as_of=EARLIER_AS_OF)
        )
        rows[label] = r
        shown = {k: v for k, v in r.items() if k not in ("hashes", "wall_s", "cpu_s", "peak_mib")}
        print(
            f"{label:26s} {r['wall_s']:7.1f} s  CPU {r['cpu_s']:7.1f} s  ×{r['cpu_s'] / reference:6.1f} calib  "
            f"peak {r['peak_mib']:6.0f} MiB  {shown}",
            flush=True,
        )
    history, month = rows["publish history"], rows["publish last month"]
    print()
    for label in ("publish history", "publish last month", "same month, full publish"):
        if label not in rows:
            continue
        r = rows[label]
        control, rest = disclosure_seconds(r["disclosure"]), r["cpu_s"] - r["dbt_cpu_s"]
        print(
            f"{label}: CPU {r['cpu_s']:.1f} s = dbt {r['dbt_cpu_s']:.1f} s + the rest {rest:.1f} s "
            f"(disclosure control {control:.1f} s wall, report {r['laps_s']['report']:.1f} s wall)"
        )
    ratio = month["cpu_s"] / history["cpu_s"]
    print(
        f"\nmonth's publish / history's publish: CPU {month['cpu_s']:.1f} s / {history['cpu_s']:.1f} s = {ratio:.3f}; "
        f"wall {month['wall_s']:.1f} s / {history['wall_s']:.1f} s = {month['wall_s'] / history['wall_s']:.3f}"
    )
    if "same month, full publish" in rows:
        full = rows["same month, full publish"]
        print(
            f"month's publish / the same month published in full: CPU {month['cpu_s'] / full['cpu_s']:.3f}; "
            f"published tables identical: {month['hashes'] == full['hashes']} ({len(full['hashes'])} tables)"
        )
    if args.json:
        args.json.write_text(json.dumps({"calibration_s": reference, "steps": rows}, indent=1))


if __name__ == "__main__":
    main()
