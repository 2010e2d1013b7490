"""Shared fixtures: one small synthetic population per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from outcomes.synth.generator import SynthConfig, synthesise

SMALL = SynthConfig(persons=4_000, seed=7, start="2024-04", months=12)


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


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def report_warehouse(tmp_path_factory) -> tuple[str, Path]:
    """(warehouse target, report path): a small warehouse with every outcome table and its report,
    shared by the report, browser and guides tests (tests/report_warehouse.py)."""
    from tests.report_warehouse import build_report_warehouse

    return build_report_warehouse(tmp_path_factory.mktemp("report"))
