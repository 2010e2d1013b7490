"""The `outcomes` command: help, exit codes, and read-only queries."""

from __future__ import annotations

import subprocess
import sys

import duckdb
from typer.testing import CliRunner

from outcomes.cli import app

runner = CliRunner()


def test_console_script_lists_subcommands():
    result = subprocess.run([sys.executable, "-m", "outcomes", "--help"], capture_output=True, text=True, check=True)
    for command in ("synth", "pseudonymise", "query"):
        assert command in result.stdout


def test_synth_prints_summary_and_writes_deliveries(tmp_path):
    result = runner.invoke(app, ["synth", "--out", str(tmp_path), "--persons", "300", "--months", "3"])
    assert result.exit_code == 0, result.output
    assert "treatment rows delivered" in result.output
    assert len(list((tmp_path / "landing").glob("*.manifest.json"))) == 12


def test_synth_rejects_bad_options(tmp_path):
    result = runner.invoke(app, ["synth", "--out", str(tmp_path), "--start", "2024-13"])
    assert result.exit_code == 2 and "YYYY-MM" in result.output


def test_query_formats_and_read_only(tmp_path):
    db = tmp_path / "w.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute("create table t as select 1 as a, 'x' as b")
    ok = runner.invoke(app, ["query", "select * from t", "--format", "json", "--warehouse", str(db)])
    assert ok.exit_code == 0 and '"a": 1' in ok.output
    csv = runner.invoke(app, ["query", "select * from t", "--format", "csv", "--warehouse", str(db)])
    assert csv.exit_code == 0 and '"a","b"' in csv.output
    write = runner.invoke(app, ["query", "delete from t", "--warehouse", str(db)])
    assert write.exit_code == 2 and "read-only" in write.output.lower()
    two = runner.invoke(app, ["query", "select 1; select 2", "--warehouse", str(db)])
    assert two.exit_code == 2 and "exactly one" in two.output


def test_query_without_warehouse_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.delenv("OUTCOMES_WAREHOUSE", raising=False)
    result = runner.invoke(app, ["query", "select 1", "--warehouse", str(tmp_path / "none.duckdb")])
    assert result.exit_code == 2 and "no warehouse" in result.output
