"""Task bodies of the monthly refresh. Each works as of the run's knowledge date (the latest
extract_date on or before its data interval's end, outcomes.ops.knowledge), so running it again
for the same interval, or backfilling an earlier one later, builds and publishes the same tables.
They exchange only dates and file paths."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict
from pathlib import Path

from outcomes.warehouse import resolve_target


def knowledge_task(landing: str, warehouse: str | None, interval_end: str) -> str:
    """The run's knowledge date (ISO), from the landing folder and the ledger."""
    from outcomes.eventstore import connect
    from outcomes.ops.knowledge import knowledge_date

    applied: list[dt.date] = []
    with connect(resolve_target(warehouse)) as backend, backend.transaction() as s:
        ledger = s.scalar(
            "select count(*) from information_schema.tables where table_schema = 'events' and table_name = 'deliveries'"
        )
        if ledger:
            applied = (
                s.fetch("select distinct extract_date from events.deliveries where status = 'applied'")
                .column(0)
                .to_pylist()
            )
    return str(knowledge_date(Path(landing), dt.date.fromisoformat(interval_end), applied))


def ingest_task(landing: str, warehouse: str | None, reports: str, as_of: str) -> str:
    """Apply new deliveries dated on or before `as_of`; write a JSON report; return its path."""
    from outcomes.eventstore import connect
    from outcomes.ingest import Ingestor

    target = resolve_target(warehouse)
    with connect(target) as backend:
        report = Ingestor(backend, target.default_archive).ingest(Path(landing), until=dt.date.fromisoformat(as_of))
    out = Path(reports) / "ingest" / f"{as_of}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "landing": landing,
        "as_of": as_of,
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


def link_task(warehouse: str | None, reports: str, as_of: str, truth: str | None = None) -> str:
    """Link records known on `as_of` not linked yet into the person spine (the engine of
    $OUTCOMES_LINK_ENGINE); write a JSON report; return its path."""
    from linkage.engines import link_function
    from outcomes.eventstore import connect

    link = link_function()

    target = resolve_target(warehouse)
    truth_dir = Path(truth) if truth and (Path(truth) / "records.parquet").exists() else None
    with connect(target) as backend:
        result = link(backend, truth=truth_dir, as_of=dt.date.fromisoformat(as_of))
    return write_link_report(result, reports, as_of)


def link_work_dir(warehouse: str | None, as_of: str) -> Path:
    """Where a staged linkage run keeps its chunks: beside the warehouse's archive (it may hold
    identity tokens, so never in the reports), removed when the run finishes."""
    return Path(resolve_target(warehouse).default_archive).parent / "linkage-work" / as_of


def link_prepare_task(
    warehouse: str | None, as_of: str, truth: str | None = None, chunk: int | None = None, engine: str | None = None
) -> list[str]:
    """Linkage up to the candidate pairs; the paths of their chunks (one mapped task each). With
    the Spark engine (`engine`, else $OUTCOMES_LINK_ENGINE) the whole linkage runs here, on the
    cluster, and one empty chunk passes its result on (linkage.stages)."""
    from linkage.engine import CHUNK
    from linkage.stages import prepare_chunks
    from outcomes.eventstore import connect

    target = resolve_target(warehouse)
    truth_dir = Path(truth) if truth and (Path(truth) / "records.parquet").exists() else None
    with connect(target) as backend:
        return prepare_chunks(
            backend,
            link_work_dir(warehouse, as_of),
            chunk=int(chunk or CHUNK),
            engine=engine or None,
            truth=truth_dir,
            as_of=dt.date.fromisoformat(as_of),
        )


def link_score_task(path: str) -> str:
    from linkage.stages import score_chunk_file

    return score_chunk_file(path)


def link_finish_task(warehouse: str | None, reports: str, as_of: str, scored: list[str]) -> str:
    """Clustering, person ids and the spine's writes from every scored chunk; the link report's path."""
    from linkage.stages import finish_chunks
    from outcomes.eventstore import connect

    with connect(resolve_target(warehouse)) as backend:
        result = finish_chunks(backend, list(scored))
    return write_link_report(result, reports, as_of)


def write_link_report(result, reports: str, as_of: str) -> str:
    out = Path(reports) / "link" / f"{as_of}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {k: v for k, v in result.__dict__.items() if k not in ("quality", "blocking")}
    payload["as_of"] = str(payload["as_of"])
    payload["blocking"] = [list(b) for b in result.blocking]
    payload["quality"] = [] if result.quality is None else json.loads(result.quality.to_json(orient="records"))
    if result.records_new or not out.exists():
        out.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")
    return str(out)


def build_task(warehouse: str | None, reports: str, as_of: str, full_refresh: bool = False) -> str:
    """Build every outcome table as of `as_of` (dbt tests included; incremental unless `full_refresh`
    or the last build cannot vouch for the tables); write the table hashes; return the path."""
    from outcomes.marts import build

    result = build(resolve_target(warehouse), dt.date.fromisoformat(as_of), full_refresh=full_refresh)
    out = Path(reports) / "build" / f"{as_of}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(result.to_json() + "\n")
    return str(out)


def gate_task(
    warehouse: str | None,
    reports: str,
    as_of: str,
    ingest_report: str,
    quarantine_limit: float | None = None,
    quarantine_limits: dict[str, float] | None = None,
    match_rate_points: float | None = None,
) -> str:
    """The quality gate before publication (outcomes.ops.gate); raises GateClosed with every reason."""
    from outcomes.eventstore import connect
    from outcomes.ops.gate import GateConfig, gate_reasons

    config = GateConfig.from_env(
        quarantine_limit=quarantine_limit,
        quarantine_limits=quarantine_limits or None,
        match_rate_points=match_rate_points,
    )
    ingested = json.loads(Path(ingest_report).read_text())
    new_rejections = [d["file_name"] for d in ingested["deliveries"] if d["status"] == "rejected"]
    with connect(resolve_target(warehouse)) as backend:
        reasons = gate_reasons(backend, dt.date.fromisoformat(as_of), config, new_rejections)
    out = Path(reports) / "gate" / f"{as_of}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"as_of": as_of, "open": not reasons, "reasons": reasons, **asdict(config)}, indent=2))
    if reasons:
        from outcomes.ops.gate import GateClosed

        raise GateClosed(f"publication of {as_of} stopped: " + "; ".join(reasons))
    return str(out)


def publish_task(warehouse: str | None, reports: str, as_of: str) -> str:
    """Write the disclosure-controlled published tables and the HTML report; return the report's path."""
    from outcomes.eventstore import connect
    from outcomes.marts import publish
    from outcomes.report import write_report

    target = resolve_target(warehouse)
    result = publish(target, dt.date.fromisoformat(as_of))
    out = Path(reports) / "publish" / f"{as_of}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(result.to_json() + "\n")
    report = Path(reports) / f"outcomes_report_{as_of}.html"
    with connect(target) as backend:
        write_report(backend, report)
    return str(report)
