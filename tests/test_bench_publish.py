"""The pure parts of bench/publish.py (the measurement itself is a benchmark, run on purpose)."""

from __future__ import annotations

from tests.conftest import bench_module


def test_the_disclosure_seconds_are_read_from_the_first_line_of_its_report():
    publish = bench_module("publish.py", "bench_publish")
    line = "disclosure: 2,647,629 linked cells, 968 components with small counts, 1,022 integer programs, 54.3 s"
    assert publish.disclosure_seconds([line, "  solutions: 440 solved, 582 reused from the last publish"]) == 54.3
    assert publish.disclosure_seconds([]) == 0.0


def test_the_step_code_formats_for_every_step():
    publish = bench_module("publish.py", "bench_publish")
    for step in ("earlier build", "build", "publish", "publish full"):
        code = publish.STEP.format(
            target="/w.duckdb", step=step, work="/w", profile="", earlier_as_of=publish.EARLIER_AS_OF
        )
        compile(code, "<step>", "exec")
        assert "'/w.duckdb'" in code
