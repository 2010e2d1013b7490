"""Task bodies of the monthly refresh. Each is idempotent: running it again for the same data
interval finds nothing new to do and writes the same report. They exchange only file paths."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from outcomes.warehouse import resolve_target


def ingest_task(landing: str, warehouse: str | None, reports: str, interval_end: str) -> str:
    """Apply new deliveries; write a JSON report of what happened and return its path."""
    from outcomes.eventstore import connect
    from outcomes.ingest import Ingestor

    target = resolve_target(warehouse)
    with connect(target) as backend:
        report = Ingestor(backend, target.default_archive).ingest(Path(landing))
    out = Path(reports) / "ingest" / f"{interval_end}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "landing": landing,
        "warehouse": target.redacted,
        "already_applied": report.already_applied,
        "already_rejected": report.already_rejected,
        "deliveries": [
            {
                **{k: v for k, v in asdict(o).items() if k not in ("events", "quarantined_by_rule")},
                "events": dict(o.events),
                "quarantined_by_rule": dict(o.quarantined_by_rule),
            }
            for o in report.outcomes
        ],
    }
    if report.outcomes or not out.exists():  # a re-run that finds nothing new keeps the first report
        out.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    return str(out)


def link_task(warehouse: str | None, reports: str, interval_end: str, truth: str | None = None) -> str:
    """Link new records into the person spine; write a JSON report and return its path."""
    from linkage.run import link
    from outcomes.eventstore import connect

    target = resolve_target(warehouse)
    truth_dir = Path(truth) if truth and (Path(truth) / "records.parquet").exists() else None
    with connect(target) as backend:
        result = link(backend, truth=truth_dir)
    out = Path(reports) / "link" / f"{interval_end}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {k: v for k, v in result.__dict__.items() if k not in ("quality", "blocking")}
    payload["as_of"] = str(payload["as_of"])
    payload["blocking"] = [list(b) for b in result.blocking]
    payload["quality"] = [] if result.quality is None else json.loads(result.quality.to_json(orient="records"))
    if result.records_new or not out.exists():
        out.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")
    return str(out)


def build_task(warehouse: str | None, reports: str, interval_end: str) -> str:
    """Build every outcome table as of the latest applied extract; write the table hashes; return the path."""
    from outcomes.marts import build

    result = build(resolve_target(warehouse))
    out = Path(reports) / "build" / f"{interval_end}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(result.to_json() + "\n")
    return str(out)


def publish_task(warehouse: str | None, reports: str, interval_end: str) -> str:
    """Write the disclosure-controlled published tables and the HTML report; return the report's path."""
    from outcomes.eventstore import connect
    from outcomes.marts import publish
    from outcomes.report import write_report

    target = resolve_target(warehouse)
    result = publish(target)
    out = Path(reports) / "publish" / f"{interval_end}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(result.to_json() + "\n")
    report = Path(reports) / f"outcomes_report_{interval_end}.html"
    with connect(target) as backend:
        write_report(backend, report)
    return str(report)
