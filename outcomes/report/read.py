"""What the report reads from the warehouse, in portable SQL (DuckDB and PostgreSQL).

Outcome figures come only from the disclosure-controlled `published` schema. Data quality comes
from the delivery ledger (`events.deliveries`) and the quarantine tables, read as counts by source
and rule: no identity field and no row value of a quarantined row is ever selected.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from outcomes.contract import SOURCES, parse_delivery_filename
from outcomes.eventstore.schema import quarantine_table
from outcomes.marts.build import OUTCOME_MARTS
from outcomes.reference import ENGLAND

Row = dict[str, Any]

OUTCOME_TABLES = OUTCOME_MARTS
PERIODIC = {
    "successful_completion",
    "sustained_recovery",
    "proven_reoffending",
    "convictions_before_after",
    "treatment_flow",
    "benefits_outcome",
}


@dataclass
class PublishedTable:
    name: str
    england: list[Row] = field(default_factory=list)  # England rows (every row if the table has no area)
    areas: list[Row] = field(default_factory=list)  # local-authority rows of the latest financial year / year
    area_period: str | None = None  # label of the period of `areas`
    grains: dict[str, list[Row]] = field(default_factory=dict)  # rows of its coarser published tables (GRAINS)


# Coarser published tables a section charts from (published as such, so disclosure control keeps
# their totals instead of the report adding up fine cells): name -> (table, England rows only).
GRAINS = {
    "drug_related_deaths": {
        "england_by_year": ("drug_related_deaths_by_area", True),
        "england_by_status": ("drug_related_deaths_england_by_treatment_status", False),
    },
    "deaths_after_treatment": {"by_exit_type": ("deaths_after_treatment_by_exit_type", False)},
}


@dataclass
class QuarantineCount:
    source: str
    rule: str
    rows: int
    still_open: int


@dataclass
class RecordAccount:
    """Of one source's records in the as-of state, how many the person spine as of the same date holds
    (the marts inner-join the spine: a record it does not hold is in no outcome table)."""

    source: str
    records: int
    linked: int

    @property
    def unlinked(self) -> int:
        return self.records - self.linked


@dataclass
class DataQuality:
    deliveries: list[Row] = field(default_factory=list)  # one row per delivery, ledger order
    accounted: list[RecordAccount] = field(default_factory=list)  # per source, as of `accounted_as_of`
    accounted_as_of: dt.date | None = None
    quarantine: list[QuarantineCount] = field(default_factory=list)
    quarantined_rows: dict[str, int] = field(default_factory=dict)  # rows quarantined per source (any rule)
    missing: list[str] = field(default_factory=list)  # tables not present or not readable here


@dataclass
class ReportData:
    dialect: str
    as_of: dt.date | None
    tables: dict[str, PublishedTable]
    linkage: list[Row] | None
    quality: DataQuality

    @property
    def as_of_dates(self) -> list[dt.date]:
        """Every as_of found in the published tables: more than one means a partial rebuild."""
        rows = [r for t in self.tables.values() for r in t.england + t.areas] + (self.linkage or [])
        return sorted({r["as_of"] for r in rows if r.get("as_of") is not None})


def _rows(session, sql: str, params: dict[str, Any] | None = None) -> list[Row]:
    return session.fetch(sql, params).to_pylist()


def visible_tables(session) -> set[str]:
    """`schema.table` of every table or view this connection can see (PostgreSQL lists only those it may read)."""
    rows = _rows(
        session,
        "select table_schema, table_name from information_schema.tables "
        "where table_schema in ('published', 'events', 'quarantine', 'linkage')",
    )
    return {f"{r['table_schema']}.{r['table_name']}" for r in rows}


def latest_complete_year(rows: list[Row], as_of: dt.date | None) -> int | None:
    years = sorted({r["year"] for r in rows})
    if not years:
        return None
    complete = [y for y in years if as_of is None or dt.date(y, 12, 31) <= as_of]
    return (complete or years)[-1]


def read_published(session, name: str, as_of: dt.date | None) -> PublishedTable:
    table = PublishedTable(name)
    relation = f"published.{name}"
    if name == "deaths_after_treatment":
        table.england = _rows(session, f"select * from {relation}")
        return table
    table.england = _rows(session, f"select * from {relation} where la_code = :england", {"england": ENGLAND})
    if name in PERIODIC:
        latest = session.scalar(f"select max(period_end) from {relation} where period_type = 'financial_year'")
        if latest is not None:
            table.areas = _rows(
                session,
                f"select * from {relation} where period_type = 'financial_year' and period_end = :latest "
                "and la_code <> :england",
                {"latest": latest, "england": ENGLAND},
            )
            labels = {r["period_label"] for r in table.areas}
            table.area_period = next(iter(labels)) if labels else None
    elif name == "drug_related_deaths":
        year = latest_complete_year(table.england, as_of)
        if year is not None:
            table.areas = _rows(
                session,
                f"select * from {relation} where year = :year and year_basis = 'registration' and la_code <> :england",
                {"year": year, "england": ENGLAND},
            )
            table.area_period = str(year)
    return table


def read_quality(session, visible: set[str]) -> DataQuality:
    quality = DataQuality()
    if "events.deliveries" in visible:
        quality.deliveries = _rows(
            session,
            "select ledger_id, file_name, source, extract_date, seq, delivery_type, status, reason, rows_delivered, "
            "rows_applied, rows_quarantined from events.deliveries order by ledger_id",
        )
        for d in quality.deliveries:
            d["file_name"] = safe_file_name(d["file_name"])
            d["reason"] = safe_reason(d["reason"])
    else:
        quality.missing.append("events.deliveries")
    for source in SOURCES:
        relation = quarantine_table(source)
        if relation not in visible:
            quality.missing.append(relation)
            continue
        # Counts by the rule set of each row only: the rows' values never leave the warehouse.
        by_rules = _rows(session, f"select rules, count(*) as n from {relation} group by rules")
        open_view = f"quarantine.{source}_open"
        still_open = (
            _rows(session, f"select rules, count(*) as n from {open_view} group by rules")
            if open_view in visible
            else []
        )
        rows, opened = Counter(), Counter()
        for counter, result in ((rows, by_rules), (opened, still_open)):
            for r in result:
                for rule in str(r["rules"]).split("; "):
                    counter[rule] += int(r["n"])
        quality.quarantined_rows[source] = sum(int(r["n"]) for r in by_rules)
        quality.quarantine += [QuarantineCount(source, rule, rows[rule], opened[rule]) for rule in sorted(rows)]
    return quality


def read_accounting(session, visible: set[str], as_of: dt.date) -> list[RecordAccount]:
    """Counts only: per source, the records applied and known on `as_of`, and those of them in the
    spine as of the same date. Empty where this connection cannot read the event store or the spine."""
    from outcomes.marts.build import spine_coverage_sql

    if "linkage.link_events" not in visible or not all(f"events.{s}" in visible for s in SOURCES):
        return []
    accounts = []
    for source in SOURCES:
        row = _rows(session, spine_coverage_sql(source), {"as_of": as_of})[0]
        accounts.append(RecordAccount(source, int(row["records"]), int(row["linked"])))
    return accounts


def safe_file_name(name: str | None) -> str:
    """A delivery's file name when it follows the spec's pattern; anything else is not printed."""
    if name and parse_delivery_filename(name) is not None:
        return name
    return "(file name outside the delivery pattern)"


def safe_reason(reason: str | None) -> str | None:
    """Rejection reasons are written by ingest; an unreadable file's parser message could quote a value."""
    if reason and reason.startswith("unreadable "):
        return reason.split(":", 1)[0] + " (parser detail in the ingest log)"
    return reason


def read_report_data(backend) -> ReportData:
    """Everything the report shows, read in one transaction (one consistent state)."""
    with backend.transaction() as s:
        visible = visible_tables(s)
        as_of = None
        if "published.successful_completion" in visible:
            as_of = s.scalar("select max(as_of) from published.successful_completion")
        tables = {name: read_published(s, name, as_of) for name in OUTCOME_TABLES if f"published.{name}" in visible}
        for name, table in tables.items():
            for grain, (relation, england) in GRAINS.get(name, {}).items():
                if f"published.{relation}" in visible:
                    sql = f"select * from published.{relation}"
                    params = {"england": ENGLAND} if england else None
                    table.grains[grain] = _rows(s, sql + (" where la_code = :england" if england else ""), params)
        linkage = (
            _rows(s, "select * from published.linkage_quality order by run_id, source_a, source_b")
            if "published.linkage_quality" in visible
            else None
        )
        quality = read_quality(s, visible)
        if as_of is not None:
            quality.accounted = read_accounting(s, visible, as_of)
            quality.accounted_as_of = as_of
    return ReportData(backend.dialect, as_of, tables, linkage, quality)
