"""Benchmark: the first run's blocking stage alone, this code against a reference copy.

    python bench/linkage_blocking.py --population DIR --reference OLD_CODE [--rounds 2] [--work W]

DIR is the output of `outcomes synth`; OLD_CODE a copy of other code (e.g. `git archive main | tar
-x -C /tmp/old`). The variants of every record (`linkage.records.build_variants` on the records
read straight from the deliveries, as the first run's `variants` stage makes them) are made once
by this code and kept (their blocking columns, Parquet, in W); then each round runs
`linkage.blocking.candidate_pairs` on them with the real spec in a fresh process, the reference
code first and this code second (PYTHONPATH), and prints for each: the process's CPU seconds for
the call, its resident memory before and its peak during the call (sampled every 10 ms), the
transient (peak minus before) in bytes per variant, the candidate pairs and a hash of the pairs
frame (the two must be equal); then this code's ratios to the reference of the same round.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

MAKE = """
import json
from pathlib import Path
from linkage.records import build_variants, records_from_deliveries
from linkage.spec import IDENTITY as SPEC
records, _ = records_from_deliveries(Path({landing!r}))
n = len(records)
_, variants = build_variants(records)
del records
cols = sorted({{c for p in SPEC.passes for c in (*p.on, *(p.right_on or ()))}} | {{"node", "source"}})
variants[cols].to_parquet({out!r})
print(json.dumps({{"records": n, "variants": len(variants)}}))
"""

RUN = """
import json, threading, time
import pandas as pd
from linkage.blocking import candidate_pairs
from linkage.spec import IDENTITY as SPEC
variants = pd.read_parquet({path!r})

def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096

state = {{"peak": 0, "on": True}}
def sample():
    while state["on"]:
        state["peak"] = max(state["peak"], rss())
        time.sleep(0.01)

before = rss()
state["peak"] = before
t = threading.Thread(target=sample, daemon=True)
t.start()
cpu = time.process_time()
pairs, stats = candidate_pairs(variants, SPEC)
cpu = time.process_time() - cpu
state["on"] = False
t.join()
peak = max(state["peak"], rss())
print(json.dumps({{
    "cpu_s": cpu, "before_mib": before / 2**20, "peak_mib": peak / 2**20, "transient_mib": (peak - before) / 2**20,
    "pairs": len(pairs), "hash": str(int(pd.util.hash_pandas_object(pairs, index=False).sum())),
    "pairs_per_pass": [[s.name, s.pairs, s.new_pairs] for s in stats],
}}))
"""


def child(code: str, path: Path | None = None) -> dict:
    env = dict(os.environ)
    if path is not None:
        env["PYTHONPATH"] = str(path)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip()[-2000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--population", type=Path, required=True)
    p.add_argument("--reference", type=Path, required=True, help="a copy of the reference code (its root)")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--work", type=Path, default=Path("/tmp/bench-linkage-blocking"))
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    cache = args.work / f"variants-{args.population.name}.parquet"
    made = child(MAKE.format(landing=str(args.population / "landing"), out=str(cache)), ROOT)
    print(f"{made['records']:,} records, {made['variants']:,} variants (kept in {cache})")
    out = {"made": made, "rounds": []}
    for i in range(args.rounds):
        ref = child(RUN.format(path=str(cache)), args.reference.resolve())
        new = child(RUN.format(path=str(cache)), ROOT)
        out["rounds"].append({"reference": ref, "this": new})
        for name, r in (("reference", ref), ("this code", new)):
            print(
                f"round {i + 1} {name:9}: CPU {r['cpu_s']:7.1f} s, before {r['before_mib']:7,.0f} MiB, "
                f"peak {r['peak_mib']:7,.0f} MiB, transient {r['transient_mib']:7,.0f} MiB "
                f"({r['transient_mib'] * 2**20 / made['variants']:,.0f} bytes a variant), "
                f"{r['pairs']:,} pairs, hash {r['hash']}"
            )
        print(
            f"round {i + 1} ratio (this / reference): CPU {new['cpu_s'] / ref['cpu_s']:.3f}, "
            f"transient {new['transient_mib'] / max(ref['transient_mib'], 1e-9):.3f}, "
            f"peak {new['peak_mib'] / ref['peak_mib']:.3f}; pairs {'equal' if new['hash'] == ref['hash'] else 'DIFFER'}"
        )
    print("pairs per pass (pass, pairs, new pairs):", out["rounds"][-1]["this"]["pairs_per_pass"])
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
