"""A real Airflow deployment made of processes, for the deployment tests: metadata on a fresh
PostgreSQL database, the API server (tasks report to its execution API), the scheduler with the
configured executor, the DAG processor, and any Celery workers. Everything started here is
stopped here, by process group id."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from tests.refresh_runs import DAGS

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)  # the group this test started (start_new_session)


@dataclass
class Deployment:
    home: Path
    metadata_url: str
    executor: str
    extra: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    processes: list[subprocess.Popen] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        env.update(
            AIRFLOW_HOME=str(self.home),
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
            AIRFLOW__CORE__DAGS_FOLDER=str(DAGS),
            AIRFLOW__CORE__EXECUTOR=self.executor,
            AIRFLOW__CORE__PARALLELISM="4",
            AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"http://127.0.0.1:{self.port}/execution/",
            AIRFLOW__CORE__AUTH_MANAGER="airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
            AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="True",
            AIRFLOW__API__PORT=str(self.port),
            AIRFLOW__API_AUTH__JWT_SECRET="outcomes-deployment-test",
            AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=self.metadata_url,
            # psycopg 3 is async as well; Airflow's default guess (asyncpg) is not installed
            AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC=self.metadata_url.replace("+psycopg:", "+psycopg_async:"),
            AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="5",
            AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC="2",
            PYTHONPATH=str(ROOT),
            **self.extra,
        )
        return env

    def airflow(self, *args: str, env: dict | None = None) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "airflow", *args], env=env or self.env, capture_output=True, text=True, cwd=ROOT
        )
        if done.returncode:
            said = (done.stderr.strip() + "\n" + done.stdout.strip())[-2000:]
            raise RuntimeError(f"airflow {' '.join(args)} failed: {said}")
        return done.stdout

    def start(self, name: str, *args: str, env: dict | None = None) -> subprocess.Popen:
        log = open(self.home / f"{name}.log", "w")  # noqa: SIM115 (closed with the process)
        proc = subprocess.Popen(
            [sys.executable, "-m", "airflow", *args],
            env=env or self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            start_new_session=True,  # its own process group: stopped with everything it forks
        )
        self.processes.append(proc)
        return proc

    def __enter__(self) -> Deployment:
        self.home.mkdir(parents=True, exist_ok=True)
        self.airflow("db", "migrate")
        self.start("api-server", "api-server", "--port", str(self.port), "--host", "127.0.0.1", "--workers", "1")
        self.start("scheduler", "scheduler")
        self.start("dag-processor", "dag-processor")
        self._wait_for_api()
        return self

    def __exit__(self, *exc) -> None:
        # By process group: a server's forked workers outlive their parent otherwise.
        for proc in reversed(self.processes):
            _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + 30
        for proc in self.processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(1, deadline - time.monotonic()))
        for proc in self.processes:
            _signal_group(proc, signal.SIGKILL)
            proc.wait()

    def _wait_for_api(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/api/v2/monitor/health", timeout=5):
                    return
            except OSError:
                time.sleep(2)
        raise TimeoutError(f"the API server did not answer within {timeout} s: {self.tail('api-server')}")

    def _check_alive(self) -> None:
        for proc in self.processes:
            if proc.poll() is not None:
                name = Path(proc.args[3] if len(proc.args) > 3 else "process").name
                raise RuntimeError(f"airflow {name} exited with {proc.returncode}: {self.tail(name)}")

    def tail(self, name: str, lines: int = 30) -> str:
        log = self.home / f"{name}.log"
        return "\n".join(log.read_text().splitlines()[-lines:]) if log.exists() else ""

    def backfill(self, dag_id: str, day: str, conf: dict, timeout: float = 900) -> str:
        """Backfill the scheduled run on `day` (YYYY-MM-DD: the window is that whole day) as operations
        would (`airflow backfill create`: the schedule's own data interval); wait for it; return its run_id.

        Unpausing makes the scheduler start the schedule's latest interval as well (catchup is off,
        but the latest one still runs); that run would wait days for deliveries that never come,
        so it is stopped: only the backfilled month runs here."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.airflow("dags", "unpause", dag_id)
                break
            except RuntimeError:
                if time.monotonic() > deadline:
                    raise
                self._check_alive()
                time.sleep(3)
        self.airflow(
            "backfill", "create", "--dag-id", dag_id, "--from-date", f"{day}T00:00:00+00:00",
            "--to-date", f"{day}T23:59:59+00:00",
            "--dag-run-conf", json.dumps(conf), "--reprocess-behavior", "completed",
        )  # fmt: skip
        while True:
            self._execute(
                "update dag_run set state = 'failed' where dag_id = :d and run_type = 'scheduled' "
                "and state in ('queued', 'running')",
                {"d": dag_id},
            )
            runs = self._query(
                "select run_id, state from dag_run where dag_id = :d and run_type = 'backfill' "
                "order by id desc limit 1",
                {"d": dag_id},
            )
            if runs and str(runs[0][1]) in ("success", "failed"):
                return runs[0][0]
            if time.monotonic() > deadline:
                states = self.task_states(runs[0][0]) if runs else {}
                raise TimeoutError(f"{dag_id} backfill of {day} still running after {timeout} s: {states}")
            self._check_alive()
            time.sleep(3)

    def _execute(self, sql: str, params: dict) -> None:
        import sqlalchemy as sa

        engine = sa.create_engine(self.metadata_url)
        try:
            with engine.begin() as con:
                con.execute(sa.text(sql), params)
        finally:
            engine.dispose()

    def _query(self, sql: str, params: dict) -> list:
        import sqlalchemy as sa

        engine = sa.create_engine(self.metadata_url)
        try:
            with engine.connect() as con:
                return list(con.execute(sa.text(sql), params))
        finally:
            engine.dispose()

    def run_state(self, dag_id: str, run_id: str) -> str:
        rows = self._query("select state from dag_run where dag_id = :d and run_id = :r", {"d": dag_id, "r": run_id})
        return str(rows[0][0]) if rows else "none"

    def task_states(self, run_id: str) -> dict[tuple[str, int], dict]:
        rows = self._query(
            "select task_id, map_index, state, hostname, queued_by_job_id, queue from task_instance where run_id = :r",
            {"r": run_id},
        )
        return {(r[0], r[1]): {"state": r[2], "hostname": r[3], "queued_by_job_id": r[4], "queue": r[5]} for r in rows}

    def scheduler_executor(self, job_id: int) -> str:
        rows = self._query("select job_type, executor_class from job where id = :j", {"j": job_id})
        return f"{rows[0][0]} {rows[0][1]}" if rows else ""
