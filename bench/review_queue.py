"""What is in the clerical review queue of a linked warehouse, against ground truth.

    python bench/review_queue.py --warehouse W.duckdb --population DIR [--run RUN_ID]

W is a warehouse a `link()` run left (`bench/linkage_scale.py --warehouse W`), DIR the population
it linked (`outcomes synth`: truth/records.parquet and truth/persons.parquet). Every pair the run
sent to review (`linkage.pair_decisions`, decision 'review') is counted by its reason (the rule
that sent it, the configuration's kind without its source), its band of probability (the pair's
match probability, or for a pair decided by its persons' configuration, that configuration's
probability of one person), and
what the ground truth says of its two records: one person, twins or a father and son of one name
(`twin_of`, born on one day or not) or two other people;
and whether the run's own spine put the two records in one person after all (a later link joined
them: nothing left to review) and how many pairs of persons the pairs are.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

BANDS = (0.0, 0.5, 0.8, 0.9, 0.95, 1.0001)
_RELATIVES = re.compile(r"^(?P<why>.*?) \(one person in \d+% of such pairs: (?P<config>[^)]*)\)$")
_MORE = re.compile(r" \(\+\d+ more pairs of these persons\)$")  # cluster.review_queue
_APART = re.compile(r"^(?P<why>.*?); (?P<apart>[^;(]*) \(one person in \d+%: (?P<config>[^)]*)\)$")


def reason_class(reason: str) -> str:
    """A review's reason without its figures and sources: the rule and the configuration's kind."""
    reason = _MORE.sub("", reason or "")
    m = _APART.match(reason)
    if m:
        return f"{_rule(m['why'])}; {m['apart']} ({_kind(m['config'])})"
    m = _RELATIVES.match(reason)
    if m:
        return f"{_rule(m['why'])} ({_kind(m['config'])})"
    if reason.startswith("would join"):
        return "would join " + re.sub(r"two \w+ identities", "two <source> identities", reason[len("would join ") :])
    return _rule(reason)


def _rule(why: str) -> str:
    return "the persons hold other keys" if why.startswith("the persons hold other keys") else why


def _kind(config: str) -> str:
    return config.split(":", 1)[0] + (":" if ":" in config else "")


def queue(warehouse: Path, population: Path, run_id: int | None = None) -> pd.DataFrame:
    """The review pairs of a run (the latest by default), one row each, with their classes."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        if run_id is None:
            run_id = con.execute("select max(run_id) from linkage.pair_decisions").fetchone()[0]
        q = con.execute(
            "select left_source, left_record_id, right_source, right_record_id, probability, reason "
            "from linkage.pair_decisions where decision = 'review' and run_id = ?",
            [run_id],
        ).df()
        spine = con.execute("select source, record_id, person_id from linkage.person_records").df()
    finally:
        con.close()
    truth = pd.read_parquet(population / "truth" / "records.parquet")
    persons = pd.read_parquet(
        population / "truth" / "persons.parquet", columns=["person_id", "twin_of", "date_of_birth"]
    )
    twin = persons.dropna(subset=["twin_of"]).set_index("person_id")["twin_of"]
    born = persons.set_index("person_id")["date_of_birth"]
    true = truth.set_index(["source", "record_id"])["person_id"]
    linked = spine.set_index(["source", "record_id"])["person_id"]
    for side in ("left", "right"):
        key = pd.MultiIndex.from_arrays([q[f"{side}_source"], q[f"{side}_record_id"]])
        q[f"{side}_true"] = true.reindex(key).to_numpy()
        q[f"{side}_person"] = linked.reindex(key).to_numpy()
    same = q["left_true"] == q["right_true"]
    twins = (q["left_true"].map(twin) == q["right_true"]) | (q["right_true"].map(twin) == q["left_true"])
    one_birth = q["left_true"].map(born) == q["right_true"].map(born)  # twins; else a father and son of one name
    q["truth"] = np.select(
        [q["left_true"].isna() | q["right_true"].isna(), same, twins & one_birth, twins],
        ["unknown", "one person", "twins", "father, son"],
        "two people",
    )
    q["reason_class"] = q["reason"].map(reason_class)
    # the probability that decided the routing: the configuration's for a pair decided by its
    # persons' configuration (in its reason), else the pair's own
    config = q["reason"].str.extract(r"one person in (\d+)%", expand=False).astype(float) / 100
    q["band"] = pd.cut(config.fillna(q["probability"]), BANDS, right=False).astype(str)
    kind = np.select(
        [q["reason_class"].str.startswith("weight"), q["reason_class"].str.startswith("would join"), config.notna()],
        ["between levels", "refused", "relatives"],
        "other",
    )
    q["kind_band"] = pd.Series(kind, index=q.index) + " " + q["band"]
    q["joined_later"] = q["left_person"] == q["right_person"]
    lo = np.minimum(q["left_person"].astype(str), q["right_person"].astype(str))
    hi = np.maximum(q["left_person"].astype(str), q["right_person"].astype(str))
    q["person_pair"] = lo + "|" + hi
    q["source_pair"] = [" ".join(sorted(p)) for p in zip(q["left_source"], q["right_source"], strict=True)]
    return q


def breakdown(q: pd.DataFrame, by: str) -> pd.DataFrame:
    """Counts of review pairs by `by` and the truth, with those a later link joined."""
    t = pd.crosstab(q[by], q["truth"])
    t["pairs"] = t.sum(axis=1)
    t["joined later"] = q.groupby(by)["joined_later"].sum()
    t["person pairs"] = q[~q["joined_later"]].groupby(by)["person_pair"].nunique()
    return t.fillna(0).astype(int).sort_values("pairs", ascending=False)


def report(q: pd.DataFrame, records: int | None = None) -> list[str]:
    lines = []
    share = f" ({len(q) / records:.3%} of {records:,} records)" if records else ""
    open_pairs = q[~q["joined_later"]]
    lines.append(
        f"review pairs {len(q):,}{share}; joined by a later link {int(q['joined_later'].sum()):,}; "
        f"pairs of persons still apart {open_pairs['person_pair'].nunique():,}; by truth: "
        + ", ".join(f"{k} {v:,}" for k, v in q["truth"].value_counts().items())
    )
    for by in ("reason_class", "kind_band", "source_pair"):
        lines.append(f"by {by}:")
        lines.extend("  " + line for line in breakdown(q, by).to_string().splitlines())
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warehouse", type=Path, required=True)
    parser.add_argument("--population", type=Path, required=True)
    parser.add_argument("--run", type=int)
    parser.add_argument("--records", type=int, help="records linked (for the queue's share)")
    parser.add_argument("--csv", type=Path, help="write the classified pairs here")
    args = parser.parse_args()
    q = queue(args.warehouse, args.population, args.run)
    pd.set_option("display.width", 200)
    for line in report(q, args.records):
        print(line)
    if args.csv:
        q.drop(columns=["left_record_id", "right_record_id"]).to_csv(args.csv, index=False)


if __name__ == "__main__":
    main()
