"""Benchmark: what a first link holds between its stages, by the live memory, for two versions of the code.

    python bench/linkage_frames.py --population DIR --reference-code OLD [--code NEW] [--warehouse-dir W]

DIR is the output of `outcomes synth`. Each version (`--code`, default this checkout, and
`--reference-code`, e.g. a `git archive main` copy) runs in a fresh process of its own, one after
the other in the same run, with that folder first on PYTHONPATH: the records read from the
deliveries (then handed over: the bench keeps no reference to them), then `linkage.run.prepare`
(read, block, train), `score`, `decide_stage`, `cluster`, as `link()` runs them, without the write.
After each stage the process collects its garbage and gives freed pages back (`gc.collect`,
`run.release_memory`), then reads its resident memory: what the run holds live, without the heap's
unreturned pages that make `linkage_scale.py --stage-memory`'s stage ends move by tens of MiB
between two runs of the same code. At the spine stage's end it frees what the run holds, one thing
at a time, and reports what each freed, then what is left (the interpreter and its libraries): held
= resident − left. Printed: each version's figures and the ratios of this version's to the
reference's.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = """
import gc, json, sys
from pathlib import Path
from linkage import run as R
from linkage.records import records_from_deliveries
from outcomes.eventstore import connect
from outcomes.warehouse import resolve_target

def live():
    gc.collect()
    R.release_memory()
    return round(R._resident_bytes() / 2**20, 1)

out = {"stages": {}, "freed": {}}
box = list(records_from_deliveries(Path(sys.argv[1]) / "landing"))
last = box[1]
out["records"] = len(box[0])
out["stages"]["read"] = live()
with connect(resolve_target(sys.argv[2])) as backend:
    # handed over: the run holds the only reference (the bench held them through prepare)
    state = R.prepare(backend, records=box.pop(0), as_of=last)
    out["stages"]["prepare (read, block, train)"] = live()
    scored = [R.score(state)]
    out["stages"]["score"] = live()
    decided = R.decide_stage(state, scored, None, lambda: R._decided_links(backend))
    out["stages"]["decide (node pairs, clustering)"] = live()
    spine = R.cluster(decided)
    out["stages"]["spine"] = live()
    parts = [
        ("node pairs", decided, "pairs_by_node"), ("clustering", decided, "clustered"),
        ("link events", spine, "events"), ("pair decisions", spine, "decided"),
        ("identities per variant", state, "identity"), ("records (r)", state, "r"),
        ("record ids (ids)", state, "ids"), ("model", state, "model"),
    ]
    for name, holder, attr in parts:
        before = live()
        holder.__dict__.pop(attr, None)
        out["freed"][name] = round(before - live(), 1)
    before = live()
    state.__dict__.clear()
    out["freed"]["the rest"] = round(before - live(), 1)
    out["left"] = live()
print(json.dumps(out))
"""


def measure(code: Path, population: Path, warehouse: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(code))
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(population), str(warehouse)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tempfile.gettempdir(),  # not a folder holding the packages: PYTHONPATH decides the code
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr else "child failed")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--population", type=Path, required=True)
    p.add_argument("--reference-code", type=Path, required=True, help="the code to compare with (a folder)")
    p.add_argument("--code", type=Path, default=Path(__file__).resolve().parents[1])
    p.add_argument("--warehouse-dir", type=Path, default=Path(tempfile.gettempdir()))
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    runs = {}
    for name, code in (("reference", args.reference_code), ("this", args.code)):
        warehouse = args.warehouse_dir / f"frames-{name}-{os.getpid()}.duckdb"
        runs[name] = measure(code.resolve(), args.population.resolve(), warehouse)
        warehouse.unlink(missing_ok=True)
        Path(f"{warehouse}.wal").unlink(missing_ok=True)
    ref, mine = runs["reference"], runs["this"]
    print(
        f"{mine['records']:,} records; live resident MiB after each stage (gc, pages given back): "
        "reference, this, ratio"
    )
    for stage, value in mine["stages"].items():
        old = ref["stages"].get(stage)
        ratio = f"{value / old:.3f}" if old else "—"
        print(f"  {stage}: {old:,.0f}, {value:,.0f}, {ratio}")
    held = {k: v["stages"]["spine"] - v["left"] for k, v in runs.items()}
    print(
        f"  held at the spine stage's end, above the interpreter ({ref['left']:,.0f} / {mine['left']:,.0f} MiB): "
        f"{held['reference']:,.0f}, {held['this']:,.0f}, {held['this'] / held['reference']:.3f}; "
        f"bytes a record {held['reference'] * 2**20 / ref['records']:,.0f}, "
        f"{held['this'] * 2**20 / mine['records']:,.0f}"
    )
    print(
        "  freed at the spine stage's end (MiB): "
        + ", ".join(f"{k} {ref['freed'].get(k, 0):,.0f} / {v:,.0f}" for k, v in mine["freed"].items())
    )
    if args.json:
        args.json.write_text(json.dumps(runs, indent=1))


if __name__ == "__main__":
    main()
