"""Records applied are never left out of the outcome tables without a word: `outcomes build`
refuses while applied records are missing from the spine as of its date, naming the count, or
links them first with --link-first. And the long steps show progress on a terminal only."""

from __future__ import annotations

import datetime as dt
import io
import re
import shutil

import pytest
from rich.console import Console
from typer.testing import CliRunner

from outcomes import cli
from outcomes.synth.generator import SynthConfig, synthesise
from tests.deliveries import copy_until

runner = CliRunner()


@pytest.fixture(scope="module")
def population(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    synthesise(SynthConfig(persons=300, seed=11, start="2024-01", months=3), out)
    return out


def invoke(*args: str):
    return runner.invoke(cli.app, list(args))


def test_build_without_link_fails_naming_the_unlinked_count_then_link_first_builds(population, tmp_path, monkeypatch):
    monkeypatch.setenv("CI", "true")
    (tmp_path / "w").mkdir()  # the CLI refuses a warehouse in a folder that does not exist
    w = str(tmp_path / "w" / "outcomes.duckdb")
    landing = copy_until(population / "landing", tmp_path / "landing", "20240131")
    assert invoke("ingest", "--landing", str(landing), "--warehouse", w).exit_code == 0
    first = invoke("link", "--warehouse", w)
    assert first.exit_code == 0, first.output

    copy_until(population / "landing", landing, "20240229")
    assert invoke("ingest", "--landing", str(landing), "--warehouse", w).exit_code == 0
    refused = invoke("build", "--warehouse", w)
    assert refused.exit_code == 2
    message = refused.output.strip().splitlines()[-1]
    m = re.search(r"outcomes build: ([\d,]+) applied records are not in the person spine as of 2024-02-29", message)
    assert m, message
    named = int(m[1].replace(",", ""))
    assert "outcomes link" in message and "--link-first" in message
    # linkage counts the records it has not linked yet by its own route (the as-of records against
    # the spine's record ids): the number the refusal named
    linked = invoke("link", "--as-of", "2024-02-29", "--warehouse", w)
    assert linked.exit_code == 0, linked.output
    assert f": {named:,} new records" in linked.output and named > 0

    copy_until(population / "landing", landing, "20240331")
    assert invoke("ingest", "--landing", str(landing), "--warehouse", w).exit_code == 0
    assert invoke("build", "--as-of", "2024-03-31", "--warehouse", w).exit_code == 2
    built = invoke("build", "--as-of", "2024-03-31", "--link-first", "--warehouse", w)
    assert built.exit_code == 0, built.output
    assert "build as of 2024-03-31" in built.output

    from outcomes.eventstore import connect
    from outcomes.marts.build import unlinked_records
    from outcomes.warehouse import resolve_target

    with connect(resolve_target(w)) as backend:
        assert unlinked_records(backend, dt.date(2024, 3, 31)) == {}
        with backend.transaction() as s:
            runs = s.fetch("select as_of from linkage.runs order by run_id").to_pylist()
    assert [str(r["as_of"]) for r in runs] == ["2024-01-31", "2024-02-29", "2024-03-31"]


@pytest.mark.parametrize("ci", ["true", ""])
def test_link_progress_on_a_terminal_only(population, tmp_path, monkeypatch, ci):
    monkeypatch.setenv("CI", ci)
    screen = io.StringIO()
    monkeypatch.setattr(cli, "err", Console(file=screen, force_terminal=True, width=100))
    (tmp_path / "w").mkdir()  # the CLI refuses a warehouse in a folder that does not exist
    w = str(tmp_path / "w" / "outcomes.duckdb")
    landing = shutil.copytree(population / "landing", tmp_path / "landing")
    assert invoke("ingest", "--landing", str(landing), "--warehouse", w).exit_code == 0
    result = invoke("link", "--warehouse", w)
    assert result.exit_code == 0, result.output
    if ci:
        assert screen.getvalue() == ""
    else:
        # the bar starts at the first stage and ends at the last (rich redraws at most 10 times a second)
        assert "linking: load" in screen.getvalue() and "linking: done" in screen.getvalue()
