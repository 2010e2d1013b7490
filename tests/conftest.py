"""Shared fixtures: one small synthetic population per test session."""

from __future__ import annotations

import fcntl
import importlib.util
import os
import pickle
import shutil
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest

from outcomes.synth.generator import SynthConfig, synthesise

SMALL = SynthConfig(persons=4_000, seed=7, start="2024-04", months=12)

BENCH = Path(__file__).resolve().parent.parent / "bench"


def bench_module(filename: str, name: str):
    """A script of bench/ imported as a module, to test its pure parts (the measurement is run on purpose)."""
    sys.path.insert(0, str(BENCH))  # the benchmarks import their sibling _measure
    try:
        spec = importlib.util.spec_from_file_location(name, BENCH / filename)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCH))


@pytest.fixture(scope="session")
def small_population(tmp_path_factory) -> Path:
    """Deliveries and truth of a 4,000-person population over 12 months."""
    out = tmp_path_factory.mktemp("synth")
    synthesise(SMALL, out)
    return out


@pytest.fixture(scope="session")
def clean_population(tmp_path_factory) -> Path:
    """The same population with no identifier errors at all (noise 0)."""
    out = tmp_path_factory.mktemp("synth_clean")
    synthesise(SynthConfig(persons=2_000, seed=7, start="2024-04", months=12, noise=0.0), out)
    return out


@pytest.fixture(scope="session", autouse=True)
def _dbt_parse_cache(tmp_path_factory):
    """dbt's parsed project is kept per warehouse (outcomes/marts/dbt.py): the session's many
    warehouses keep theirs in the session's folder, not the user's cache."""
    previous = os.environ.get("OUTCOMES_DBT_PARSE_CACHE")
    os.environ["OUTCOMES_DBT_PARSE_CACHE"] = str(tmp_path_factory.mktemp("dbt_parse"))
    yield
    if previous is None:
        os.environ.pop("OUTCOMES_DBT_PARSE_CACHE", None)
    else:
        os.environ["OUTCOMES_DBT_PARSE_CACHE"] = previous


# The schedule (`make test`: pytest -n 2 --dist loadfile, with --no-loadscope-reorder in pyproject's
# addopts): a file runs whole on one worker, and the workers take files in collection order. By
# default xdist would start with the files of most tests — many quick ones — and leave the few long
# end-to-end files (Airflow deployments, DAG runs) to the end, one worker running alone for minutes.
# So the costliest files come first (longest first: the other worker fills in with the short ones),
# in the order of their measured time (summed --durations of a CI run; README.md, "Set-up");
# every other file follows in its usual order. The report warehouse's readers sit together, so that
# one worker, which builds it once, is likely to run them all.
COSTLIEST_FIRST = (
    "test_ingest.py",
    "test_link_as_of.py",
    "test_marts.py",
    "test_linkage.py",
    "test_deployment_runs.py",
    "test_linkage_spark.py",
    "test_marts_oracle.py",
    "test_dags.py",
    "test_gate_alerts.py",
    "test_concurrent_ingest.py",
    "test_marts_linkage_error.py",
    "test_guides.py",
    "test_report.py",
    "test_data_docs.py",
    "test_report_browser.py",
    "test_ingest_worker.py",
    "test_linkage_incremental.py",
    "test_no_silent_loss.py",
    "test_linkage_errormodel.py",
    "test_ingest_properties.py",
    "test_validation.py",
)


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(COSTLIEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: a file's tests keep their order


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@contextmanager
def _session_lock(name: str, tmp_path_factory):
    """An exclusive lock shared by the session's xdist workers (a file in their common temp folder)."""
    path = tmp_path_factory.getbasetemp().parent / f"{name}.lock"
    with path.open("w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def built_once(name: str, tmp_path_factory, build):
    """(folder, value): `build(folder)` run once per test session, by whichever xdist worker asks
    first, in the workers' common temp folder; each worker gets its own copy of the folder (a DuckDB
    file is opened by one process at a time, and tests may change it) and the value `build`
    returned (pickled: paths in it should be relative to the folder)."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        folder = tmp_path_factory.mktemp(name) / "work"
        return folder, build(folder)
    shared = tmp_path_factory.getbasetemp().parent / name
    with _session_lock(name, tmp_path_factory):
        done = shared / "built.pickle"
        if not done.exists():
            value = build(shared / "work")
            done.write_bytes(pickle.dumps(value))
        value = pickle.loads(done.read_bytes())
    mine = tmp_path_factory.mktemp(name) / "work"
    shutil.copytree(shared / "work", mine)
    return mine, value


@pytest.fixture(scope="session")
def report_warehouse(tmp_path_factory) -> tuple[str, Path]:
    """(warehouse target, report path): a small warehouse with every outcome table and its report,
    shared by the report, browser, guides and data docs tests (tests/report_warehouse.py); built
    once per session (built_once)."""
    from tests.report_warehouse import build_report_warehouse

    def build(folder: Path) -> tuple[str, str]:
        return tuple(str(Path(p).relative_to(folder)) for p in build_report_warehouse(folder))

    folder, (target, report) = built_once("report_warehouse", tmp_path_factory, build)
    return str(folder / target), folder / report


@pytest.fixture(scope="session")
def linked_small_population(small_population, tmp_path_factory):
    """(folder, LinkResult): the 4,000-person population ingested and linked with its ground truth
    into folder / "w.duckdb" (archive beside it); built once per session (built_once), each caller
    gets its own copy (tests/test_linkage.py reads it, tests/test_marts_linkage_error.py builds on it)."""
    from linkage.run import link
    from outcomes.eventstore import connect
    from outcomes.ingest import Ingestor
    from outcomes.warehouse import resolve_target

    def build(folder: Path):
        with connect(resolve_target(str(folder / "w.duckdb"))) as backend:
            Ingestor(backend, folder / "archive").ingest(small_population / "landing")
            return link(backend, truth=small_population / "truth")

    return built_once("linked_small_population", tmp_path_factory, build)
