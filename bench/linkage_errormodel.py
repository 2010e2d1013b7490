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

At a million people (`--persons 1000000 --only errormodel --no-england`) only the populations
asked for are made, each in a process of its own (so the linking process's peak is its own), and
the run prints `link()`'s wall and CPU time, the process's peak resident memory, the peak and end
per stage (sampled every 20 ms), and the review queue as a share of the records.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _made_apart(code: str) -> None:
    """Run `code` in a fresh interpreter (the population's making does not count in the peak of
    the process that links it)."""
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", f"import sys; sys.path.insert(0, {str(ROOT)!r})\n{code}"], check=True)
    print(f"made in {time.perf_counter() - t:.0f} s: {code.splitlines()[-1]}", flush=True)


def _made_once(final: Path, code: str, run=_made_apart) -> Path:
    """`final`, made once: `code` (which names the folder as `{out}`) writes into `final` with a
    `.partial` suffix, renamed to `final` only when `code` has finished, so an interrupted or
    failed making leaves no folder a later run would take for a whole population (a partial
    folder left by one is removed and made again)."""
    if final.exists():
        return final
    partial = final.with_name(final.name + ".partial")
    if partial.exists():
        shutil.rmtree(partial)
    run(code.replace("{out}", repr(str(partial))))
    partial.rename(final)
    return final


def populations(work: Path, persons: int, seed: int, only: list[str] | None = None) -> dict[str, Path]:
    """The populations `only` names (all three by default), each made once in WORK."""
    out = {"synth": work / "synth", "errormodel": work / "em", "errormodel x3": work / "em3"}
    wanted = [k for k in out if not only or k in only]
    synth = "from pathlib import Path\nfrom outcomes.synth.generator import SynthConfig, synthesise\n"
    if "synth" in wanted:
        _made_once(out["synth"], synth + f"synthesise(SynthConfig(persons={persons}, seed={seed}), Path({{out}}))")
    clean = work / "clean"
    if any(k.startswith("errormodel") for k in wanted):
        _made_once(clean, synth + f"synthesise(SynthConfig(persons={persons}, seed={seed}, noise=0.0), Path({{out}}))")
    for name, scale in (("errormodel", 1.0), ("errormodel x3", 3.0)):
        if name in wanted:
            _made_once(
                out[name],
                "from pathlib import Path\nfrom errormodel import generate\n"
                f"generate(Path({str(clean)!r}), Path({{out}}), scale={scale}, seed={seed})",
            )
    return {k: out[k] for k in wanted}


class _Rss:
    """The process's resident memory sampled every 20 ms: peak and end value per stage of link()
    (its on_stage callback). A context manager: the sampling thread stops and is joined on exit."""

    def __init__(self, every: float = 0.02) -> None:
        self.peak, self.marks, self.every = 0.0, {}, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def __enter__(self) -> _Rss:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()

    @staticmethod
    def now_mib() -> float:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096 / 2**20

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.now_mib())
            self._stop.wait(self.every)

    def __call__(self, stage: str) -> None:
        now = self.now_mib()
        old = self.marks.get(stage)
        peak = max(self.peak, now)
        self.marks[stage] = (max(peak, old[0]) if old else peak, now)
        self.peak = now


def misses(linked, truth: Path):
    """Where the misses and false joins are, by record (the spine against the truth): a record is
    put apart when its linked person is not the one holding most of its true person's records
    (ties: the first person id); a linked person joins when it holds records of several true
    persons. Returns a summary dict and, per error class the records carry (`none`: no error),
    the records carrying it, those put apart and the share."""
    import pandas as pd

    t = pd.read_parquet(truth / "records.parquet", columns=["source", "record_id", "person_id"])
    r = linked.merge(t, on=["source", "record_id"], suffixes=("", "_true"))
    sizes = r.groupby(["person_id_true", "person_id"]).size().rename("n").reset_index()
    sizes = sizes.sort_values(["person_id_true", "n", "person_id"], ascending=[True, False, True])
    largest = sizes.drop_duplicates("person_id_true").set_index("person_id_true")["person_id"]
    r["apart"] = r["person_id"].to_numpy() != largest.reindex(r["person_id_true"]).to_numpy()
    true_in = r.groupby("person_id")["person_id_true"].nunique()
    joined = r[r["person_id"].isin(true_in[true_in > 1].index)]
    errors = pd.read_parquet(truth / "errors.parquet", columns=["source", "record_id", "error_class"])
    carried = r[["source", "record_id", "apart"]].merge(errors, on=["source", "record_id"], how="left")
    carried["error_class"] = carried["error_class"].fillna("none")
    g = carried.groupby("error_class")["apart"]
    by_class = pd.DataFrame({"records": g.size(), "apart": g.sum()}).reset_index()
    by_class["share_apart"] = by_class["apart"] / by_class["records"]
    by_class = by_class.sort_values(["apart", "error_class"], ascending=[False, True], ignore_index=True)
    names = pd.read_parquet(truth / "namesakes.parquet")
    who = r.set_index("person_id_true")["person_id"]
    pairs = names.merge(who.rename("a"), left_on="person_a", right_index=True).merge(
        who.rename("b"), left_on="person_b", right_index=True
    )
    flagged = set(errors["source"] + "\x1f" + errors["record_id"])
    summary = {
        "records": len(r),
        "apart": int(r["apart"].sum()),
        "persons_split": int((sizes.groupby("person_id_true").size() > 1).sum()),
        "true_persons": len(largest),
        "apart_by_source": r.groupby("source")["apart"].sum().astype(int).to_dict(),
        "joining_persons": len(true_in[true_in > 1]),
        "joined_records": len(joined),
        "joined_records_without_error": int((~(joined["source"] + "\x1f" + joined["record_id"]).isin(flagged)).sum()),
        "namesake_pairs": len(names),
        "namesake_pairs_joined": int(
            pairs.loc[pairs["a"] == pairs["b"], ["person_a", "person_b"]].drop_duplicates().shape[0]
        ),
    }
    return summary, by_class


def report(name, backend, pop: Path, work: Path, as_of, result, seconds, records: int, england: bool = True) -> None:
    """Print the figures of one linked spine (see the module's docstring)."""
    import pyarrow.parquet as pq

    from linkage import evaluate as ev
    from tests.linkage_england import through_linkage

    spine = ev.spine(backend)
    print(
        f"\n## {name}: link() {seconds:.1f} s, {result.links:,} links, {result.reviews:,} reviews "
        f"({result.reviews / records:.4%} of {records:,} records)",
        flush=True,
    )
    path = work / f"{pop.name}_spine.parquet"
    with backend.transaction() as s:
        pq.write_table(s.fetch("select source, record_id, person_id from linkage.person_records"), path)
    q = ev.per_source_pair(spine, pop / "truth")
    if result.expected is not None:
        q = q.merge(
            result.expected[["source_a", "source_b", "expected_precision", "expected_recall"]],
            on=["source_a", "source_b"],
            how="left",
        )
    print(q.round(4).to_markdown(index=False), flush=True)
    if result.relatives is not None:
        print("pairs that look like relatives, by the configuration of the two persons' sources:")
        print(result.relatives.round(4).to_markdown(index=False))
    if (pop / "truth" / "errors.parquet").exists():
        print(ev.recall_by_class(spine, pop / "truth").round(4).to_markdown(index=False))
        names = ev.namesake_false_links(spine, pop / "truth")
        print(f"namesake pairs {len(names)}, joined {int(names['joined'].sum())}", flush=True)
        summary, by_class = misses(spine, pop / "truth")
        print(summary)
        print(by_class.round(4).to_markdown(index=False), flush=True)
    if not england:
        return
    figures = through_linkage(pop / "landing", pop / "truth", path, as_of)
    print(figures.round(4).to_markdown(index=False))


def evaluate(
    name: str, pop: Path, work: Path, review: bool = False, england: bool = True, memory_limit: str | None = None
) -> None:
    import pandas as pd

    from linkage import evaluate as ev
    from linkage.records import records_from_deliveries
    from linkage.run import link
    from outcomes.eventstore import connect
    from outcomes.warehouse import resolve_target

    pd.set_option("display.width", 200)
    t = time.perf_counter()
    records, as_of = records_from_deliveries(pop / "landing")
    n = len(records)
    print(f"\n# {name}: {n:,} records, read in {time.perf_counter() - t:.0f} s", flush=True)
    db = work / f"{pop.name}.duckdb"
    db.unlink(missing_ok=True)
    with _Rss() as rss, connect(resolve_target(str(db))) as backend:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        t, cpu = time.perf_counter(), time.process_time()
        box = [records]  # link() holds the only reference and can free it
        del records
        result = link(backend, records=box.pop(0), as_of=as_of, memory_limit=memory_limit, on_stage=rss)
        seconds, cpu = time.perf_counter() - t, time.process_time() - cpu
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"link(): wall {seconds:.0f} s, process CPU {cpu:.0f} s; peak resident {peak:,.0f} MiB "
            f"({peak * 2**20 / n:,.0f} bytes a record; {before:,.0f} MiB before link(), the records read); "
            f"budget {result.memory_limit}",
            flush=True,
        )
        print("stages, seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in result.stages.items()))
        print("stages, MiB peak/end: " + ", ".join(f"{k} {p:,.0f}/{e:,.0f}" for k, (p, e) in rss.marks.items()))
        report(name, backend, pop, work, as_of, result, seconds, n, england)
        if review:
            decided = ev.review_from_truth(backend, pop / "truth", as_of, work / f"{pop.name}_review.csv")
            records, _ = records_from_deliveries(pop / "landing")
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
                n,
                england,
            )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", type=Path, required=True)
    p.add_argument("--persons", type=int, default=20_000)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--only", choices=["synth", "errormodel", "errormodel x3"], action="append")
    p.add_argument("--review", action="store_true", help="also after one round of review decided from the truth")
    p.add_argument("--no-england", action="store_true", help="skip England's figures through the oracle")
    p.add_argument("--memory-limit", help="link()'s memory budget, e.g. 4GB (default link()'s own)")
    args = p.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    for name, pop in populations(args.work, args.persons, args.seed, args.only).items():
        evaluate(name, pop, args.work, args.review, not args.no_england, args.memory_limit)


if __name__ == "__main__":
    main()
