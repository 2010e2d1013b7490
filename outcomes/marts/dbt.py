"""Running dbt on the project against a warehouse target.

dbt runs in a child process: its profile is read from the environment (dbt_project/profiles.yml),
so each run gets its own target and its own target/log folders. The knowledge dates reach the
project through the environment too (`OUTCOMES_AS_OF`, `OUTCOMES_PREVIOUS_AS_OF`, read by
macros/as_of.sql when a model runs), not as `--vars`: dbt re-parses the whole project whenever its
vars change, and a build's date changes every month. The parsed project (dbt's
partial_parse.msgpack) is kept between runs per warehouse and project folder, in a private cache
folder, and copied into each run's own target folder: parallel runs never write one file, and dbt
itself checks the copy against the project's files, vars, profile and version before using it.
Beside it the child keeps the parsed project as an object (a pickled Manifest, keyed by what the
parse reads: outcomes/marts/dbt_child.py) and hands it to dbt, which then parses nothing.
The child is outcomes/marts/dbt_child.py (dbt's programmatic runner): it writes the run results the
build reads, so dbt need not write its JSON artifacts when the run's folder is thrown away.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from outcomes.warehouse.target import Target, WarehouseError

PROJECT_DIR = Path(__file__).resolve().parents[2] / "dbt_project"
PARTIAL_PARSE = "partial_parse.msgpack"


def parse_cache(target: Target) -> Path | None:
    """Where dbt's parsed project is kept between runs against `target` (`OUTCOMES_DBT_PARSE_CACHE`,
    else ~/.cache/outcomes/dbt-parse), one file per warehouse and project folder; None when the
    folder cannot be made (each run then parses the whole project)."""
    folder = Path(
        os.environ.get("OUTCOMES_DBT_PARSE_CACHE")
        or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "outcomes" / "dbt-parse"
    )
    if target.is_url:
        from sqlalchemy.engine import make_url

        where = make_url(target.value).render_as_string(hide_password=True)
    else:
        where = str(target.path.resolve())
    key = hashlib.sha256(f"{PROJECT_DIR}\n{where}".encode()).hexdigest()[:24]
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError:
        return None
    return folder / f"{key}.msgpack"


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
    pycache = bytecode_cache()
    if pycache is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(pycache)
    return env


def bytecode_cache() -> Path | None:
    """Where dbt's child process keeps its compiled modules when the environment forbids writing
    them beside the sources (PYTHONDONTWRITEBYTECODE): a private folder beside the parse cache, so
    that dbt does not compile its ~1,400 modules again at every run (about 2 s of CPU per run); None
    when bytecode may be written as usual or the folder cannot be made."""
    if not os.environ.get("PYTHONDONTWRITEBYTECODE") or os.environ.get("PYTHONPYCACHEPREFIX"):
        return None
    folder = Path(
        os.environ.get("OUTCOMES_DBT_PARSE_CACHE")
        or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "outcomes" / "dbt-parse"
    )
    try:
        (folder / "pycache").mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError:
        return None
    return folder / "pycache"


def run_dbt(
    target: Target,
    args: list[str],
    as_of: str,
    work_dir: Path | None = None,
    on_line: Callable[[str], None] | None = None,
    previous_as_of: str | None = None,
    phases: dict | None = None,
) -> list[dict]:
    """Run `dbt <args>` as of `as_of` (and, for an incremental build, since `previous_as_of`); return
    dbt's run results; raise with the failures. `phases`, when given, receives where dbt's process
    spent its time (outcomes.marts.dbt_child: its import, then the command)."""
    with tempfile.TemporaryDirectory(prefix="outcomes-dbt-") as tmp:
        work = Path(work_dir or tmp)
        results_file = Path(tmp) / "outcomes_results.json"
        # A script, not a module of this package, so the child imports dbt and nothing else; -P keeps
        # the script's folder (which holds this dbt.py) off sys.path.
        command = [sys.executable, "-P", str(Path(__file__).with_name("dbt_child.py")), str(results_file)]
        command += [*args, "--project-dir", str(PROJECT_DIR)]
        env = dbt_env(target, work)
        if work_dir is None:
            # The run's folder is deleted with its log and artifacts: dbt need not format and write
            # a debug line for every statement (about a tenth of a build's CPU), nor serialise the
            # whole project to manifest.json (twice) and semantic_manifest.json. What fails is in
            # its output and in the child's results.
            env.setdefault("DBT_LOG_LEVEL_FILE", "none")
            command.append("--no-write-json")
        env["OUTCOMES_AS_OF"] = as_of
        env["OUTCOMES_PREVIOUS_AS_OF"] = previous_as_of or ""
        cache = parse_cache(target)
        if cache is not None:  # dbt's parsed project kept as an object (outcomes/marts/dbt_child.py)
            env["OUTCOMES_DBT_MANIFEST"] = str(cache.with_suffix(".manifest"))
        parsed = work / "target" / PARTIAL_PARSE
        if cache is not None and cache.exists() and not parsed.exists():
            parsed.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(cache, parsed)
        proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        lines = []
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if on_line:
                on_line(line.rstrip("\n"))
        status = proc.wait()
        if cache is not None and parsed.exists():
            kept = cache.with_suffix(f".{os.getpid()}.tmp")
            shutil.copyfile(parsed, kept)
            os.replace(kept, cache)
        outcome = json.loads(results_file.read_text()) if results_file.exists() else {}
        results = outcome.get("results", [])
        if phases is not None:
            phases.update(outcome.get("phases", {}))
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
