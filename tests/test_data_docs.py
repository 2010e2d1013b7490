"""The data docs beside the report (outcomes.report.data_docs): dbt's static site and
great-expectations' data docs exist, the report links them relatively, and they hold no identity
value and no identity column outside the restricted schemas."""

from __future__ import annotations

import json
import re

from outcomes.contract import SOURCES
from outcomes.eventstore import connect
from outcomes.report import write_report
from outcomes.report.data_docs import DATA_DOCS, DBT_SITE, GX_SITE, publish_data_docs
from outcomes.warehouse import resolve_target
from tests.report_warehouse import AS_OF

IDENTITY = {c.name for s in SOURCES.values() for c in s.columns if c.identity and c.name != "sex"}


def _identity_values(target) -> set[str]:
    """Tokens, Bloom filters, record ids and person keys of the events and quarantined rows."""
    values = set()
    with connect(target, read_only=True) as backend, backend.transaction() as s:
        for source in SOURCES:
            for table in (f"events.{source}", f"quarantine.{source}_rows"):
                rows = s.fetch(
                    "select record_id, source_person_key, forename_token, surname_token, forename_bloom, "
                    f"surname_bloom from {table} limit 300"
                ).to_pylist()
                values |= {v for row in rows for v in row.values() if v and len(v) >= 8}
    return values


def test_data_docs_are_written_linked_and_hold_no_identity(report_warehouse, tmp_path, monkeypatch):
    """The DAG's task: both sites beside the published date's report, which is written again to link them.
    The reports folder given relative, as the DAG's default (warehouse/reports) is."""
    target = resolve_target(report_warehouse[0])
    report = tmp_path / f"outcomes_report_{AS_OF}.html"
    with connect(target, read_only=True) as backend:
        write_report(backend, report)
    assert 'href="data-docs/' not in report.read_text()
    monkeypatch.chdir(tmp_path.parent)
    assert publish_data_docs(report_warehouse[0], tmp_path.name) == str(tmp_path.resolve() / DATA_DOCS)
    sites = {link: tmp_path / link for link in (DBT_SITE, GX_SITE)}
    assert all(p.is_file() for p in sites.values())
    dbt_html = sites[DBT_SITE].read_text(encoding="utf-8")
    assert "published" in dbt_html and "successful_completion" in dbt_html
    gx_pages = sorted(sites[GX_SITE].parent.rglob("*.html"))
    assert {f"outcomes_extract_rows_{s}.html" for s in SOURCES} <= {p.name for p in gx_pages}

    # The report beside them links both, relatively, and only them besides its own anchors.
    links = [h for h in re.findall(r'href="([^"]*)"', report.read_text()) if not h.startswith("#")]
    assert links == [DBT_SITE, GX_SITE]
    assert all((report.parent / link).is_file() for link in links)

    # No identity value anywhere in either site.
    values = _identity_values(target)
    assert len(values) > 1000
    for page in [sites[DBT_SITE], *gx_pages]:
        text = page.read_text(encoding="utf-8")
        assert not [v for v in values if v in text], page
    # No identity column in the catalog of a table people outside the linkage team read.
    catalog = json.loads(sites[DBT_SITE].with_name("catalog.json").read_text())
    open_nodes = [n for n in catalog["nodes"].values() if n["metadata"]["schema"] in ("marts", "research", "published")]
    assert len(open_nodes) >= 20
    for node in open_nodes:
        assert not IDENTITY & {c.lower() for c in node["columns"]}, node["metadata"]["name"]
        assert not {"record_id", "person_id"} & {c.lower() for c in node["columns"]}, node["metadata"]["name"]
