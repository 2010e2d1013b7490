"""The data documentation beside the report: dbt's static docs site (every model, test, column and
lineage, `dbt docs generate --static`) and great-expectations' data docs of the delivery suites
(every row-level rule of extracts.md §4), written to `<reports>/data-docs/`, and the report
section that links them with relative links.

Neither holds a value of any row: dbt's site holds the project's code, column names and types
and the catalog's table sizes; the GX site renders the four expectation suites (rules, code
lists, patterns), not validation results, so no delivered value (token, Bloom filter, date of
birth, postcode) can reach it.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from markupsafe import Markup, escape

from outcomes.report.views import Section

DATA_DOCS = "data-docs"
DBT_SITE = f"{DATA_DOCS}/dbt/index.html"
GX_SITE = f"{DATA_DOCS}/great-expectations/index.html"
TITLES = {
    DBT_SITE: "dbt documentation: every model, column, test and the lineage from the event store to "
    "the published tables",
    GX_SITE: "great-expectations data docs: the row-level rules every delivery is checked against",
}


def write_dbt_docs(target, as_of: str, out: Path) -> Path:
    """`dbt docs generate --static` over the warehouse as of `as_of`; its one-file site at `out`."""
    from outcomes.marts.dbt import run_dbt

    with tempfile.TemporaryDirectory(prefix="outcomes-dbt-docs-") as tmp:
        run_dbt(target, ["docs", "generate", "--static"], as_of, work_dir=Path(tmp))
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(Path(tmp) / "target" / "static_index.html", out)
        # The catalog (tables, columns, types; no values) as well, for tools and for checking.
        shutil.copyfile(Path(tmp) / "target" / "catalog.json", out.with_name("catalog.json"))
    return out


def write_gx_docs(site: Path) -> Path:
    """GX data docs of the four delivery suites (expectations/<source>.json) in folder `site`."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import DataContextConfig, InMemoryStoreBackendDefaults

    from outcomes.contract import SOURCES
    from outcomes.validation.run import _quiet, load_suite

    with _quiet():
        context = gx.get_context(
            mode="ephemeral",
            project_config=DataContextConfig(
                store_backend_defaults=InMemoryStoreBackendDefaults(), analytics_enabled=False
            ),
        )
        context.add_data_docs_site(
            "outcomes",
            {
                "class_name": "SiteBuilder",
                "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(site)},
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            },
        )
        for source in SOURCES:
            context.suites.add(load_suite(source)[0])
        context.build_data_docs(site_names=["outcomes"])
    return site / "index.html"


def write_data_docs(target, as_of: str, reports: Path) -> dict[str, Path]:
    """Both sites under `reports`/data-docs (an absolute folder: GX's store refuses a relative one); returns each
    site's index by its link from the report."""
    return {
        DBT_SITE: write_dbt_docs(target, as_of, reports / DBT_SITE),
        GX_SITE: write_gx_docs((reports / GX_SITE).parent),
    }


def data_docs_links(report: Path) -> list[str]:
    """The relative links, from the report's folder, of the data docs sites found beside it."""
    return [link for link in (DBT_SITE, GX_SITE) if (Path(report).parent / link).is_file()]


def data_docs_section(links: list[str]) -> Section:
    """The report's section linking the data docs (relative links, opened from the report's folder)."""
    items = [Markup('<a href="{}">{}</a>').format(link, TITLES[link]) for link in links]
    return Section(
        "data-docs",
        "Data documentation",
        DATA_DOCS,
        [
            *items,
            Markup(
                "Written beside this report (folder <code>{}</code>) by the <code>outcomes_data_docs</code> DAG "
                "after each publication. They hold definitions and rules, never a row's value. Unlike this "
                "report, they may load their own scripts and fonts from the web."
            ).format(escape(DATA_DOCS)),
        ],
    )


def publish_data_docs(warehouse: str | None, reports: str) -> str:
    """The DAG's task: both sites as of the published tables' knowledge date, then that date's report
    (`outcomes_report_<as_of>.html`, if published) written again to link them; returns the folder."""
    from outcomes.eventstore import connect
    from outcomes.report.render import write_report
    from outcomes.warehouse import resolve_target
    from outcomes.warehouse.target import WarehouseError

    folder = Path(reports).resolve()  # the DAG's default is relative; GX's filesystem store refuses that

    target = resolve_target(warehouse)
    with connect(target, read_only=True) as backend, backend.transaction() as s:
        published = s.scalar(
            "select count(*) from information_schema.tables "
            "where table_schema = 'published' and table_name = 'successful_completion'"
        )
        as_of = s.scalar("select max(as_of) from published.successful_completion") if published else None
    if as_of is None:
        raise WarehouseError("nothing published yet: run `outcomes publish` before the data docs")
    write_data_docs(target, str(as_of), folder)
    report = folder / f"outcomes_report_{as_of}.html"
    if report.is_file():
        with connect(target, read_only=True) as backend:
            write_report(backend, report)
    return str(folder / DATA_DOCS)
