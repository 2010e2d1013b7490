"""dbt's child environment (outcomes/marts/dbt.py)."""

from __future__ import annotations

from outcomes.marts.dbt import dbt_env
from outcomes.warehouse import resolve_target


def test_dbt_keeps_its_compiled_modules_in_a_private_folder_when_bytecode_is_not_written(tmp_path, monkeypatch):
    monkeypatch.setenv("OUTCOMES_DBT_PARSE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    monkeypatch.delenv("PYTHONPYCACHEPREFIX", raising=False)
    env = dbt_env(resolve_target(str(tmp_path / "w.duckdb")), tmp_path)
    assert "PYTHONDONTWRITEBYTECODE" not in env
    assert env["PYTHONPYCACHEPREFIX"] == str(tmp_path / "cache" / "pycache")
    assert (tmp_path / "cache" / "pycache").is_dir()


def test_dbt_leaves_bytecode_as_the_environment_has_it_otherwise(tmp_path, monkeypatch):
    monkeypatch.setenv("OUTCOMES_DBT_PARSE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("PYTHONDONTWRITEBYTECODE", raising=False)
    monkeypatch.delenv("PYTHONPYCACHEPREFIX", raising=False)
    env = dbt_env(resolve_target(str(tmp_path / "w.duckdb")), tmp_path)
    assert "PYTHONPYCACHEPREFIX" not in env
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    monkeypatch.setenv("PYTHONPYCACHEPREFIX", str(tmp_path / "theirs"))
    env = dbt_env(resolve_target(str(tmp_path / "w.duckdb")), tmp_path)
    assert env["PYTHONDONTWRITEBYTECODE"] == "1" and env["PYTHONPYCACHEPREFIX"] == str(tmp_path / "theirs")
