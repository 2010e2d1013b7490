"""One linkage run: link every record not linked yet into the person spine.

The first run links everything and trains the model; later runs compare only new records
(against the spine and each other) with the stored model, so a month's cost grows with the new
records, not the history. Existing persons keep their ids; when new evidence joins two of them,
the later id is merged into the earlier one and the move is recorded as link events.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from linkage import model as fs
from linkage.blocking import candidate_pairs
from linkage.cluster import UnionFind, decide, node_keys
from linkage.compare import COMPARISONS, Comparer
from linkage.records import IDENTITY, build_variants, load_records
from linkage.schema import DDL

LINK_AT = 3.5  # match weight (log2 odds) for an automatic link: probability about 0.92
REVIEW_AT = -3.0  # below this a pair is a non-link; between, clerical review
PERSON_PREFIX = "PS"


@dataclass
class LinkResult:
    run_id: int
    as_of: dt.date | None
    model_version: str
    records_new: int = 0
    variants: int = 0
    candidate_pairs: int = 0
    links: int = 0
    reviews: int = 0
    merges: int = 0
    persons_new: int = 0
    seconds: float = 0.0
    blocking: list = field(default_factory=list)
    quality: pd.DataFrame | None = None

    def lines(self) -> list[str]:
        out = [
            f"run {self.run_id} (as of {self.as_of}, model {self.model_version}): {self.records_new:,} new records, "
            f"{self.candidate_pairs:,} candidate pairs, {self.links:,} links, {self.reviews:,} to clerical review, "
            f"{self.merges:,} records moved by merges, {self.persons_new:,} new persons ({self.seconds:.1f} s)"
        ]
        if self.quality is not None:
            for q in self.quality.itertuples():
                if pd.notna(q.pairwise_precision):
                    out.append(
                        f"  {q.source_a}-{q.source_b}: precision {q.pairwise_precision:.4f}, recall "
                        f"{q.pairwise_recall:.4f}, F1 {q.pairwise_f1:.4f}; match rate {q.match_rate:.3f}"
                    )
        return out


def _node_pairs(pairs: pd.DataFrame, vec: pd.DataFrame, weight: np.ndarray, variants: pd.DataFrame) -> pd.DataFrame:
    """Best-scoring variant pair per node pair, with the corroboration flags of that pair."""
    node = variants["node"].to_numpy()
    initial = variants["forename_initial"].to_numpy()
    a, b = pairs["a"].to_numpy(), pairs["b"].to_numpy()
    na, nb = node[a], node[b]
    swap = na > nb
    df = pd.DataFrame(
        {
            "a": np.where(swap, nb, na),
            "b": np.where(swap, na, nb),
            "weight": weight,
            "va": np.where(swap, b, a),
            "vb": np.where(swap, a, b),
        }
    )
    for c in COMPARISONS:
        df[c] = vec[c].to_numpy()
    # Corroboration: some forename agreement (a nickname mostly keeps the initial; twins rarely
    # share one) and birth dates that are not wholly different.
    df["forename_agrees"] = (df["forename"] != 0) | (initial[a] == initial[b])
    df["dob_agrees"] = df["dob"] != 0
    df = df.sort_values(["weight", "a", "b"], ascending=[False, True, True], kind="mergesort")
    return df.drop_duplicates(["a", "b"]).reset_index(drop=True)


def link(backend, truth: Path | None = None, retrain: bool = False, as_of: dt.date | None = None) -> LinkResult:
    started = time.perf_counter()
    with backend.transaction() as s:
        for statement in DDL:
            s.execute(statement)
        run_id = int(s.scalar("select coalesce(max(run_id), 0) + 1 from linkage.runs"))
        known = s.fetch("select source, record_id, person_id from linkage.person_records").to_pandas()
        stored = s.fetch("select model_version, model_json from linkage.models order by trained_in_run desc limit 1")
        as_of = as_of or s.scalar("select max(extract_date) from events.deliveries where status = 'applied'")
        max_person = (
            s.scalar(
                f"select max(cast(substr(person_id, {len(PERSON_PREFIX) + 1}) as bigint)) from linkage.link_events"
            )
            or 0
        )

    records = load_records(backend, as_of)
    known_key = set(zip(known["source"], known["record_id"], strict=True))
    is_new = np.array([k not in known_key for k in zip(records["source"], records["record_id"], strict=True)])
    model_version = stored["model_version"][0].as_py() if stored.num_rows and not retrain else f"fs-{run_id}"
    result = LinkResult(run_id, as_of, model_version, records_new=int(is_new.sum()))
    if not is_new.any():
        result.seconds = time.perf_counter() - started
        return result

    r, variants = build_variants(records)
    r["is_new"] = is_new
    result.variants = len(variants)
    new_variants = pd.Index(np.unique(r.loc[r["is_new"], "variant"]))
    first_run = known.empty
    pairs, stats = candidate_pairs(variants, None if first_run else new_variants)
    result.blocking = [(p.name, p.pairs, p.new_pairs) for p in stats]
    result.candidate_pairs = len(pairs)
    comparer = Comparer(variants)
    vec = comparer.vectors(pairs["a"].to_numpy(), pairs["b"].to_numpy())

    if stored.num_rows and not retrain:
        model = fs.Model.from_json(stored["model_json"][0].as_py())
    else:
        u = fs.estimate_u(comparer, variants, np.random.default_rng(run_id))
        model = fs.fit(vec, pairs, u, model_version, len(variants))
        model.tf = fs.term_frequencies(records)
    weight = model.score(vec, fs.tf_values(variants, pairs["a"].to_numpy()))
    node_pairs = _node_pairs(pairs, vec, weight, variants)

    # Clusters: existing persons first, as they are; then new evidence in descending weight.
    nodes = r["node"].unique()
    uf = UnionFind(nodes, node_keys(r))
    existing = r.merge(known, on=["source", "record_id"], how="inner")
    for _, group in existing.groupby("person_id", sort=True)["node"]:
        roots = [uf.find(n) for n in group.unique()]
        for other in roots[1:]:
            ra, rb = uf.find(roots[0]), uf.find(other)
            if ra != rb:
                uf.union(ra, rb)
    decisions = decide(node_pairs, uf, LINK_AT, REVIEW_AT)
    result.links, result.reviews = len(decisions.links), len(decisions.review)

    # Person ids: a cluster keeps its earliest existing id; others are new, numbered in a fixed order.
    r["root"] = [uf.find(n) for n in r["node"]]
    existing_ids = existing.assign(root=[uf.find(n) for n in existing["node"]]).groupby("root")["person_id"].min()
    # deterministic order of new persons: by their smallest (source, record_id)
    first = (r["source"] + "|" + r["record_id"]).groupby(r["root"]).min().sort_values(kind="mergesort")
    fresh = [root for root in first.index if root not in existing_ids.index]
    new_ids = {root: f"{PERSON_PREFIX}{max_person + i + 1:09d}" for i, root in enumerate(fresh)}
    person_of_root = {**existing_ids.to_dict(), **new_ids}
    r["person_id"] = r["root"].map(person_of_root)
    result.persons_new = len(new_ids)

    linked_nodes = set(decisions.links["a"]) | set(decisions.links["b"])
    node_known = set(existing["node"])
    new_rows = r[r["is_new"]]
    decided_by = np.where(
        new_rows["node"].isin(node_known),
        "source_key",
        np.where(new_rows["node"].isin(linked_nodes), "link", "new_person"),
    )
    events = pd.DataFrame(
        {
            "source": new_rows["source"],
            "record_id": new_rows["record_id"],
            "person_id": new_rows["person_id"],
            "previous_person_id": None,
            "event": "assign",
            "decided_by": decided_by,
        }
    )
    moved = existing.assign(now=existing["node"].map(dict(zip(r["node"], r["person_id"], strict=False))))
    moved = moved[moved["now"] != moved["person_id"]]
    result.merges = len(moved)
    merges = pd.DataFrame(
        {
            "source": moved["source"],
            "record_id": moved["record_id"],
            "person_id": moved["now"],
            "previous_person_id": moved["person_id"],
            "event": "merge",
            "decided_by": "link",
        }
    )
    events = pd.concat([events, merges], ignore_index=True)
    events.insert(0, "run_id", run_id)
    events.insert(1, "as_of", as_of)
    events["weight"] = None
    events["model_version"] = model_version

    decided = _decisions_table(run_id, model_version, decisions, node_pairs, r)
    identities = new_rows[["source", "record_id", "node", *IDENTITY]].assign(run_id=run_id)
    identities["date_of_birth"] = identities["date_of_birth"].dt.date
    result.seconds = time.perf_counter() - started
    with backend.transaction() as s:
        s.insert("linkage.identities", pa.Table.from_pandas(identities, preserve_index=False))
        s.insert("linkage.link_events", pa.Table.from_pandas(events, preserve_index=False))
        s.insert("linkage.pair_decisions", decided)
        if model_version not in (stored["model_version"].to_pylist() if stored.num_rows else []):
            s.insert(
                "linkage.models",
                pa.table(
                    {"model_version": [model_version], "trained_in_run": [run_id], "model_json": [model.to_json()]}
                ),
            )
        s.insert(
            "linkage.runs",
            pa.Table.from_pylist(
                [
                    {
                        "run_id": run_id,
                        "as_of": as_of,
                        "model_version": model_version,
                        "records_new": result.records_new,
                        "variants": result.variants,
                        "candidate_pairs": result.candidate_pairs,
                        "links": result.links,
                        "reviews": result.reviews,
                        "merges": result.merges,
                        "persons_new": result.persons_new,
                        "seconds": result.seconds,
                        "blocking": repr(result.blocking),
                        "created_at": dt.datetime.now(dt.UTC).replace(tzinfo=None),
                    }
                ]
            ),
        )
    from linkage.report import write_quality

    result.quality = write_quality(backend, run_id, as_of, truth)
    return result


def _decisions_table(run_id, model_version, decisions, node_pairs, r) -> pa.Table:
    """Each link and review with the comparison vector and weight of its deciding pair."""
    rep = r.sort_values(["variant", "source", "record_id"]).drop_duplicates("variant").set_index("variant")
    parts = []
    for kind, table in (("link", decisions.links), ("review", decisions.review)):
        if table.empty:
            continue
        best = table[["a", "b"]].merge(node_pairs, on=["a", "b"], how="left")
        if kind == "review":
            best["reason"] = table["why"].to_numpy()
        else:
            best["reason"] = None
        best["decision"] = kind
        parts.append(best)
    if not parts:
        return pa.table({"run_id": pa.array([], pa.int64())})
    d = pd.concat(parts, ignore_index=True)
    out = pd.DataFrame(
        {
            "run_id": run_id,
            "left_source": rep["source"].reindex(d["va"]).to_numpy(),
            "left_record_id": rep["record_id"].reindex(d["va"]).to_numpy(),
            "right_source": rep["source"].reindex(d["vb"]).to_numpy(),
            "right_record_id": rep["record_id"].reindex(d["vb"]).to_numpy(),
            **{f"{c}_level": d[c].astype("int16").to_numpy() for c in COMPARISONS},
            "weight": d["weight"].to_numpy(),
            "probability": fs.probability(d["weight"].to_numpy()),
            "decision": d["decision"].to_numpy(),
            "reason": d["reason"].to_numpy(),
            "model_version": model_version,
        }
    )
    return pa.Table.from_pandas(out, preserve_index=False)
