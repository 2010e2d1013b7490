"""Running dbt on the project against a warehouse target.

dbt runs in a child process: its profile is read from the environment (dbt_project/profiles.yml),
so each run gets its own target and its own target/log folders, and parallel builds of different
warehouses never share dbt's partial-parse state.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from outcomes.warehouse.target import Target, WarehouseError

PROJECT_DIR = Path(__file__).resolve().parents[2] / "dbt_project"


def dbt_env(target: Target, work_dir: Path) -> dict[str, str]:
    """Environment of a dbt run against `target` (profiles.yml reads these)."""
    env = dict(os.environ)
    env.update(
        DBT_PROFILES_DIR=str(PROJECT_DIR),
        DBT_TARGET_PATH=str(work_dir / "target"),
        DBT_LOG_PATH=str(work_dir / "logs"),
        DBT_SEND_ANONYMOUS_USAGE_STATS="false",
        DBT_USE_COLORS="false",
    )
    if target.is_url:
        from sqlalchemy.engine import make_url

        url = make_url(target.value)
        if not url.drivername.startswith("postgresql"):
            raise WarehouseError(f"dbt builds run on DuckDB or PostgreSQL, not {url.drivername}")
        env.update(
            OUTCOMES_DBT_TARGET="postgres",
            OUTCOMES_PG_HOST=url.host or "127.0.0.1",
            OUTCOMES_PG_PORT=str(url.port or 5432),
            OUTCOMES_PG_USER=url.username or "postgres",
            OUTCOMES_PG_PASSWORD=url.password or "",
            OUTCOMES_PG_DBNAME=url.database or "postgres",
        )
    else:
        env.update(OUTCOMES_DBT_TARGET="duckdb", OUTCOMES_DUCKDB_PATH=str(target.path.resolve()))
    return env


def run_dbt(
    target: Target,
    args: list[str],
    as_of: str,
    work_dir: Path | None = None,
    on_line: Callable[[str], None] | None = None,
    extra_vars: dict[str, str] | None = None,
) -> list[dict]:
    """Run `dbt <args> --vars {as_of: ..., **extra_vars}`; return dbt's run results; raise with the failures."""
    with tempfile.TemporaryDirectory(prefix="outcomes-dbt-") as tmp:
        work = Path(work_dir or tmp)
        dbt = Path(sys.executable).with_name("dbt")
        dbt_vars = json.dumps({"as_of": as_of, **(extra_vars or {})})
        command = [str(dbt), *args, "--project-dir", str(PROJECT_DIR), "--vars", dbt_vars]
        proc = subprocess.Popen(
            command, env=dbt_env(target, work), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        lines = []
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if on_line:
                on_line(line.rstrip("\n"))
        status = proc.wait()
        results_file = work / "target" / "run_results.json"
        results = json.loads(results_file.read_text())["results"] if results_file.exists() else []
        if status != 0:
            failed = [r for r in results if r.get("status") in ("error", "fail", "runtime error")]
            detail = "; ".join(f"{r['unique_id']}: {_brief(r.get('message'))}" for r in failed[:5])
            if not detail:
                detail = next((x.strip() for x in reversed(lines) if "Error" in x), "see dbt output")
            raise WarehouseError(f"dbt {args[0]} failed ({len(failed)} failing): {detail}")
        return results


def _brief(message: str | None) -> str:
    """dbt's failure message on one line: its last lines, where the cause is."""
    lines = [x.strip() for x in (message or "").splitlines() if x.strip()]
    return " ".join(lines[-2:])[:300]
