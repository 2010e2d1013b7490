"""Benchmark: linkage quality on populations it was not tuned to, at 20,000 people.

    python bench/linkage_errormodel.py --work /tmp/lkem [--persons 20000] [--seed 42]

Makes (once, in WORK) `outcomes synth` at default noise, `outcomes synth --noise 0`, and from the
latter the independent error model (`errormodel`) at its default rates and with every class at
three times its rate; links each with the real `link()` into a fresh DuckDB warehouse (records
read straight from the deliveries) and prints, per population: pairwise precision, recall and F1
per source pair, the model's expected precision and recall, recall per error class and false
links among namesakes (error model), and England's figures through the linkage against the truth
(tests/oracle). Figures for docs/linkage.md; never a test.

With --review, the clerical review queue each run leaves is then decided as reviewers who get
every pair right would decide it (the truth says match or non-match:
`linkage.evaluate.review_from_truth`), imported through `linkage.review.import_decisions` (dated
the knowledge date) and applied by a second `link()` over the same records: the same figures
after one round of review, and the queue's size.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def populations(work: Path, persons: int, seed: int) -> dict[str, Path]:
    from errormodel import generate
    from outcomes.synth.generator import SynthConfig, synthesise

    out = {"synth": work / "synth", "errormodel": work / "em", "errormodel x3": work / "em3"}
    if not out["synth"].exists():
        synthesise(SynthConfig(persons=persons, seed=seed), out["synth"])
    clean = work / "clean"
    if not clean.exists():
        synthesise(SynthConfig(persons=persons, seed=seed, noise=0.0), clean)
    if not out["errormodel"].exists():
        generate(clean, out["errormodel"], scale=1.0, seed=seed)
    if not out["errormodel x3"].exists():
        generate(clean, out["errormodel x3"], scale=3.0, seed=seed)
    return out


def report(name, backend, pop: Path, work: Path, as_of, result, seconds) -> None:
    """Print the figures of one linked spine (see the module's docstring)."""
    import pyarrow.parquet as pq

    from linkage import evaluate as ev
    from tests.linkage_england import through_linkage

    spine = ev.spine(backend)
    print(f"\n## {name}: link() {seconds:.1f} s, {result.links:,} links, {result.reviews:,} reviews")
    q = ev.per_source_pair(spine, pop / "truth")
    if result.expected is not None:
        q = q.merge(
            result.expected[["source_a", "source_b", "expected_precision", "expected_recall"]],
            on=["source_a", "source_b"],
            how="left",
        )
    print(q.round(4).to_markdown(index=False))
    if result.relatives is not None:
        print("pairs that look like relatives, by the configuration of the two persons' sources:")
        print(result.relatives.round(4).to_markdown(index=False))
    if (pop / "truth" / "errors.parquet").exists():
        print(ev.recall_by_class(spine, pop / "truth").round(4).to_markdown(index=False))
        names = ev.namesake_false_links(spine, pop / "truth")
        print(f"namesake pairs {len(names)}, joined {int(names['joined'].sum())}")
    path = work / f"{pop.name}_spine.parquet"
    with backend.transaction() as s:
        pq.write_table(s.fetch("select source, record_id, person_id from linkage.person_records"), path)
    figures = through_linkage(pop / "landing", pop / "truth", path, as_of)
    print(figures.round(4).to_markdown(index=False))


def evaluate(name: str, pop: Path, work: Path, review: bool = False) -> None:
    import pandas as pd

    from linkage import evaluate as ev
    from linkage.records import records_from_deliveries
    from linkage.run import link
    from outcomes.eventstore import connect
    from outcomes.warehouse import resolve_target

    pd.set_option("display.width", 200)
    records, as_of = records_from_deliveries(pop / "landing")
    print(f"\n# {name}: {len(records):,} records")
    db = work / f"{pop.name}.duckdb"
    db.unlink(missing_ok=True)
    with connect(resolve_target(str(db))) as backend:
        t = time.perf_counter()
        result = link(backend, records=records, as_of=as_of)
        seconds = time.perf_counter() - t
        report(name, backend, pop, work, as_of, result, seconds)
        if review:
            decided = ev.review_from_truth(backend, pop / "truth", as_of, work / f"{pop.name}_review.csv")
            t = time.perf_counter()
            result = link(backend, records=records, as_of=as_of)
            seconds = time.perf_counter() - t
            report(
                f"{name}, after one round of review ({decided:,} pairs decided)",
                backend,
                pop,
                work,
                as_of,
                result,
                seconds,
            )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", type=Path, required=True)
    p.add_argument("--persons", type=int, default=20_000)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--only", choices=["synth", "errormodel", "errormodel x3"], action="append")
    p.add_argument("--review", action="store_true", help="also after one round of review decided from the truth")
    args = p.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    for name, pop in populations(args.work, args.persons, args.seed).items():
        if not args.only or name in args.only:
            evaluate(name, pop, args.work, args.review)


if __name__ == "__main__":
    main()
