"""Benchmark: the same population linked by the local engine and by the Spark engine, in one run.

    python bench/linkage_spark.py --persons 20000 [--population DIR] [--master local[2]] [--json FILE]
        [--engines local,spark]

Each engine links every record of the population (read straight from its deliveries, as
bench/linkage_scale.py does, into a fresh DuckDB warehouse, with ground truth) in a fresh
process. Measured per engine: wall time of the whole process (the Spark engine's includes
starting its JVM) and of `link()`, and peak memory of the process tree (the Python process, the
JVM and the Python workers Spark starts: the peak of their summed resident memory, sampled every
0.2 s; also per role, driver (the Python process) / jvm / workers (Python under the JVM), and per
stage, as resident and as proportional set size, which counts pages the forked workers share
with their daemon once); then the ratios Spark / local, a CPU-bound reference measured in the same run, and
whether the two spines are the same. The JSON also records the commit, when each engine ran and
the load average (1, 5, 15 min) as each ended: the cores may be shared. `--engines spark` runs one
engine alone (no ratios), e.g. where the other does not fit in memory.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
from _measure import calibration_seconds, ensure_population

RUN = """
import hashlib, json, time
from pathlib import Path
from linkage.records import records_from_deliveries
from linkage.engines import link_function
from outcomes.eventstore import connect
from outcomes.warehouse import resolve_target
root = Path({root!r})
run = link_function({engine!r})  # the engine's modules loaded before the reading, in every version of the code
t = time.perf_counter()
given = list(records_from_deliveries(root / "landing"))  # handed over below: link() holds the only reference
last, n = given[1], len(given[0])
deliveries_s = time.perf_counter() - t
try:  # the reading's freed pages (DuckDB's buffers, Arrow's) given back before link() starts
    from linkage.run import release_memory
    import gc
    gc.collect()
    release_memory()
except ImportError:
    pass
Path({stage_file!r}).write_text("deliveries")  # what follows is link()'s: its stages' peaks
{census}
def on_stage(stage):
    Path({stage_file!r}).write_text(stage)
    if {frames!r}:
        census(stage, Path({frames!r}))
session = None
if {engine!r} == "spark":
    from linkage.spark.session import spark_session
    t = time.perf_counter()
    sized = {{"memory_limit": {memory!r}}} if {memory!r} else {{}}  # the JVM sized from the budget
    session = spark_session({master!r}, **sized)
    session.range(1).count()  # the JVM up and its first job run
    start_s = time.perf_counter() - t
else:
    start_s = 0.0
t = time.perf_counter()
with connect(resolve_target({warehouse!r})) as backend:
    # the records handed over (plain keywords: a ** call's dict would hold them to the end), so
    # that the engine drops them once it has read its copy, as when it reads the warehouse
    if session is None:
        res = run(backend, truth=root / "truth", records=given.pop(0), as_of=last, on_stage=on_stage,
            memory_limit={memory!r} or None)
    else:
        res = run(backend, truth=root / "truth", records=given.pop(0), as_of=last, on_stage=on_stage,
            memory_limit={memory!r} or None, spark=session)
    link_s = time.perf_counter() - t
    with backend.transaction() as s:
        table = s.fetch("select source, record_id, person_id from linkage.link_events order by 1, 2")
    if {spine_file!r}:  # kept, to list the records whose clusters differ between the engines
        import pyarrow.parquet as pq
        pq.write_table(table, {spine_file!r})
    # the hash of json.dumps(table.to_pylist()), made batch by batch: not a dict a record at once
    spine, sep = hashlib.sha256(b"["), ""
    for batch in table.to_batches(max_chunksize=200_000):
        rows = batch.to_pylist()
        if rows:
            spine.update((sep + ", ".join(json.dumps(x) for x in rows)).encode())
            sep = ", "
    spine.update(b"]")
    del table
print(json.dumps({{"records": n, "start_s": start_s, "link_s": link_s, "stages": res.stages,
    "deliveries_s": deliveries_s, "candidate_pairs": res.candidate_pairs, "links": res.links,
    "reviews": res.reviews, "spine": spine.hexdigest()}}))
"""

# --frames: as each stage ends, the driver's largest frames, Arrow tables and arrays (what holds
# its memory), one JSON line per stage. Costly (every object column's strings are measured): for
# a census run, not for timing.
CENSUS = """
import gc, json
import numpy as np, pandas as pd, pyarrow as pa

def census(stage, out, top=12, floor=8 << 20):
    found, seen = [], set()
    def add(x, what, nbytes, shape, columns):
        if nbytes >= floor:
            found.append({"what": what, "mib": round(nbytes / 2**20, 1), "shape": list(shape), "columns": columns})
    held = set()
    for o in gc.get_objects():
        if id(o) in seen:
            continue
        if isinstance(o, pd.DataFrame):
            seen.add(id(o))
            held.update(id(b.values) for b in o._mgr.blocks)
            size = int(o.memory_usage(deep=True, index=True).sum())
            add(o, "DataFrame", size, o.shape, list(map(str, o.columns))[:8])
        elif isinstance(o, pa.Table):
            seen.add(id(o))
            add(o, "Table", o.nbytes, o.shape, o.column_names[:8])
    for o in gc.get_objects():  # arrays held by containers, not frames (numpy arrays are not tracked)
        if isinstance(o, (dict, list, tuple)):
            for x in gc.get_referents(o):
                if isinstance(x, np.ndarray) and id(x) not in seen and id(x) not in held and x.base is None:
                    seen.add(id(x))
                    add(x, f"ndarray {x.dtype}", x.nbytes, x.shape, None)
    found.sort(key=lambda f: -f["mib"])
    total = round(sum(f["mib"] for f in found), 1)
    with out.open("a") as f:
        f.write(json.dumps({"after": stage, "mib_over_floor": total, "largest": found[:top]}) + "\\n")
"""

ROLES = ("driver", "jvm", "workers")
OUTSIDE = ("deliveries", "after")  # the bench's own work before and after link()


def tree_memory(process: psutil.Process) -> dict[str, tuple[int, int]]:
    """(resident, proportional) bytes of a process and every process below it, by role: the
    process itself (driver), Java processes (jvm), and processes below a Java one (workers)."""
    out = dict.fromkeys(ROLES, (0, 0))
    below_java: set[int] = set()
    for p in [process, *process.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):  # a worker may end while we count
            if p.pid == process.pid:
                role = "driver"
            elif p.ppid() in below_java or "java" in p.name():
                role = "jvm" if "java" in p.name() else "workers"
                below_java.add(p.pid)
            else:
                role = "workers"
            m = p.memory_full_info()
            rss, pss = out[role]
            out[role] = (rss + m.rss, pss + m.pss)
    return out


def measured(code: str, stage_file: Path | None = None, trace: Path | None = None) -> dict:
    """Run `code` in a fresh interpreter (its last line is JSON); add wall time, peak tree RSS and
    the peaks by role and stage (the stage running: the one after the last `stage_file` names).
    `trace`: every sample appended as a CSV line (time, last stage ended, MiB by role, RSS and
    PSS), kept if the run is stopped."""
    started = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak, proc = 0, psutil.Process(child.pid)
    done = threading.Event()
    by_stage: dict[str, dict[str, float]] = {}  # after this stage ended: peak MiB per role and in all

    def sample() -> None:
        nonlocal peak
        after = "start"
        while not done.is_set():
            try:
                roles = tree_memory(proc)
            except psutil.NoSuchProcess:
                return
            total = sum(rss for rss, _ in roles.values())
            peak = max(peak, total)
            if stage_file is not None:  # empty while the child rewrites it: the stage read before
                with contextlib.suppress(OSError):
                    after = stage_file.read_text() or after
            row = by_stage.setdefault(after, {})
            figures = {f"{r}_rss": v[0] for r, v in roles.items()} | {f"{r}_pss": v[1] for r, v in roles.items()}
            figures |= {"tree_rss": total, "tree_pss": sum(pss for _, pss in roles.values())}
            for k, v in figures.items():
                row[k] = max(row.get(k, 0.0), v / 2**20)
            if trace is not None:
                with trace.open("a") as f:
                    f.write(",".join([f"{time.time():.1f}", after, *(f"{v / 2**20:.0f}" for v in figures.values())]))
                    f.write("\n")
            done.wait(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = child.communicate()
    done.set()
    sampler.join()
    if child.returncode != 0:
        raise RuntimeError(err.strip().splitlines()[-1] if err.strip() else "child failed")
    result = json.loads(out.strip().splitlines()[-1])
    result["wall_s"] = time.perf_counter() - started
    result["peak_tree_mib"] = peak / 2**20
    # peaks while each stage ran (the stage after the one that last ended; "start": before the first)
    order = ["start", *(["deliveries"] if "deliveries_s" in result else []), *result.get("stages", {})]
    running = {after: order[i + 1] if i + 1 < len(order) else "after" for i, after in enumerate(order)}
    result["peak_mib_by_stage"] = {
        running.get(after, after): {k: round(v, 1) for k, v in row.items()} for after, row in by_stage.items()
    }
    # link()'s own peak: its stages', not the bench's reading of the deliveries nor what it does after
    inside = [row["tree_rss"] for stage, row in result["peak_mib_by_stage"].items() if stage not in OUTSIDE]
    result["peak_link_mib"] = round(max(inside, default=0.0), 1)
    result["peak_mib_by_role"] = {
        k: round(max(row[k] for row in by_stage.values()), 1) for k in next(iter(by_stage.values()), {})
    }
    return result


def compare_spines(local: Path, spark: Path) -> dict:
    """Two spines (Parquet: source, record_id, person_id) compared as partitions of the records:
    a person is named by its first record (source, record_id), not its id, so that the same
    persons numbered apart still count as the same. Counts only (no record is listed): records in
    each and in both, those whose person differs (by source), the persons of each engine that are
    not the other's, and records with the same person id."""
    import pandas as pd

    def people(path: Path) -> pd.DataFrame:
        s = pd.read_parquet(path, columns=["source", "record_id", "person_id"])
        key = s["source"] + "\x1f" + s["record_id"]
        s["first"] = key.groupby(s["person_id"]).transform("min")
        return s

    a, b = people(local), people(spark)
    both = a.merge(b, on=["source", "record_id"], suffixes=("_local", "_spark"))
    differs = both["first_local"] != both["first_spark"]
    out = {
        "records_local": len(a),
        "records_spark": len(b),
        "records_in_both": len(both),
        "persons_local": int(a["person_id"].nunique()),
        "persons_spark": int(b["person_id"].nunique()),
        "records_same_person_id": int((both["person_id_local"] == both["person_id_spark"]).sum()),
        "records_whose_person_differs": int(differs.sum()),
        "records_whose_person_differs_by_source": {
            k: int(v) for k, v in both.loc[differs, "source"].value_counts().items()
        },
        "persons_local_not_spark": int(both.loc[differs, "person_id_local"].nunique()),
        "persons_spark_not_local": int(both.loc[differs, "person_id_spark"].nunique()),
    }
    if out["records_whose_person_differs"]:  # how the persons differ: sizes of the local persons touched
        touched = a[a["person_id"].isin(set(both.loc[differs, "person_id_local"]))]
        sizes = touched.groupby("person_id").size().value_counts().sort_index()
        out["sizes_of_local_persons_that_differ"] = {int(k): int(v) for k, v in sizes.items()}
    out["same"] = out["records_whose_person_differs"] == 0 and len(a) == len(b) == len(both)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=20_000)
    parser.add_argument("--population", type=Path, help="default /tmp/bench-linkage-spark/<persons>")
    parser.add_argument("--master", default="local[2]", help="Spark master (default local[2])")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--engines", default="local,spark", help="engines to run, in order (default local,spark)")
    parser.add_argument("--trace", type=Path, help="append every memory sample to this CSV (per engine: a suffix)")
    parser.add_argument(
        "--frames",
        type=Path,
        help="as each stage ends, the driver's largest frames to this JSON-lines file (per engine: a suffix); "
        "slow: for finding what the driver holds, not for timing",
    )
    parser.add_argument(
        "--spines",
        type=Path,
        help="write each engine's spine (source, record_id, person_id) to DIR/spine-<persons>-<engine>.parquet, "
        "to list the differences if the engines disagree",
    )
    parser.add_argument(
        "--memory-limit",
        default="",
        help="the run's memory budget (link(memory_limit=...), e.g. 6GB; default the engine's, 4GB); "
        "the Spark engine sizes its JVM and batches from it",
    )
    parser.add_argument(
        "--compare",
        action="store_true",
        help="run nothing: compare the spines kept in --spines DIR by an earlier run (both engines, this "
        "--persons) and add the comparison to --json",
    )
    args = parser.parse_args()
    if args.compare:
        kept = [args.spines / f"spine-{args.persons}-{e}.parquet" for e in ("local", "spark")]
        found = compare_spines(*kept)
        print(json.dumps(found, indent=2))
        if args.json:
            saved = json.loads(args.json.read_text()) if args.json.exists() else {}
            args.json.write_text(json.dumps({**saved, "spines_compared": found}, indent=2) + "\n")
        return
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    if args.spines:
        args.spines.mkdir(parents=True, exist_ok=True)
    population = args.population or Path(f"/tmp/bench-linkage-spark/{args.persons}")
    ensure_population(args.persons, population)
    reference = calibration_seconds()
    print(f"calibration (300k HMAC-SHA256): {reference:.2f} s", flush=True)
    runs = {}
    git = ["git", "rev-parse", "HEAD"]  # the code measured
    commit = subprocess.run(git, capture_output=True, text=True, check=False).stdout.strip()
    meta = {"calibration_s": reference, "master": args.master, "persons": args.persons, "commit": commit}
    meta["memory_limit"] = args.memory_limit or None
    for engine in engines:
        began = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        warehouse = population.parent / f"{population.name}-{engine}.duckdb"
        warehouse.unlink(missing_ok=True)
        stage_file = population.parent / f"{population.name}-{engine}.stage"
        stage_file.unlink(missing_ok=True)
        code = RUN.format(
            root=str(population),
            engine=engine,
            master=args.master,
            warehouse=str(warehouse),
            stage_file=str(stage_file),
            memory=args.memory_limit,
            census=CENSUS if args.frames else "",
            frames=str(args.frames.with_suffix(f".{engine}.jsonl")) if args.frames else "",
            spine_file=str(args.spines / f"spine-{args.persons}-{engine}.parquet") if args.spines else "",
        )
        trace = args.trace.with_suffix(f".{engine}.csv") if args.trace else None
        r = runs[engine] = measured(code, stage_file, trace)
        stage_file.unlink(missing_ok=True)
        r["began"], r["load_at_end"] = began, list(os.getloadavg())
        r["calibration_after_s"] = calibration_seconds()  # the load moves: the reference again as it ended
        warehouse.unlink(missing_ok=True)
        print(
            f"{engine}: {r['records']:,} records, {r['candidate_pairs']:,} candidate pairs, {r['links']:,} links; "
            f"link() {r['link_s']:.1f} s (process {r['wall_s']:.1f} s, Spark start {r['start_s']:.1f} s), "
            f"peak memory of the process tree {r['peak_tree_mib']:,.0f} MiB (link()'s stages "
            f"{r['peak_link_mib']:,.0f}; reading the deliveries {r['deliveries_s']:.1f} s); calibration after "
            f"{r['calibration_after_s']:.2f} s, load {r['load_at_end'][0]:.1f}",
            flush=True,
        )
        print("  stages (s): " + ", ".join(f"{k} {v:.1f}" for k, v in r["stages"].items()), flush=True)
        roles = r["peak_mib_by_role"]
        print(
            "  peak MiB by role (rss/pss): "
            + ", ".join(f"{x} {roles.get(f'{x}_rss', 0):,.0f}/{roles.get(f'{x}_pss', 0):,.0f}" for x in ROLES),
            flush=True,
        )
        for stage, row in r["peak_mib_by_stage"].items():
            print(
                f"    {stage:<11} "
                + ", ".join(f"{x} {row[f'{x}_rss']:,.0f}" for x in ROLES)
                + f"; tree {row['tree_rss']:,.0f} (pss {row['tree_pss']:,.0f})",
                flush=True,
            )
        if args.json:  # after each engine: a run stopped in the next keeps the figures of this one
            args.json.write_text(json.dumps({**meta, **runs}, indent=2) + "\n")
    if len(runs) < 2:
        return
    local, spark = runs["local"], runs["spark"]
    if args.spines:
        found = compare_spines(*(args.spines / f"spine-{args.persons}-{e}.parquet" for e in ("local", "spark")))
        print("spines compared: " + json.dumps(found), flush=True)
        if args.json:
            args.json.write_text(json.dumps({**meta, **runs, "spines_compared": found}, indent=2) + "\n")
    print(
        f"Spark/local: link() time {spark['link_s'] / local['link_s']:.2f}, process time "
        f"{spark['wall_s'] / local['wall_s']:.2f}, peak memory {spark['peak_tree_mib'] / local['peak_tree_mib']:.2f}; "
        f"local link() = {local['link_s'] / reference:.1f} x calibration; "
        f"same spine: {'yes' if spark['spine'] == local['spine'] else 'NO'}"
    )


if __name__ == "__main__":
    main()
