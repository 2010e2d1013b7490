"""dbt's child process (outcomes/marts/dbt.py): `python outcomes/marts/dbt_child.py RESULTS ARGS...`
runs `dbt ARGS` through dbt's programmatic runner (dbtRunner) and writes to RESULTS the run results
the build reads (each node's id, status, time and message) and where the process's CPU went (dbt's
import; the command: loading the parsed project, then the nodes). dbt itself then need not write
its JSON artifacts (`--no-write-json`: manifest.json twice, semantic_manifest.json and
run_results.json, each a serialisation of the whole project) when nobody reads them.
Exit status as dbt's own: 0 success, 1 a node failed, 2 dbt could not run.
"""

from __future__ import annotations

import json
import resource
import sys
import time


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _value(status) -> str:
    return str(getattr(status, "value", status))


def main(argv: list[str]) -> int:
    out, args = argv[0], argv[1:]
    started = time.perf_counter()
    from dbt.cli.main import dbtRunner

    imported_cpu, imported = _cpu(), time.perf_counter()
    outcome = dbtRunner().invoke(args)
    results = []
    for r in getattr(outcome.result, "results", None) or []:
        results.append(
            {
                "unique_id": r.node.unique_id,
                "status": _value(r.status),
                "execution_time": r.execution_time,
                "message": r.message,
            }
        )
    phases = {
        "import_cpu_s": round(imported_cpu, 3),
        "import_wall_s": round(imported - started, 3),
        "command_cpu_s": round(_cpu() - imported_cpu, 3),
        "command_wall_s": round(time.perf_counter() - imported, 3),
    }
    with open(out, "w") as f:
        json.dump({"results": results, "phases": phases}, f)
    if outcome.success:
        return 0
    return 2 if outcome.exception is not None and not results else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
