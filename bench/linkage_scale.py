"""Benchmark: the real `linkage.run.link()` on a large synthetic population.

    python bench/linkage_scale.py --population DIR [--warehouse W] [--incremental] [--chunk N] [--event-store]
        [--queue]

DIR is the output of `outcomes synth` (landing/ and truth/). The linkage input is read straight
from the deliveries (linkage.records.records_from_deliveries: the as-of state an ingest would
leave), so that ingestion is not part of the figure; the run itself is the real `link()` into a
fresh DuckDB warehouse, with ground truth. With --incremental, the first run links every month
but the last, and a second run, in a fresh process of its own, links the last month (its time and
peak memory are the month's alone; `--whole` makes it read the whole population as a first run
does, `--memory-limit` sets link()'s memory budget).

With --queue, the review queue each run leaves is broken down against the truth (`review_queue.py`:
by reason, band of match probability and source pair; one person, twins or two people).

Each run is a fresh process (bench/_measure.in_child): wall time, peak memory, seconds per stage,
candidate pairs, chunks, then the blocking and quality tables. The month's peak includes the
records read from the deliveries (every record of the as-of state: the bench has no event store).

With --event-store the runs read the warehouse's event store, as `outcomes link` does: before each
run a fresh process ingests the deliveries it adds (a copy of the landing folder, every month but
the last, then the last; `outcomes.ingest.Ingestor`, timed and reported apart), and `link()` is
given no records — a monthly run then reads only the records with events since the last run (the
ledger), and the month's peak is `link()`'s own. `--month-memory-limit` gives the month a budget of
its own (e.g. 2GB, the issue's monthly target, with 4GB for the first run); `--keep-first DIR`
copies the warehouse with its landing and archive folders after the first run, and `--month-from
DIR` runs only the month on a copy of that (the first run's figures read from DIR/first.json),
so that the month can be measured again without the first run.
"""

from __future__ import annotations

import argparse
import json
import shutil
import textwrap
from pathlib import Path

from _measure import calibration_seconds, in_child

# Order-free fingerprints of what a run leaves (the spine, its decisions and quality tables), to show
# that two versions of the code give the same result: a sum of DuckDB row hashes per table.
FINGERPRINT = """
_tables = {{
    "spine": "select source, record_id, person_id from linkage.person_records",
    "pair_decisions": "select * exclude (run_id) from linkage.pair_decisions",
    "quality": "select * exclude (run_id) from linkage.quality",
    "quality_by_group": "select * exclude (run_id) from linkage.quality_by_group",
    "match_rates": "select * exclude (run_id) from linkage.match_rates",
    "identities": "select * exclude (run_id) from linkage.identities",
    "record_keys": "select * from linkage.record_keys",
}}
_sum = "select count(*) || ':' || coalesce(sum(hash(t::varchar)), 0) from ({{}}) t"
_fingerprints = {{
    k: str(backend.con.execute(_sum.format(q)).fetchone()[0])
    for k, q in _tables.items()
}}
"""

# The process's CPU seconds per stage (every thread's, DuckDB's too), read at each stage's end through
# link()'s on_stage callback (so older code is measured the same way): on a loaded machine a stage's
# wall time counts the other processes' time too. Set after STAGE_MEMORY (its sampling not counted).
STAGE_CPU = """
_cpu = {"mark": 0.0, "stages": {}}
_stage_before = options.get("on_stage")
def _on_stage_cpu(stage):
    now = time.process_time()
    _cpu["stages"][stage] = round(_cpu["stages"].get(stage, 0.0) + now - _cpu["mark"], 3)
    if _stage_before is not None:
        _stage_before(stage)
    _cpu["mark"] = time.process_time()
options = dict(options, on_stage=_on_stage_cpu)
"""

STAGE_MEMORY = """
import threading
_rss = {"stage_peak": 0, "marks": {}, "runs": [], "seen": ""}
def _now_mib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20
def _sample():
    while True:
        _rss["stage_peak"] = max(_rss["stage_peak"], _now_mib())
        time.sleep(0.02)
threading.Thread(target=_sample, daemon=True).start()
def _on_stage(stage):
    now = _now_mib()
    peak = max(_rss["stage_peak"], now)
    old = _rss["marks"].get(stage)
    _rss["marks"][stage] = [max(peak, old[0]) if old else peak, now]
    # each run's peak (a partitioned first run: a run a partition; every run ends with its "quality"
    # stage, told twice: a stage after a "quality" starts the next run)
    if not _rss["runs"] or (stage != "quality" and _rss["seen"] == "quality"):
        _rss["runs"].append(0)
    _rss["seen"] = stage
    _rss["runs"][-1] = max(_rss["runs"][-1], peak)
    _rss["stage_peak"] = now
options = dict(options, on_stage=_on_stage)
"""

RUN = """
import datetime as dt, time
from pathlib import Path
from linkage.records import records_from_deliveries
from linkage.run import link
from outcomes.eventstore import connect
from outcomes.warehouse import resolve_target
landing, truth = Path({root!r}, "landing"), (Path({root!r}, "truth") if {with_truth!r} else None)
months = sorted({{f.name.split("_")[-2] for f in landing.glob("*.parquet")}})
y, m, d = months[-2][:4], months[-2][4:6], months[-2][6:]
cut = dt.date(int(y), int(m), int(d))
t = time.perf_counter()
# {part}: "all" every month at once; "first" every month but the last; "month" the last month
box = list(records_from_deliveries(landing, as_of=cut if {part!r} == "first" else None))
load_s = time.perf_counter() - t
n_records, last = len(box[0]), box[1]
options = {options!r}  # only what the caller set: the code under test may be older than these options
{stage_memory}
{stage_cpu}
with connect(resolve_target({warehouse!r})) as backend:
    if {duckdb_memory!r}:  # DuckDB's buffer pool counts in the process's memory
        backend.con.execute("set memory_limit = '{duckdb_memory}'")
    import resource
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # the records read, the interpreter
    t = time.perf_counter()
    _cpu["mark"] = time.process_time()
    # the list gives up its reference: link() holds the only one and can free it
    res = link(backend, truth=truth, records=box.pop(0), as_of=last, chunk={chunk!r}, **options)
    seconds = time.perf_counter() - t
    peak_link = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # before the fingerprints
{fingerprint}result = {{"records": n_records, "load_s": load_s, "peak_before_link_mib": rss_before, "runs": [
    {{"run_id": r.run_id, "records_new": r.records_new, "variants": r.variants, "candidate_pairs": r.candidate_pairs,
      "chunks": r.chunks, "links": r.links, "reviews": r.reviews, "seconds_total": s, "stages": r.stages,
      "stages_cpu": dict(_cpu["stages"]),
      "blocking": r.blocking, "incremental": getattr(r, "incremental", None),
      "records_read": getattr(r, "records_read", None),
      "quality": None if r.quality is None else r.quality.drop(columns=["as_of"]).to_dict("records")}}
    for r, s in [(res, seconds)]]}}
result["fingerprints"] = _fingerprints
result["peak_link_mib"] = peak_link
result["stage_memory"] = globals().get("_rss", {{}}).get("marks")
result["run_peaks"] = globals().get("_rss", {{}}).get("runs")
"""

STORE = """
import datetime as dt, time
from pathlib import Path
from linkage.run import link
from outcomes.eventstore import connect
from outcomes.warehouse import resolve_target
landing, truth = Path({landing!r}), (Path({root!r}, "truth") if {with_truth!r} else None)
months = sorted({{f.name.split("_")[-2] for f in Path({root!r}, "landing").glob("*.parquet")}})
day = lambda m: dt.date(int(m[:4]), int(m[4:6]), int(m[6:]))
cut, last = day(months[-2]), day(months[-1])
with connect(resolve_target({warehouse!r})) as backend:
    if {ingest!r}:
        from outcomes.ingest import Ingestor
        if {ingest_memory!r}:  # DuckDB's buffer pool, else 80% of the machine's memory
            backend.con.execute("set memory_limit = '{ingest_memory}'")
        t = time.perf_counter()
        report = Ingestor(backend, Path({landing!r}).parent / "archive", horizon=last).ingest(
            landing, until=cut if {part!r} == "first" else None)
        result = {{"ingest_s": time.perf_counter() - t, "runs": []}}
    else:
        options = {options!r}
{stage_memory_store}
{stage_cpu_store}
        t = time.perf_counter()
        _cpu["mark"] = time.process_time()
        res = link(backend, truth=truth, as_of=cut if {part!r} == "first" else last, chunk={chunk!r}, **options)
        seconds = time.perf_counter() - t
        # records: those read by link() (the whole as-of state on a first run; a month reads fewer)
        result = {{"records": res.records_read, "load_s": 0.0, "peak_before_link_mib": 0.0, "runs": [
            {{"run_id": r.run_id, "records_new": r.records_new, "variants": r.variants,
              "candidate_pairs": r.candidate_pairs, "chunks": r.chunks, "links": r.links, "reviews": r.reviews,
              "seconds_total": s, "stages": r.stages, "blocking": r.blocking, "incremental": r.incremental,
              "stages_cpu": dict(_cpu["stages"]),
              "records_read": r.records_read, "delta": getattr(r, "delta", ""),
              "prescored": (lambda p: None if p is None else vars(p))(getattr(r, "prescored", None)),
              "quality": None if r.quality is None else r.quality.drop(columns=["as_of"]).to_dict("records")}}
            for r, s in [(res, seconds)]]}}
        result["stage_memory"] = globals().get("_rss", {{}}).get("marks")
        result["run_peaks"] = globals().get("_rss", {{}}).get("runs")
"""

# The event store's runs: what the warehouse holds after a run, read in a process of its own (the
# run's peak is not moved by it), to show that two versions of the code link a month alike.
STORE_FINGERPRINT = """
from outcomes.eventstore import connect
from outcomes.warehouse import resolve_target
with connect(resolve_target({warehouse!r})) as backend:
    _tables = {{
        "spine": "select source, record_id, person_id from linkage.person_records",
        "link_events": "select * exclude (run_id) from linkage.link_events",
        "pair_decisions": "select * exclude (run_id) from linkage.pair_decisions",
        "blocking_passes": "select * exclude (run_id) from linkage.blocking_passes",
        "runs": "select records_new, variants, candidate_pairs, links, reviews, merges, persons_new, splits "
        "from linkage.runs",
        "record_keys": "select * from linkage.record_keys",
        "quality": "select * exclude (run_id) from linkage.quality",
    }}
    _sum = "select count(*) || ':' || coalesce(sum(hash(t::varchar)), 0) from ({{}}) t"
    result = {{k: str(backend.con.execute(_sum.format(q)).fetchone()[0]) for k, q in _tables.items()}}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--population", type=Path, required=True)
    parser.add_argument("--warehouse", type=Path, default=Path("/tmp/bench-linkage-scale/w.duckdb"))
    parser.add_argument("--incremental", action="store_true")
    parser.add_argument("--chunk", type=int, default=1_000_000)
    parser.add_argument(
        "--duckdb-memory", default="", help="DuckDB memory_limit set on the connection before link() (older code)"
    )
    parser.add_argument("--memory-limit", default="", help="link()'s memory budget (memory_limit=), e.g. 4GB")
    parser.add_argument(
        "--month-memory-limit", default="", help="the month's run's memory budget apart (default --memory-limit)"
    )
    parser.add_argument("--whole", action="store_true", help="the month's run reads the whole population")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--no-truth", action="store_true", help="no ground truth: no completeness nor quality")
    parser.add_argument(
        "--event-store", action="store_true", help="ingest the deliveries first; link() reads the event store"
    )
    parser.add_argument(
        "--reference",
        type=Path,
        help="the --json of a reference run (other code, same sitting): print this run's ratios to it",
    )
    parser.add_argument(
        "--queue",
        action="store_true",
        help="break the review queue each run leaves down by reason, probability band and truth (review_queue.py)",
    )
    parser.add_argument(
        "--stage-memory",
        action="store_true",
        help="sample the process's resident memory (every 20 ms) and print its peak and end value per stage",
    )
    parser.add_argument(
        "--ingested",
        type=Path,
        default=None,
        help="--event-store, no --incremental: the deliveries applied already, in DIR/w.duckdb (kept there by "
        "an earlier run of this option: ingested then, copied on later runs), so that runs compared in one "
        "sitting (e.g. a first run in one pass and partition by partition) share one ingest",
    )
    parser.add_argument(
        "--keep-first",
        type=Path,
        help="--event-store: copy the warehouse and its landing and archive folders here after the first run",
    )
    parser.add_argument(
        "--month-from",
        type=Path,
        help="--event-store: only the month, on a copy of what --keep-first kept (its first run's JSON: "
        "first.json there, for the ratios)",
    )
    parser.add_argument(
        "--ingest-memory",
        default="",
        help="--event-store: DuckDB's memory_limit while ingesting (e.g. 1GB; default DuckDB's own, 80%% of RAM)",
    )
    args = parser.parse_args()
    args.warehouse.parent.mkdir(parents=True, exist_ok=True)
    args.warehouse.unlink(missing_ok=True)
    landing = args.warehouse.parent / (args.warehouse.stem + "-landing")
    if args.event_store:
        for folder in (landing, landing.parent / "archive"):
            shutil.rmtree(folder, ignore_errors=True)
        if args.month_from:  # the state the first run left, kept by --keep-first
            shutil.copy(args.month_from / "w.duckdb", args.warehouse)
            shutil.copytree(args.month_from / "landing", landing)
            shutil.copytree(args.month_from / "archive", landing.parent / "archive")
        else:
            shutil.copytree(args.population / "landing", landing)
    reference = calibration_seconds()
    print(f"calibration (300k HMAC-SHA256): {reference:.2f} s")
    options = {}
    if args.memory_limit:
        options["memory_limit"] = args.memory_limit
    if args.whole:
        options["incremental"] = False
    children = []
    month_options = dict(options, memory_limit=args.month_memory_limit) if args.month_memory_limit else options
    if args.month_from:
        children.append(json.loads((args.month_from / "first.json").read_text()))
    parts = ("first", "month") if args.incremental else ("all",)
    for part in parts[1:] if args.month_from else parts:
        if args.event_store:
            fill = {"root": str(args.population), "landing": str(landing), "warehouse": str(args.warehouse)}
            fill.update(part=part, chunk=args.chunk, with_truth=not args.no_truth)
            fill["stage_memory_store"] = textwrap.indent(STAGE_MEMORY, " " * 8) if args.stage_memory else ""
            fill["stage_cpu_store"] = textwrap.indent(STAGE_CPU, " " * 8)
            kept = args.ingested / "w.duckdb" if args.ingested and part == "all" else None
            if kept is not None and kept.exists():
                shutil.copy(kept, args.warehouse)
                print(f"{part}: the deliveries applied already, copied from {kept}")
            else:
                r = in_child(STORE.format(ingest=True, options={}, ingest_memory=args.ingest_memory, **fill))
                print(f"{part}: ingest {r['ingest_s']:.0f} s, peak memory {r['peak_mib']:,.0f} MiB (apart from link())")
                if kept is not None:
                    kept.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy(args.warehouse, kept)
            opts = month_options if part == "month" else {k: v for k, v in options.items() if k != "incremental"}
            r = in_child(STORE.format(ingest=False, options=opts, ingest_memory="", **fill))
            if part == "month":
                prints = in_child(STORE_FINGERPRINT.format(warehouse=str(args.warehouse)))
                r["fingerprints"] = {k: v for k, v in prints.items() if isinstance(v, str)}
        else:
            r = in_child(
                RUN.format(
                    root=str(args.population),
                    warehouse=str(args.warehouse),
                    part=part,
                    chunk=args.chunk,
                    duckdb_memory=args.duckdb_memory,
                    with_truth=not args.no_truth,
                    stage_memory=STAGE_MEMORY if args.stage_memory else "",
                    stage_cpu=STAGE_CPU,
                    fingerprint=textwrap.indent(FINGERPRINT.format(), " " * 4),
                    options=month_options
                    if part == "month"
                    else {k: v for k, v in options.items() if k != "incremental"},
                )
            )
        children.append({"part": part, **r})
        if part == "first" and args.keep_first:
            shutil.rmtree(args.keep_first, ignore_errors=True)
            args.keep_first.mkdir(parents=True)
            shutil.copy(args.warehouse, args.keep_first / "w.duckdb")
            shutil.copytree(landing, args.keep_first / "landing")
            shutil.copytree(landing.parent / "archive", args.keep_first / "archive")
            (args.keep_first / "first.json").write_text(json.dumps(children[-1], default=str))
        print(
            f"{part}: {r['records']:,} records; child wall {r['wall_s']:.0f} s "
            f"({r['wall_s'] / reference:.1f} x calibration), peak memory {r['peak_mib']:,.0f} MiB"
            + (f" ({r['peak_link_mib']:,.0f} MiB at the end of link())" if "peak_link_mib" in r else "")
            + "; "
            f"reading deliveries {r['load_s']:.0f} s (peak {r.get('peak_before_link_mib', 0):,.0f} MiB before link())"
        )
        for run in r["runs"]:
            print(
                f"run {run['run_id']}: {run['records_new']:,} new records, {run['variants']:,} identities, "
                f"{run['candidate_pairs']:,} candidate pairs in {run['chunks']} chunks, {run['links']:,} links, "
                f"{run['reviews']:,} reviews; link() {run['seconds_total']:.1f} s"
                + (f"; incremental, {run['records_read']:,} records read" if run.get("incremental") else "")
                + (f" (delta: {run['delta']})" if run.get("delta") else "")
            )
            if run.get("prescored"):
                p = run["prescored"]
                print(
                    f"  scored first: {p['identities']:,} identities read (for {p['records']:,} records), "
                    f"{p['pairs']:,} candidate pairs, {p['scored']:,} at or above the review level; "
                    f"{p['nodes']:,} nodes read whole"
                )
            if run.get("records_new"):
                print(f"  records read per new record: {run['records_read'] / run['records_new']:.2f}")
            print("  stages (s): " + ", ".join(f"{k} {v:.1f}" for k, v in run["stages"].items()))
            if run.get("stages_cpu"):  # the process's CPU seconds (every thread's) per stage
                print("  stages (CPU s): " + ", ".join(f"{k} {v:.1f}" for k, v in run["stages_cpu"].items()))
            if r.get("fingerprints"):
                print("  fingerprints (rows:hash): " + ", ".join(f"{k} {v}" for k, v in r["fingerprints"].items()))
            if r.get("stage_memory"):
                print(
                    "  resident memory by stage (MiB, peak during / at its end): "
                    + ", ".join(f"{k} {p:,.0f}/{e:,.0f}" for k, (p, e) in r["stage_memory"].items())
                )
            if r.get("run_peaks") and len(r["run_peaks"]) > 1:  # a partitioned first run: each partition's
                print("  peak by run (MiB, partition by partition): " + ", ".join(f"{p:,.0f}" for p in r["run_peaks"]))
            print("  pass | pairs | new pairs | reduction ratio | pair completeness")
            for name, pairs, new, rr, pc in run["blocking"]:
                print(f"  {name} | {pairs:,} | {new:,} | {rr:.6f} | {'' if pc is None else f'{pc:.4f}'}")
            if args.queue and not args.no_truth:
                from review_queue import queue, report

                lines = report(queue(args.warehouse, args.population, run["run_id"]), r["records"])
                print("\n".join("  queue: " + line for line in lines))
            q0 = run["quality"][0] if run["quality"] else None
            if q0 and q0["pairwise_precision"] == q0["pairwise_precision"]:
                print("  source pair | precision | recall | F1 | cluster P | cluster R | cluster F1")
                for q in run["quality"]:
                    print(
                        f"  {q['source_a']}-{q['source_b']} | {q['pairwise_precision']:.4f} | "
                        f"{q['pairwise_recall']:.4f} | {q['pairwise_f1']:.4f} | {q['cluster_precision']:.4f} | "
                        f"{q['cluster_recall']:.4f} | {q['cluster_f1']:.4f}"
                    )
    if len(children) == 2:
        first, month = children[0]["runs"][0], children[1]["runs"][0]
        print(
            f"month / first: link() time {month['seconds_total'] / first['seconds_total']:.3f}, "
            f"peak memory {children[1]['peak_mib'] / children[0]['peak_mib']:.3f}"
        )
    if args.reference:
        for line in ratios(json.loads(args.reference.read_text()), children):
            print(line)
    if args.json:
        args.json.write_text(json.dumps({"calibration_s": reference, "children": children}, indent=2, default=str))


def ratios(reference: dict, children: list[dict]) -> list[str]:
    """This run against a reference run's --json, part by part: link() time, peak memory (the
    process's, and to the end of link()), link()'s CPU seconds and each stage's, and each stage's
    peak and end value as ratios (this / reference), and whether every fingerprint is the reference's."""
    lines = []
    for mine, ref in zip(children, reference["children"], strict=False):
        run, base = mine["runs"][0], ref["runs"][0]
        peaks = [
            f"link() time {run['seconds_total'] / base['seconds_total']:.3f}",
            f"peak {mine['peak_mib'] / ref['peak_mib']:.3f}",
        ]
        if "peak_link_mib" in mine and "peak_link_mib" in ref:
            peaks.append(f"peak to the end of link() {mine['peak_link_mib'] / ref['peak_link_mib']:.3f}")
        cpu, old_cpu = run.get("stages_cpu") or {}, base.get("stages_cpu") or {}
        if cpu and old_cpu:  # link()'s CPU seconds: the sum of its stages'
            peaks.insert(1, f"link() CPU {sum(cpu.values()) / max(sum(old_cpu.values()), 1e-9):.3f}")
        lines.append(f"{mine['part']} / reference: " + ", ".join(peaks))
        shared = [k for k in cpu if k in old_cpu and old_cpu[k] > 0]
        if shared:
            lines.append("  stage CPU / reference: " + ", ".join(f"{k} {cpu[k] / old_cpu[k]:.3f}" for k in shared))
        marks, old = mine.get("stage_memory") or {}, ref.get("stage_memory") or {}
        both = [k for k in marks if k in old]
        if both:
            lines.append(
                "  stage memory / reference (peak, end): "
                + ", ".join(f"{k} {marks[k][0] / old[k][0]:.3f}, {marks[k][1] / old[k][1]:.3f}" for k in both)
            )
        prints, old_prints = mine.get("fingerprints") or {}, ref.get("fingerprints") or {}
        if prints and old_prints:
            differ = sorted(k for k in set(prints) | set(old_prints) if prints.get(k) != old_prints.get(k))
            lines.append("  fingerprints: " + ("equal" if not differ else "DIFFER: " + ", ".join(differ)))
    return lines


if __name__ == "__main__":
    main()
