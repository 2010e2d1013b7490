"""The outcomes report (outcomes.report.write_report) over a small warehouse built end to end:
synthetic deliveries (one of them with broken rows, one rejected), ingest, link, dbt, report."""

from __future__ import annotations

import datetime as dt
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from outcomes.contract import SOURCES
from outcomes.eventstore import connect
from outcomes.eventstore.schema import as_of_sql
from outcomes.marts.build import MARTS
from outcomes.reference import ENGLAND
from outcomes.report.charts import Series, line_chart, nice_ticks
from outcomes.warehouse import resolve_target
from tests.report_warehouse import AS_OF, BROKEN_ROWS, BROKEN_RULE

OUTCOME_TABLES = MARTS


@pytest.fixture(scope="module")
def built(report_warehouse) -> tuple[str, Path]:
    """A DuckDB warehouse with published tables as of AS_OF, and its report (tests/report_warehouse.py)."""
    return report_warehouse


@pytest.fixture(scope="module")
def html(built) -> str:
    return built[1].read_text(encoding="utf-8")


class Tables(HTMLParser):
    """Every <table>: its id, class and rows of (text, class) cells."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[dict] = []
        self._cell: list | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self.tables.append({"id": attrs.get("id"), "class": attrs.get("class") or "", "rows": []})
        elif tag == "tr" and self.tables:
            self.tables[-1]["rows"].append([])
        elif tag in ("td", "th") and self.tables:
            self._cell = ["", attrs.get("class") or "", tag]

    def handle_data(self, data):
        if self._cell is not None:
            self._cell[0] += data

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1]["rows"][-1].append((self._cell[0].strip(), self._cell[1], self._cell[2]))
            self._cell = None


@pytest.fixture(scope="module")
def tables(html) -> list[dict]:
    parser = Tables()
    parser.feed(html)
    return parser.tables


def _fetch(target: str, sql: str) -> list[dict]:
    with connect(resolve_target(target), read_only=True) as backend, backend.transaction() as s:
        return s.fetch(sql).to_pylist()


def test_one_self_contained_html_file(built, html):
    assert built[1].is_file() and html.startswith("<!DOCTYPE html>")
    assert "http://" not in html and "https://" not in html
    assert not re.search(r"<(script|link|img|iframe|object)\b", html)
    assert not re.search(r"\bsrc\s*=|@import|url\(", html)
    assert all(href.startswith("#") for href in re.findall(r'href="([^"]*)"', html))
    assert 'lang="en"' in html and "<caption>" in html and '<th scope="col"' in html


def test_a_section_per_outcome_table_with_charts(html):
    for name in OUTCOME_TABLES:
        match = re.search(rf'<section id="{name.replace("_", "-")}".*?</section>', html, re.S)
        assert match, name
        assert name in match.group(0)
    charts = re.findall(r'<svg class="chart".*?</svg>', html, re.S)
    assert len(charts) >= 9
    assert all("<title id=" in svg and "<desc id=" in svg and 'role="img"' in svg for svg in charts)
    assert "as of 2025-03-31" in html


def test_suppressed_cells_are_shown_as_c(built, tables):
    published = [t for t in tables if t["class"] == "published"]
    cells = [c for t in published for row in t["rows"] for c in row]
    suppressed = [c for c in cells if "suppressed" in c[1]]
    assert suppressed and all(c[0] == "[c]" for c in suppressed)
    # The England table of successful completion shows each published row as it is.
    rows = _fetch(
        built[0],
        "select substance_group, in_treatment, successful_completions, not_representing from "
        f"published.successful_completion where la_code = '{ENGLAND}' and period_type = 'rolling_12_months' "
        "and period_end = (select max(period_end) from published.successful_completion)",
    )
    table = next(t for t in tables if t["id"] == "successful-completion-england")
    shown = {r[0][0]: [c[0] for c in r[1:4]] for r in table["rows"][1:]}
    labels = {"opiate": "Opiate", "non_opiate_only": "Non-opiate only", "alcohol_only": "Alcohol only"}
    labels["non_opiate_and_alcohol"] = "Non-opiate and alcohol"
    for r in rows:
        expected = [
            "[c]" if r[c] is None else f"{r[c]:,}"
            for c in ("in_treatment", "successful_completions", "not_representing")
        ]
        assert shown[labels[r["substance_group"]]] == expected
    assert any("[c] suppressed" in note for note in re.findall(r"<li>(.*?)</li>", built[1].read_text(), re.S))


def test_no_count_from_1_to_4_in_outcome_tables(tables):
    published = [t for t in tables if t["class"] == "published"]
    counts = [c[0] for t in published for row in t["rows"] for c in row if "count" in c[1].split()]
    assert len(counts) > 100
    for text in counts:
        assert text == "[c]" or int(text.replace(",", "")) == 0 or int(text.replace(",", "")) >= 5, text


def test_provisional_figures_are_marked(tables):
    table = next(t for t in tables if t["id"] == "sustained-recovery-england")
    assert all(row[-1][0] == "P" for row in table["rows"][1:])


def test_convictions_section_says_changes_are_not_causal(html):
    section = re.search(r'<section id="convictions-before-after".*?</section>', html, re.S).group(0)
    assert "cannot be interpreted as direct, quantifiable measures of a causal effect" in section
    assert "47% / 48%" in section and "Ours (synthetic)" in section


def test_deaths_after_treatment_rates_by_time_since_exit(tables):
    table = next(t for t in tables if t["id"] == "deaths-after-treatment-pooled")
    header = [c[0] for c in table["rows"][0]]
    assert "All causes per 1,000 PY" in header and "Person-years" in header
    assert {row[1][0] for row in table["rows"][1:]} == {"0–28 days", "29–365 days", "1–2 years", "2–5 years"}


def test_linkage_quality_per_source_pair(tables):
    table = next(t for t in tables if t["id"] == "linkage-quality-pairs")
    assert len(table["rows"]) - 1 == len(SOURCES) * (len(SOURCES) + 1) // 2
    assert "Pairwise F1" in [c[0] for c in table["rows"][0]]


def test_data_quality_counts_rejections_and_quarantine_by_rule(tables):
    rejected = next(t for t in tables if t["id"] == "data-quality-rejected")
    assert [c[0] for c in rejected["rows"][1]][:2] == ["treatment_20250331_02.parquet", "treatment"]
    assert "sha256 does not match" in rejected["rows"][1][3][0]
    quarantine = next(t for t in tables if t["id"] == "data-quality-quarantine")
    rows = {(r[0][0], r[1][0]): r[3][0] for r in quarantine["rows"][1:]}
    assert rows[("treatment", BROKEN_RULE)] == str(BROKEN_ROWS)


def test_data_quality_accounts_for_every_applied_record(built, tables):
    accounted = next(t for t in tables if t["id"] == "data-quality-accounted")
    rows = {r[0][0]: [int(c[0].replace(",", "")) for c in r[1:]] for r in accounted["rows"][1:]}
    assert set(rows) == set(SOURCES)
    for source, (records, linked, unlinked) in rows.items():
        state = as_of_sql(source, f"date '{AS_OF}'")
        (known,) = _fetch(built[0], f"select count(*) as n from ({state}) st")
        assert records == known["n"] > 0, source
        assert linked == records and unlinked == 0, source  # everything applied was linked before the build


def test_no_identity_field_or_value_in_the_report(built, html):
    identity = [c.name for s in SOURCES.values() for c in s.columns if c.identity and c.name != "sex"]
    assert identity
    for name in {*identity, "record_id", "person_id"}:
        assert name not in html, name
    values = set()
    for source in SOURCES:
        for table in (f"events.{source}", f"quarantine.{source}_rows"):
            for row in _fetch(
                built[0],
                f"select record_id, source_person_key, forename_token, surname_token, forename_bloom, surname_bloom "
                f"from {table} limit 500",
            ):
                values |= {v for v in row.values() if v and len(v) >= 8}
    assert len(values) > 1000
    assert not [v for v in values if v in html]


def test_charts_leave_gaps_and_cover_their_values():
    assert nice_ticks(0, 0.42)[-1] >= 0.42 and nice_ticks(-92, 0)[0] <= -92
    assert nice_ticks(0, 0, integer=True) == [0, 1, 2, 3, 4, 5]
    assert line_chart("x", "t", ["a", "b"], [Series("s", [None, None])], y_label="y", x_label="x", fmt=str) is None
    svg = line_chart("x", "<t>", ["a", "b", "c"], [Series("s&", [1.0, None, 2.0])], y_label="y", x_label="x", fmt=str)
    assert "&lt;t&gt;" in svg and "s&amp;" in svg and svg.count("<circle") == 2 and "<line x1" in svg


DUCKDB_TYPES = {"VARCHAR": "varchar", "DATE": "date", "BIGINT": "bigint", "INTEGER": "integer", "BOOLEAN": "boolean"}
DUCKDB_TYPES |= {"DOUBLE": "double precision", "TIMESTAMP": "timestamp"}


@pytest.mark.postgres
def test_the_same_report_from_postgresql(built):
    """The tables the report reads, copied into PostgreSQL (the event store's and the linkage's own
    DDL for the ledger, events, quarantine and link events), give the same report: its SQL is portable."""
    from linkage.schema import DDL as LINKAGE_DDL
    from outcomes.eventstore.schema import ddl
    from outcomes.report import render_report
    from outcomes.report.read import read_report_data
    from tests.backends import fresh_postgres_url

    when = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    with connect(resolve_target(built[0]), read_only=True) as duck:
        expected = render_report(read_report_data(duck), when)
        with duck.transaction() as s:
            names = [
                f"{r['table_schema']}.{r['table_name']}"
                for r in s.fetch(
                    "select table_schema, table_name from information_schema.tables where table_type = 'BASE TABLE' "
                    "and (table_schema in ('published', 'quarantine', 'events') or table_name = 'link_events')"
                ).to_pylist()
            ]
            copies = {n: (s.fetch(f"describe {n}").to_pylist(), s.fetch(f"select * from {n}")) for n in names}
    with fresh_postgres_url() as url, connect(resolve_target(url)) as pg:
        with pg.transaction() as s:
            for statement in [*ddl(), *LINKAGE_DDL]:
                s.execute(statement)
            s.execute("create schema published")
            for name, (columns, rows) in copies.items():
                if name.startswith("published."):
                    cols = ", ".join(f"{c['column_name']} {DUCKDB_TYPES[c['column_type']]}" for c in columns)
                    s.execute(f"create table {name} ({cols})")
                s.insert(name, rows)
        assert render_report(read_report_data(pg), when) == expected.replace("<dd>DuckDB</dd>", "<dd>PostgreSQL</dd>")
