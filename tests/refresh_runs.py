"""Running the refresh DAG in tests: an isolated Airflow home, one DAG run per month.

`dag.test()` returns normally even when the run failed, so callers assert the run state and
each task's state (`MonthRun`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

DAGS = Path(__file__).resolve().parents[1] / "dags"


@contextmanager
def airflow_home(home: Path, extra: dict[str, str] | None = None):
    """AIRFLOW_HOME on SQLite (or `extra`'s database), migrated; the environment restored after."""
    env = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        **(extra or {}),
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True, env=os.environ)
    try:
        yield home
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@dataclass
class MonthRun:
    state: str
    tasks: dict[str, str]


def run_month(dag, day: str, conf: dict, **kwargs) -> MonthRun:
    """One run of `dag` on `day` (YYYY-MM-DD) at 06:00 London, as the monthly schedule would start it."""
    import pendulum

    y, m, d = map(int, day.split("-"))
    run = dag.test(logical_date=pendulum.datetime(y, m, d, 6, tz="Europe/London"), run_conf=conf, **kwargs)
    return MonthRun(str(run.state), {ti.task_id: str(ti.state) for ti in run.get_task_instances()})


def published(reports: Path, as_of: str) -> dict[str, str]:
    """Table -> sha256 of what the run of `as_of` published."""
    tables = json.loads((reports / "publish" / f"{as_of}.json").read_text())["tables"]
    return {t: v["sha256"] for t, v in tables.items()}


def built(reports: Path, as_of: str) -> dict:
    return json.loads((reports / "build" / f"{as_of}.json").read_text())
