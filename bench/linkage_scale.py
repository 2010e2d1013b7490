"""Benchmark: the real `linkage.run.link()` on a large synthetic population.

    python bench/linkage_scale.py --population DIR [--warehouse W] [--incremental] [--chunk N]

DIR is the output of `outcomes synth` (landing/ and truth/). The linkage input is read straight
from the deliveries (linkage.records.records_from_deliveries: the as-of state an ingest would
leave), so that ingestion is not part of the figure; the run itself is the real `link()` into a
fresh DuckDB warehouse, with ground truth. With --incremental, the first run links every month
but the last, and a second run links the last month (compared against the whole spine).

Runs in a fresh process (bench/_measure.in_child): wall time, peak memory, seconds per stage,
candidate pairs, chunks, then the blocking and quality tables of the (first) run.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from _measure import calibration_seconds, in_child

RUN = """
import datetime as dt, time
from pathlib import Path
from linkage.records import records_from_deliveries
from linkage.run import link
from outcomes.eventstore import connect
from outcomes.warehouse import resolve_target
landing, truth = Path({root!r}, "landing"), (Path({root!r}, "truth") if {with_truth!r} else None)
runs = []
t = time.perf_counter()
box = list(records_from_deliveries(landing))  # (records, last extract date)
load_s = time.perf_counter() - t
n_records, last = len(box[0]), box[1]
cut = None
if {incremental!r}:
    months = sorted({{f.name.split("_")[-2] for f in landing.glob("*.parquet")}})
    y, m, d = months[-2][:4], months[-2][4:6], months[-2][6:]
    cut = dt.date(int(y), int(m), int(d))
with connect(resolve_target({warehouse!r})) as backend:
    if {memory_limit!r}:  # DuckDB's buffer pool counts in the process's memory
        backend.con.execute("set memory_limit = '{memory_limit}'")
    if cut is not None:
        first = [records_from_deliveries(landing, as_of=cut)[0]]
        t = time.perf_counter()
        res = link(backend, truth=truth, records=first.pop(), as_of=cut, chunk={chunk!r})
        runs.append((res, time.perf_counter() - t))
    t = time.perf_counter()
    # the list gives up its reference: link() holds the only one and can free it
    res = link(backend, truth=truth, records=box.pop(0), as_of=last, chunk={chunk!r})
    runs.append((res, time.perf_counter() - t))
result = {{"records": n_records, "load_s": load_s, "runs": [
    {{"run_id": r.run_id, "records_new": r.records_new, "variants": r.variants, "candidate_pairs": r.candidate_pairs,
      "chunks": r.chunks, "links": r.links, "reviews": r.reviews, "seconds_total": s, "stages": r.stages,
      "blocking": r.blocking,
      "quality": None if r.quality is None else r.quality.drop(columns=["as_of"]).to_dict("records")}}
    for r, s in runs]}}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--population", type=Path, required=True)
    parser.add_argument("--warehouse", type=Path, default=Path("/tmp/bench-linkage-scale/w.duckdb"))
    parser.add_argument("--incremental", action="store_true")
    parser.add_argument("--chunk", type=int, default=1_000_000)
    parser.add_argument("--duckdb-memory", default="4GB", help="DuckDB memory_limit for the warehouse connection")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--no-truth", action="store_true", help="no ground truth: no completeness nor quality")
    args = parser.parse_args()
    args.warehouse.parent.mkdir(parents=True, exist_ok=True)
    args.warehouse.unlink(missing_ok=True)
    reference = calibration_seconds()
    print(f"calibration (300k HMAC-SHA256): {reference:.2f} s")
    r = in_child(
        RUN.format(
            root=str(args.population),
            warehouse=str(args.warehouse),
            incremental=args.incremental,
            chunk=args.chunk,
            memory_limit=args.duckdb_memory,
            with_truth=not args.no_truth,
        )
    )
    print(
        f"{r['records']:,} records; child wall {r['wall_s']:.0f} s ({r['wall_s'] / reference:.0f} x calibration), "
        f"peak memory {r['peak_mib']:,.0f} MiB; reading deliveries {r['load_s']:.0f} s"
    )
    for run in r["runs"]:
        print(
            f"run {run['run_id']}: {run['records_new']:,} new records, {run['variants']:,} identities, "
            f"{run['candidate_pairs']:,} candidate pairs in {run['chunks']} chunks, {run['links']:,} links, "
            f"{run['reviews']:,} reviews; link() {run['seconds_total']:.0f} s"
        )
        print("  stages (s): " + ", ".join(f"{k} {v:.0f}" for k, v in run["stages"].items()))
        print("  pass | pairs | new pairs | reduction ratio | pair completeness")
        for name, pairs, new, rr, pc in run["blocking"]:
            print(f"  {name} | {pairs:,} | {new:,} | {rr:.6f} | {'' if pc is None else f'{pc:.4f}'}")
        if run["quality"] and run["quality"][0]["pairwise_precision"] == run["quality"][0]["pairwise_precision"]:
            print("  source pair | precision | recall | F1 | cluster P | cluster R | cluster F1")
            for q in run["quality"]:
                print(
                    f"  {q['source_a']}-{q['source_b']} | {q['pairwise_precision']:.4f} | {q['pairwise_recall']:.4f} | "
                    f"{q['pairwise_f1']:.4f} | {q['cluster_precision']:.4f} | {q['cluster_recall']:.4f} | "
                    f"{q['cluster_f1']:.4f}"
                )
    if args.json:
        args.json.write_text(json.dumps({"calibration_s": reference, **r}, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
