"""The pure parts of bench/build.py: the refresh's totals and the step code it runs in a child.

The measurement itself is a benchmark, run on purpose (docs/scale.md), never a test.
"""

from __future__ import annotations

import pytest

from tests.conftest import bench_module


@pytest.fixture(scope="module")
def build():
    return bench_module("build.py", "bench_build")


def test_the_whole_refresh_counts_ingest_link_build_and_publish(build):
    steps = [*build.FIRST, *build.MONTH, "same month, full"]
    by = {label: {"wall_s": float(2**i), "cpu_s": float(3**i)} for i, label in enumerate(steps)}
    first, month = build.refresh_totals(by)
    assert first == 1 + 2 + 4 + 8  # ingest, link, full build and publish of the history
    assert month == 16 + 32 + 64 + 128  # the month's four; the reference full build is not in it
    first_cpu, month_cpu = build.refresh_totals(by, "cpu_s")
    assert (first_cpu, month_cpu) == (1 + 3 + 9 + 27, 81 + 243 + 729 + 2187)


def test_a_missing_publish_step_is_an_error(build):
    by = {label: {"wall_s": 1.0} for label in (*build.FIRST, *build.MONTH) if "publish" not in label}
    with pytest.raises(KeyError):
        build.refresh_totals(by)


@pytest.mark.parametrize("step", ["ingest", "link", "publish", "build", "full build", "earlier build"])
def test_every_step_is_python_with_its_budgets(build, step):
    code = build.STEP.format(
        target="/tmp/w.duckdb",
        step=step,
        archive="/tmp/archive",
        landing="/tmp/landing",
        ingest_memory="1GB",
        memory_limit="2GB",
        earlier_as_of=build.EARLIER_AS_OF,
    )
    compile(code, f"<{step}>", "exec")
    assert "set memory_limit = '1GB'" in code
    assert "link(backend, memory_limit='2GB')" in code


def test_every_name_a_step_imports_exists(build):
    """The step code is run in a child, as text: a renamed function of the product (publish,
    gate_reasons, write_report, link...) must fail here, not an hour into a benchmark."""
    import ast
    import importlib

    code = build.STEP.format(
        target="w.duckdb",
        step="publish",
        archive="a",
        landing="l",
        ingest_memory="1GB",
        memory_limit="2GB",
        earlier_as_of=build.EARLIER_AS_OF,
    )
    imported = [
        (node.module, alias.name)
        for node in ast.walk(ast.parse(code))
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    ]
    assert ("outcomes.marts", "publish") in imported and ("linkage.run", "link") in imported
    for module, name in imported:
        assert hasattr(importlib.import_module(module), name), f"{module}.{name}"
