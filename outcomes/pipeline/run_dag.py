"""Run the monthly refresh DAG once, for real, on the embedded default (Airflow on SQLite).

    python -m outcomes.pipeline.run_dag --landing data/synthetic/landing

`dag.test()` returns normally even when a task failed, so the run's state decides the exit
status here.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--landing", default="data/synthetic/landing")
    parser.add_argument("--warehouse", default=os.environ.get("OUTCOMES_WAREHOUSE", "warehouse/outcomes.duckdb"))
    parser.add_argument("--reports", default="warehouse/reports")
    parser.add_argument("--truth", default="", help="ground truth folder of a synthetic population")
    parser.add_argument("--dag", default="outcomes_refresh")
    parser.add_argument(
        "--logical-date",
        default=None,
        help="the run's date, YYYY-MM-DD (default: the 5th after the latest delivery in --landing, "
        "when the monthly schedule would run for it)",
    )
    args = parser.parse_args(argv)

    os.environ.setdefault("AIRFLOW_HOME", str(Path("airflow_home").resolve()))
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(REPO / "dags"))
    migrate = subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], capture_output=True, text=True)
    if migrate.returncode != 0:
        print(f"airflow db migrate failed: {migrate.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
        return 1

    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    if bag.import_errors:
        print(f"DAG import errors: {bag.import_errors}", file=sys.stderr)
        return 1
    conf = {
        "landing": str(Path(args.landing).resolve()),
        "warehouse": args.warehouse,
        "reports": args.reports,
        "truth": str(Path(args.truth).resolve()) if args.truth else "",
    }
    logical = run_date(Path(args.landing), args.logical_date)
    run = bag.get_dag(args.dag).test(logical_date=logical, run_conf=conf)
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    summary = json.dumps({"dag_id": args.dag, "run_id": run.run_id, "state": str(run.state), "tasks": states}, indent=2)
    Path(args.reports).mkdir(parents=True, exist_ok=True)
    (Path(args.reports) / "last_dag_run.json").write_text(summary + "\n")
    print(summary)
    if run.state != "success":
        print(f"{args.dag} did not succeed: {states}", file=sys.stderr)
        return 1
    return 0


def run_date(landing: Path, given: str | None):
    """06:00 London on `given`, else on the 5th of the month after the latest delivery landed."""
    import datetime as dt

    import pendulum

    from outcomes.ops.knowledge import knowledge_date

    if given:
        day = dt.date.fromisoformat(given)
    else:
        latest = knowledge_date(landing, dt.date.max)
        day = (latest.replace(day=1) + dt.timedelta(days=32)).replace(day=5)
    return pendulum.datetime(day.year, day.month, day.day, 6, tz="Europe/London")


if __name__ == "__main__":
    sys.exit(main())
