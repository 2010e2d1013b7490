"""Clerical review that feeds back: the queue out, the reviewers' decisions in.

`export_queue` writes the pairs waiting for a decision (CSV, or a small self-contained HTML page)
with each comparison's level and weight, and of each record only what the linkage team may see:
initials, sex, year of birth and postcode district (never a token, a Bloom filter or a key).
`import_decisions` records each decision (match or non-match, reviewer, time) in
`linkage.review_decisions`, an append-only log; the next `link` run applies every decision
logged (a match joins the two records' persons, a non-match keeps them apart and splits a person
that holds both) and no later model run overrides one: the decisions are constraints of every
run. The latest decision on a pair counts.
"""

from __future__ import annotations

import csv
import datetime as dt
import html
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from linkage.schema import DDL
from linkage.spec import IDENTITY as SPEC

DECISIONS = ("match", "non-match")
SHOWN = ("forename_initial", "surname_initial", "sex", "birth_year", "postcode_district")
PAIR = ["left_source", "left_record_id", "right_source", "right_record_id"]


def _ensure(session) -> None:
    for statement in DDL:
        session.execute(statement)


def queue(backend) -> pd.DataFrame:
    """Pairs sent to clerical review (latest run that sent each), whose records are still in two
    persons and that no reviewer has decided; with levels, weights and what may be shown."""
    with backend.transaction() as s:
        _ensure(s)
        levels = ", ".join(f"d.{c}_level" for c in SPEC.names)
        q = s.fetch(
            f"select d.run_id, {', '.join('d.' + c for c in PAIR)}, {levels}, d.weight, d.probability, d.reason, "
            "d.model_version from linkage.pair_decisions d where d.decision = 'review' order by d.run_id"
        ).to_pandas()
        spine = s.fetch("select source, record_id, person_id from linkage.person_records").to_pandas()
        decided = s.fetch(f"select {', '.join(PAIR)} from linkage.review_decisions").to_pandas()
        ident = s.fetch(
            "select source, record_id, forename_initial, surname_initial, sex, "
            "extract(year from date_of_birth) as birth_year, postcode_district from linkage.identities"
        ).to_pandas()
        models = dict(s.fetch("select model_version, model_json from linkage.models").to_pandas().values)
    if q.empty:
        return q
    q = q.drop_duplicates(PAIR, keep="last")
    person = spine.set_index(["source", "record_id"])["person_id"]
    # A reviewer decides whether two persons are one: a pair between two persons a reviewer has
    # decided a pair of already, or that a later pair between them stands for, is not shown.
    q["persons"] = _persons(person, q)
    q = q[~q["persons"].isin(set(_persons(person, decided)))]
    q = q.sort_values(["run_id", "weight"], ascending=[False, False], kind="mergesort")
    q = q.drop_duplicates("persons").sort_values(["run_id", "weight"], ascending=[True, False], kind="mergesort")
    q = q.drop(columns="persons")
    both = decided.assign(_d=True)
    swapped = decided.rename(
        columns=dict(zip(PAIR, ["right_source", "right_record_id", "left_source", "left_record_id"], strict=True))
    ).assign(_d=True)
    q = q.merge(pd.concat([both, swapped]).drop_duplicates(PAIR), on=PAIR, how="left")
    q = q[q["_d"].isna()].drop(columns="_d")
    left = person.reindex(pd.MultiIndex.from_frame(q[["left_source", "left_record_id"]])).to_numpy()
    right = person.reindex(pd.MultiIndex.from_frame(q[["right_source", "right_record_id"]])).to_numpy()
    q = q[left != right].reset_index(drop=True)
    # the weight each level carried in the model that scored the pair (before the term-frequency
    # adjustment of exact names and dates, which the total weight includes)
    for c in SPEC.names:
        pairs = zip(q["model_version"], q[f"{c}_level"], strict=True)
        q[f"{c}_weight"] = [round(float(_weights(models[v], c)[int(lv)]), 2) for v, lv in pairs]
    ident = ident.drop_duplicates(["source", "record_id"]).set_index(["source", "record_id"])
    for side in ("left", "right"):
        shown = ident.reindex(pd.MultiIndex.from_frame(q[[f"{side}_source", f"{side}_record_id"]]))
        for c in SHOWN:
            q[f"{side}_{c}"] = shown[c].to_numpy()
    left_id = q["left_source"] + ":" + q["left_record_id"]
    q.insert(0, "pair", left_id + "~" + q["right_source"] + ":" + q["right_record_id"])
    q["decision"], q["reviewer"], q["decided_at"] = "", "", ""
    return q


def _persons(person: pd.Series, pairs: pd.DataFrame) -> list[str]:
    """Each pair's two persons (`person`: (source, record_id) -> person id) as one key, either
    order; a record without a person keeps its own name."""
    keys = []
    for side in ("left", "right"):
        at = pd.MultiIndex.from_frame(pairs[[f"{side}_source", f"{side}_record_id"]])
        own = (pairs[f"{side}_source"] + ":" + pairs[f"{side}_record_id"]).to_numpy()
        ids = person.reindex(at).to_numpy()
        keys.append(np.where(pd.isna(ids), own, ids).astype(str))
    return [f"{a}~{b}" if a <= b else f"{b}~{a}" for a, b in zip(keys[0], keys[1], strict=True)]


def _weights(model_json: str, comparison: str) -> list[float]:
    from linkage.model import Model

    return list(Model.from_json(model_json).weights(comparison))


def export_queue(backend, out: Path, fmt: str | None = None) -> int:
    """Write the review queue to `out` (format from the suffix unless given: csv or html)."""
    fmt = (fmt or Path(out).suffix.lstrip(".") or "csv").lower()
    if fmt not in ("csv", "html"):
        raise ValueError(f"review export: unknown format {fmt!r} (csv or html)")
    q = queue(backend)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        q.to_csv(out, index=False)
    else:
        Path(out).write_text(_html(q), encoding="utf-8")
    return len(q)


def _html(q: pd.DataFrame) -> str:
    head = (
        "<!doctype html><html><head><meta charset='utf-8'><title>Clerical review queue</title><style>"
        "body{font-family:sans-serif;margin:1em}table{border-collapse:collapse;margin-bottom:1.2em}"
        "td,th{border:1px solid #bbb;padding:2px 6px;text-align:left}th{background:#eee}"
        ".pos{color:#064}.neg{color:#a00}</style></head><body>"
        f"<h1>Clerical review queue</h1><p>{len(q)} pairs. Record the decision (match or non-match), your name "
        "and the time in the CSV export (<code>outcomes review export --out queue.csv</code>), then "
        "<code>outcomes review import queue.csv</code>.</p>"
    )
    parts = [head]
    for row in q.itertuples(index=False):
        r = row._asdict()
        parts.append(
            f"<h3>{html.escape(r['pair'])}</h3><p>weight {r['weight']:.2f}, probability {r['probability']:.3f}; "
            f"{html.escape(str(r['reason']))}</p><table><tr><th></th>"
            + "".join(f"<th>{c}</th>" for c in SHOWN)
            + "</tr>"
        )
        for side in ("left", "right"):
            cells = "".join(f"<td>{html.escape(_text(r[f'{side}_{c}']))}</td>" for c in SHOWN)
            parts.append(f"<tr><th>{html.escape(r[f'{side}_source'])}</th>{cells}</tr>")
        parts.append("</table><table><tr><th>comparison</th><th>level</th><th>weight</th></tr>")
        for c in SPEC.names:
            w = r[f"{c}_weight"]
            level = int(r[f"{c}_level"])
            parts.append(
                f"<tr><td>{c}</td><td>{'missing' if level < 0 else level}</td>"
                f"<td class='{'pos' if w > 0 else 'neg' if w < 0 else ''}'>{w:+.2f}</td></tr>"
            )
        parts.append("</table>")
    parts.append("</body></html>")
    return "".join(parts)


def _text(v) -> str:
    if v is None or (isinstance(v, float) and pd.isna(v)) or v is pd.NA:
        return ""
    return str(int(v)) if isinstance(v, float) else str(v)


@dataclass
class ImportReport:
    recorded: int = 0
    undecided: int = 0
    rejected: list[str] = field(default_factory=list)  # "row N: reason"

    def lines(self) -> list[str]:
        out = f"{self.recorded} decisions recorded, {self.undecided} rows left undecided"
        return [f"{out}, {len(self.rejected)} rejected"] + [f"  rejected {r}" for r in self.rejected]


def import_decisions(backend, path: Path, now: dt.datetime | None = None) -> ImportReport:
    """Record the decisions of a review CSV (columns left_source, left_record_id, right_source,
    right_record_id, decision, reviewer, optional decided_at ISO time, default now). A row
    without a decision is left undecided; a row naming an unknown record, another decision, no
    reviewer or an unreadable time is rejected with its reason; the rest are recorded."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no review file at {path}")
    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [c for c in (*PAIR, "decision", "reviewer") if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"review file {path.name} lacks the columns {', '.join(missing)}")
        rows = list(reader)
    report = ImportReport()
    with backend.transaction() as s:
        _ensure(s)
        ident = s.fetch("select source, record_id, node from linkage.identities").to_pandas()
        start = int(s.scalar("select coalesce(max(decision_id), 0) from linkage.review_decisions"))
    node = dict(zip(zip(ident["source"], ident["record_id"], strict=True), ident["node"], strict=True))
    good = []
    for i, row in enumerate(rows, start=2):  # row 1 is the header
        decision = (row.get("decision") or "").strip().lower()
        if not decision:
            report.undecided += 1
            continue
        why = None
        a = ((row["left_source"] or "").strip(), (row["left_record_id"] or "").strip())
        b = ((row["right_source"] or "").strip(), (row["right_record_id"] or "").strip())
        reviewer = (row.get("reviewer") or "").strip()
        when = now
        if decision not in DECISIONS:
            why = f"decision must be match or non-match, not {decision[:20]!r}"
        elif not reviewer:
            why = "no reviewer"
        elif a not in node or b not in node:
            why = "names a record the linkage does not hold"
        elif node[a] == node[b]:
            why = "both records hold one source key (one node): a review cannot part them"
        else:
            text = (row.get("decided_at") or "").strip()
            if text:
                try:
                    when = dt.datetime.fromisoformat(text).replace(tzinfo=None)
                except ValueError:
                    why = "decided_at is not an ISO date-time"
        if why:
            report.rejected.append(f"row {i}: {why}")
            continue
        good.append(
            {
                "decision_id": start + len(good) + 1,
                "left_source": a[0],
                "left_record_id": a[1],
                "right_source": b[0],
                "right_record_id": b[1],
                "decision": decision,
                "reviewer": reviewer,
                "decided_at": when,
                "imported_at": now,
                "file": path.name,
            }
        )
    if good:
        with backend.transaction() as s:
            s.insert("linkage.review_decisions", pa.Table.from_pylist(good))
    report.recorded = len(good)
    return report


def load_decisions(session, known_on: dt.date | None = None) -> pd.DataFrame:
    """Every decision logged, the latest per pair (either way round) only; with `known_on`, only
    the decisions made on or before that day (a past date's run knows no later decision)."""
    d = session.fetch(
        "select decision_id, left_source, left_record_id, right_source, right_record_id, decision, reviewer, "
        "decided_at from linkage.review_decisions order by decision_id"
    ).to_pandas()
    if known_on is not None and not d.empty:
        d = d[pd.to_datetime(d["decided_at"]).dt.date <= known_on]
    if d.empty:
        return d
    a = d["left_source"] + ":" + d["left_record_id"]
    b = d["right_source"] + ":" + d["right_record_id"]
    d["_pair"] = [json.dumps(sorted(p)) for p in zip(a, b, strict=True)]
    return d.drop_duplicates("_pair", keep="last").drop(columns="_pair").reset_index(drop=True)
