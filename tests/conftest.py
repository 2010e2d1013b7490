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


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")
