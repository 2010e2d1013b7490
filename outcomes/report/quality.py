"""The linkage quality and data quality sections."""

from __future__ import annotations

import re
from collections.abc import Callable

from markupsafe import Markup, escape

from outcomes.contract import SOURCES
from outcomes.report import charts
from outcomes.report.read import DataQuality, Row
from outcomes.report.specs import AXIS_FORMATS, FORMATS, NOT_APPLICABLE, Measure
from outcomes.report.views import Cell, ChartView, Header, Section, TableView, measure_cell


def linkage_section(rows: list[Row] | None) -> Section:
    section = Section(
        "linkage-quality",
        "Linkage quality",
        "linkage_quality",
        [
            "How records of the four sources were linked into people, for each pair of sources in the latest "
            "linkage run: records of each source, records of the first source linked to a record of the second "
            "(another record of the same source when both are the same), the match rate (linked ÷ records of the "
            "first source), and pairs sent to clerical review.",
            "Precision, recall and F1 against ground truth are known only for synthetic data: pairwise (pairs of "
            "records) and cluster (records grouped into the right person).",
        ],
    )
    if rows is None:
        section.missing = "published.linkage_quality is not built or not readable."
        return section
    position = {s: i for i, s in enumerate(SOURCES)}
    rows = sorted(rows, key=lambda r: (r["run_id"], position.get(r["source_a"], 9), position.get(r["source_b"], 9)))
    measures = [
        Measure("records_a", "Records, first"),
        Measure("records_b", "Records, second"),
        Measure("linked_records", "Linked records"),
        Measure("match_rate", "Match rate", "rate", ("linked_records", "records_a")),
        Measure("review_pairs", "Review pairs"),
    ]
    scores = [
        ("pairwise_precision", "Pairwise precision"),
        ("pairwise_recall", "Pairwise recall"),
        ("pairwise_f1", "Pairwise F1"),
        ("cluster_precision", "Cluster precision"),
        ("cluster_recall", "Cluster recall"),
        ("cluster_f1", "Cluster F1"),
    ]
    if not any(r.get(column) is not None for r in rows for column, _ in scores):
        scores = []
        section.definition.append("No ground truth was given to this linkage run, so precision and recall are unknown.")
    headers = [Header("Source pair")] + [Header(m.label, "num") for m in measures]
    headers += [Header(text, "num") for _, text in scores]
    body = []
    for r in rows:
        cells = [Cell(f"{r['source_a']} – {r['source_b']}", header=True)]
        cells += [measure_cell(m, r) for m in measures]
        cells += [
            Cell(FORMATS["score"](r[column]), "num rate")
            if r.get(column) is not None
            else Cell(NOT_APPLICABLE, "num rate na")
            for column, _ in scores
        ]
        body.append(cells)
    runs = sorted({(r["run_id"], r["as_of"]) for r in rows})
    caption = "; ".join(f"linkage run {run} (as of {as_of})" for run, as_of in runs) or "No linkage run"
    section.tables.append(TableView("linkage-quality-pairs", caption.capitalize(), headers, body))
    scored = [r for r in rows if r.get("pairwise_f1") is not None and r.get("match_rate") is not None]
    if scored:
        svg = charts.bar_chart(
            "linkage-quality-chart-0",
            "Match rate and pairwise F1 by source pair",
            [f"{r['source_a']} –\n{r['source_b']}" for r in scored],
            [
                charts.Series("Match rate", [r["match_rate"] for r in scored]),
                charts.Series("Pairwise F1", [r["pairwise_f1"] for r in scored]),
            ],
            y_label="Share",
            x_label="Source pair",
            fmt=AXIS_FORMATS["rate"],
            width=900,
        )
        section.charts.append(
            ChartView(
                "Match rate and pairwise F1 by source pair",
                [("", svg)],
                "A low match rate between two sources is expected where few people appear in both (deaths).",
            )
        )
    return section


def quality_section(q: DataQuality, rule_text: Callable[[str, str], str]) -> Section:
    section = Section(
        "data-quality",
        "Data quality",
        "events.deliveries, quarantine",
        [
            "Every delivery received, whether it was applied or rejected whole (with the reason), and the rows "
            "held back in quarantine because they broke a row-level rule of the extract specification. Counts "
            "only: no value of a quarantined row is shown. A row can break more than one rule, so rule counts "
            "can add up to more than the rows quarantined.",
        ],
    )
    if q.missing:
        section.definition.append("Not readable by this connection or not created yet: " + ", ".join(q.missing) + ".")
    by_source: dict[str, dict] = {}
    for d in q.deliveries:
        s = by_source.setdefault(
            d["source"] or "(unknown)",
            {
                "applied": 0,
                "rejected": 0,
                "delivered": 0,
                "rows_applied": 0,
                "quarantined": 0,
                "first": None,
                "last": None,
            },
        )
        s[d["status"]] = s.get(d["status"], 0) + 1
        s["delivered"] += d["rows_delivered"] or 0
        if d["status"] == "applied":
            s["rows_applied"] += d["rows_applied"] or 0
            s["quarantined"] += d["rows_quarantined"] or 0
            if d["extract_date"] is not None:
                s["first"] = min(filter(None, (s["first"], d["extract_date"])))
                s["last"] = max(filter(None, (s["last"], d["extract_date"])))

    def count(v: int) -> Cell:
        return Cell(f"{v:,}", "num qcount")

    headers = [
        Header("Source"),
        Header("Deliveries applied", "num"),
        Header("Deliveries rejected", "num"),
        Header("First extract"),
        Header("Latest extract"),
        Header("Rows delivered", "num"),
        Header("Rows applied", "num"),
        Header("Rows quarantined", "num"),
    ]
    order = {s: i for i, s in enumerate(SOURCES)}
    body = [
        [
            Cell(source, header=True),
            count(s["applied"]),
            count(s["rejected"]),
            Cell(str(s["first"] or "–")),
            Cell(str(s["last"] or "–")),
            count(s["delivered"]),
            count(s["rows_applied"]),
            count(s["quarantined"]),
        ]
        for source, s in sorted(by_source.items(), key=lambda kv: order.get(kv[0], 99))
    ]
    section.tables.append(
        TableView(
            "data-quality-deliveries", "Deliveries by source", headers, body, kind="quality", empty="No deliveries."
        )
    )
    if q.accounted:
        section.tables.append(
            TableView(
                "data-quality-accounted",
                f"Every applied record accounted for, as of {q.accounted_as_of}",
                [
                    Header("Source"),
                    Header("Records known (as-of state)", "num"),
                    Header("In the person spine", "num"),
                    Header("Not linked (in no outcome table)", "num"),
                ],
                [
                    [Cell(a.source, header=True), count(a.records), count(a.linked), count(a.unlinked)]
                    for a in sorted(q.accounted, key=lambda a: order.get(a.source, 99))
                ],
                kind="quality",
                empty="No records.",
            )
        )
        section.tables[-1].notes.append(
            "Records known: each record's latest applied version on the date, retracted ones left out. "
            "The outcome tables read records through the person spine, so a record not linked would be "
            "missing from them; `outcomes build` refuses to build while any is."
        )
    rejected = [d for d in q.deliveries if d["status"] == "rejected"]
    section.tables.append(
        TableView(
            "data-quality-rejected",
            "Rejected deliveries",
            [Header("File"), Header("Source"), Header("Extract date"), Header("Reason")],
            [
                [
                    Cell(d["file_name"], "code", header=True),
                    Cell(d["source"] or "–"),
                    Cell(str(d["extract_date"] or "–")),
                    Cell(d["reason"] or "–"),
                ]
                for d in rejected
            ],
            kind="quality",
            empty="No delivery was rejected.",
        )
    )
    quarantine_rows = [
        [
            Cell(c.source, header=True),
            Cell(c.rule, "code"),
            Cell(code_spans(rule_text(c.source, c.rule))),
            count(c.rows),
            count(c.still_open),
        ]
        for c in sorted(q.quarantine, key=lambda c: (order.get(c.source, 99), -c.rows, c.rule))
    ]
    view = TableView(
        "data-quality-quarantine",
        "Quarantined rows by source and rule",
        [Header("Source"), Header("Rule"), Header("What is wrong"), Header("Rows", "num"), Header("Still open", "num")],
        quarantine_rows,
        kind="quality",
        empty="No row has been quarantined.",
    )
    if q.quarantined_rows:
        view.notes.append(
            "Rows quarantined: "
            + ", ".join(
                f"{s} {n:,}" for s, n in sorted(q.quarantined_rows.items(), key=lambda kv: order.get(kv[0], 99))
            )
            + ". Still open: not released by a later correction."
        )
    section.tables.append(view)
    section.tables.append(
        TableView(
            "data-quality-ledger",
            "Every delivery, in the order received",
            [
                Header("File"),
                Header("Extract date"),
                Header("Type"),
                Header("Status"),
                Header("Rows delivered", "num"),
                Header("Applied", "num"),
                Header("Quarantined", "num"),
            ],
            [
                [
                    Cell(d["file_name"], "code", header=True),
                    Cell(str(d["extract_date"] or "–")),
                    Cell(d["delivery_type"] or "–"),
                    Cell(d["status"], "status-" + d["status"]),
                    count(d["rows_delivered"] or 0),
                    count(d["rows_applied"] or 0),
                    count(d["rows_quarantined"] or 0),
                ]
                for d in q.deliveries
            ],
            kind="quality",
            collapsed=True,
            empty="No deliveries.",
        )
    )
    return section


def code_spans(text: str) -> Markup:
    """A rule's description with its `column` names set as code; everything else escaped."""
    return Markup(re.sub(r"`([^`]*)`", r"<code>\1</code>", str(escape(text))))


def rule_descriptions() -> Callable[[str, str], str]:
    from outcomes.validation.rules import rules_for

    known = {(s, r.name): r.description for s in SOURCES for r in rules_for(s)}
    return lambda source, rule: known.get((source, rule), "")
