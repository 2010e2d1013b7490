"""Linkage judged against a ground truth it was not built with: pairwise quality per source pair,
recall per error class of the independent error model (`errormodel`), false links among
namesakes. Used by the tests and `bench/linkage_errormodel.py`."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from linkage.quality import cross_pairwise
from outcomes.contract import SOURCES


def spine(backend) -> pd.DataFrame:
    with backend.transaction() as s:
        return s.fetch("select source, record_id, person_id from linkage.person_records").to_pandas()


def per_source_pair(linked: pd.DataFrame, truth_dir: Path) -> pd.DataFrame:
    """Pairwise precision, recall and F1 for every source pair, over the records linked."""
    t = pd.read_parquet(Path(truth_dir) / "records.parquet", columns=["source", "record_id", "person_id"])
    both = linked.merge(t, on=["source", "record_id"], suffixes=("", "_true"))
    rows = []
    sources = list(SOURCES)
    for i, a in enumerate(sources):
        for b in sources[i:]:
            p, r, f = cross_pairwise(both["person_id"], both["person_id_true"], both["source"], a, b)
            rows.append({"source_a": a, "source_b": b, "precision": p, "recall": r, "f1": f})
    return pd.DataFrame(rows)


def recall_by_class(linked: pd.DataFrame, truth_dir: Path) -> pd.DataFrame:
    """Per error class: true pairs whose records differ by it, and the share linked."""
    from errormodel import pairs_by_class

    pairs = pairs_by_class(Path(truth_dir))
    person = linked.set_index(["source", "record_id"])["person_id"]
    a = person.reindex(pd.MultiIndex.from_frame(pairs[["source_a", "record_id_a"]])).to_numpy()
    b = person.reindex(pd.MultiIndex.from_frame(pairs[["source_b", "record_id_b"]])).to_numpy()
    held = pd.notna(a) & pd.notna(b)
    frame = pd.DataFrame({"error_class": pairs["error_class"][held], "linked": (a == b)[held]})
    g = frame.groupby("error_class")["linked"]
    return pd.DataFrame({"pairs": g.size(), "recall": g.mean()}).reset_index()


def namesake_false_links(linked: pd.DataFrame, truth_dir: Path) -> pd.DataFrame:
    """Per namesake pair (twins, father and son): whether any record of one is put in a person
    with any record of the other."""
    truth_dir = Path(truth_dir)
    names = pd.read_parquet(truth_dir / "namesakes.parquet")
    t = pd.read_parquet(truth_dir / "records.parquet", columns=["source", "record_id", "person_id"])
    m = t.merge(linked, on=["source", "record_id"], suffixes=("_true", ""))
    persons = m.groupby("person_id_true")["person_id"].agg(set)
    joined = [
        bool(persons.get(x, set()) & persons.get(y, set()))
        for x, y in zip(names["person_a"], names["person_b"], strict=True)
    ]
    return names.assign(joined=joined)


def review_from_truth(backend, truth_dir: Path, as_of, path: Path) -> int:
    """Decide the review queue as reviewers who get every pair right would (the truth says match
    or non-match), write it as the file `outcomes review import` reads, and import it dated
    `as_of`; the pairs decided. The next `link()` applies the decisions (bench/linkage_errormodel.py
    --review, tests/test_linkage_errormodel.py). The queue is read as `linkage.review.queue` reads
    it (pairs sent to review whose records are in two persons), without the weights it adds per
    pair for reviewers (it parses the model once per pair and comparison: minutes for 2,000)."""
    import datetime as dt

    from linkage.review import import_decisions

    pair = ["left_source", "left_record_id", "right_source", "right_record_id"]
    with backend.transaction() as s:
        q = s.fetch(f"select distinct {', '.join(pair)} from linkage.pair_decisions where decision = 'review'")
        spine = s.fetch("select source, record_id, person_id from linkage.person_records")
    q, spine = q.to_pandas(), spine.to_pandas().set_index(["source", "record_id"])["person_id"]
    t = pd.read_parquet(Path(truth_dir) / "records.parquet", columns=["source", "record_id", "person_id"])
    person = t.set_index(["source", "record_id"])["person_id"]

    def of(frame: pd.Series, side: str):
        return frame.reindex(pd.MultiIndex.from_frame(q[[f"{side}_source", f"{side}_record_id"]])).to_numpy()

    q = q[of(spine, "left") != of(spine, "right")].reset_index(drop=True)
    if q.empty:
        return 0
    when = dt.datetime.combine(as_of, dt.time())
    same = of(person, "left") == of(person, "right")
    q = q.assign(decision=["match" if x else "non-match" for x in same], reviewer="truth", decided_at=when.isoformat())
    q.to_csv(path, index=False)
    report = import_decisions(backend, path, now=when)
    if report.rejected:
        raise ValueError(f"review import rejected {len(report.rejected)} rows: {report.rejected[:3]}")
    return report.recorded
