"""Rendering the report to one self-contained HTML file."""

from __future__ import annotations

import datetime as dt
from importlib import metadata
from pathlib import Path

import jinja2

from outcomes.report.data_docs import data_docs_links, data_docs_section
from outcomes.report.read import ReportData, read_report_data
from outcomes.report.sections import build_sections, is_synthetic
from outcomes.report.template import CSS, TEMPLATE

TITLE = "Drug treatment outcomes"


def _version() -> str:
    try:
        return metadata.version("outcomes-warehouse")
    except metadata.PackageNotFoundError:
        return "unknown"


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.DictLoader({"report.html": TEMPLATE}),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=False,
        lstrip_blocks=False,
    )


def render_report(data: ReportData, generated_at: dt.datetime | None = None, data_docs: list[str] | None = None) -> str:
    """The report's HTML for data read from the warehouse; `data_docs`: relative links to the data docs sites."""
    generated_at = generated_at or dt.datetime.now(dt.UTC)
    applied = [d for d in data.quality.deliveries if d["status"] == "applied" and d["extract_date"]]
    latest: dict[str, dt.date] = {}
    for d in applied:
        latest[d["source"]] = max(latest.get(d["source"], d["extract_date"]), d["extract_date"])
    runs = sorted({(r["run_id"], r["as_of"]) for r in data.linkage or []})
    return (
        _environment()
        .get_template("report.html")
        .render(
            title=TITLE,
            css=CSS,
            as_of=data.as_of or max(data.as_of_dates, default=None),
            mixed_as_of=", ".join(str(d) for d in data.as_of_dates) if len(data.as_of_dates) > 1 else "",
            generated=f"{generated_at:%Y-%m-%d %H:%M} UTC",
            version=_version(),
            dialect={"duckdb": "DuckDB", "postgresql": "PostgreSQL"}.get(data.dialect, data.dialect),
            synthetic=is_synthetic(data),
            linkage_run=", ".join(f"run {run} as of {as_of}" for run, as_of in runs),
            latest_extracts=" · ".join(f"{s} {d}" for s, d in latest.items()),
            sections=build_sections(data) + ([data_docs_section(data_docs)] if data_docs else []),
        )
    )


def write_report(backend, out: Path) -> Path:
    """Read the published tables, the delivery ledger and the quarantine counts through `backend`
    (outcomes.eventstore.Backend, DuckDB or PostgreSQL) and write the report to `out` as one
    self-contained HTML file; returns `out`."""
    out = Path(out)
    html = render_report(read_report_data(backend), data_docs=data_docs_links(out))
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    partial.write_text(html, encoding="utf-8")
    partial.replace(out)
    return out
