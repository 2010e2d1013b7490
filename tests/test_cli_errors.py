"""A wrong `--warehouse` or a wrong manifest ends in one clear line on stderr (exit 2), never a
traceback, and nothing is created on the way."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from outcomes.cli import app

runner = CliRunner()
COMMANDS = [["query", "select 1"], ["link"], ["build"], ["report", "--out", "r.html"]]


def _one_line(result) -> str:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output
    return lines[0]


@pytest.mark.parametrize(
    ("target", "says"),
    [
        ("mysql://u@h/db", "mysql://…: unsupported"),
        ("sqlite:///x.db", "sqlite://…: unsupported"),
        ("postgres://::bad", "not a valid URL (its port is not a number)"),
        ("postgresql+psycopg://u@h:abc/db", "its port is not a number"),
        ("postgresql+psycopg://u@127.0.0.1:5432/", "names no database"),
    ],
)
@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_bad_urls(command, target, says, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    line = _one_line(runner.invoke(app, [*command, "--warehouse", target]))
    assert says in line and line.startswith(f"outcomes {command[0]}: ")
    assert not any(tmp_path.iterdir())


def test_bad_paths(tmp_path):
    a_file = tmp_path / "plain.txt"
    a_file.write_text("not a database")
    parquet = tmp_path / "treatment_20240131_01.parquet"
    parquet.write_bytes(b"PAR1" + b"\0" * 64)
    landing = tmp_path / "landing"
    landing.mkdir()
    cases = {
        str(a_file / "outcomes.duckdb"): f"{a_file} is a file, not a folder",
        str(parquet): "is not a DuckDB warehouse file",
        str(tmp_path): "is a folder: give the DuckDB file",
        str(tmp_path / "missing" / "deeper" / "outcomes.duckdb"): "does not exist (create it, or pass --create-folder)",
    }
    for target, says in cases.items():
        ingest = _one_line(runner.invoke(app, ["ingest", "--landing", str(landing), "--warehouse", target]))
        assert says in ingest, ingest
    assert not (tmp_path / "missing").exists()
    for command in COMMANDS:
        line = _one_line(runner.invoke(app, [*command, "--warehouse", str(tmp_path / "none" / "w.duckdb")]))
        assert "no warehouse at" in line
    assert not (tmp_path / "none").exists()
    assert parquet.read_bytes() == b"PAR1" + b"\0" * 64
    made = runner.invoke(
        app, ["ingest", "--landing", str(landing), "--create-folder", "--warehouse", str(tmp_path / "new" / "w.duckdb")]
    )
    assert made.exit_code == 0, made.output
    assert (tmp_path / "new" / "w.duckdb").is_file()


def test_an_empty_file_another_command_is_making_is_left_to_its_lock(tmp_path):
    """Two first ingests at once: the loser can see the file DuckDB has just made, locked and still
    empty. That is not "not a DuckDB file": DuckDB's own open reports the lock. An empty file no
    one holds is still refused."""
    import subprocess
    import sys

    from outcomes.warehouse.target import WarehouseError, checked_target

    path = tmp_path / "outcomes.duckdb"
    path.write_bytes(b"")
    with pytest.raises(WarehouseError, match="is not a DuckDB warehouse file"):
        checked_target(str(path), creating=True)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import fcntl, sys; f = open({str(path)!r}, 'rb+'); fcntl.lockf(f, fcntl.LOCK_EX); "
            "print('held', flush=True); sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        assert checked_target(str(path), creating=True).path == path
    finally:
        holder.stdin.close()
        holder.wait(timeout=10)
