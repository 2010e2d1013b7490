"""The `ops` schema: one row per incident (a failed or late task) of the refresh."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass

DDL = [
    "create schema if not exists ops",
    """create table if not exists ops.incidents (
        dag_id varchar not null, run_id varchar not null, task_id varchar not null, map_index integer,
        try_number integer, kind varchar not null, reason varchar not null, occurred_at timestamp not null,
        notified varchar)""",
]


@dataclass
class Incident:
    dag_id: str
    run_id: str
    task_id: str
    map_index: int | None
    try_number: int | None
    kind: str  # failed, late
    reason: str
    occurred_at: dt.datetime
    notified: str | None = None  # where the notification went, or why none was sent

    def subject(self) -> str:
        return f"[outcomes] {self.dag_id} {self.run_id}: {self.task_id} {self.kind}"

    def body(self) -> str:
        return (
            f"DAG {self.dag_id}, run {self.run_id}, task {self.task_id}"
            + ("" if self.map_index in (None, -1) else f"[{self.map_index}]")
            + f" {self.kind} at {self.occurred_at:%Y-%m-%d %H:%M:%S} UTC (try {self.try_number}).\n\n"
            + f"Reason: {self.reason}\n"
        )


def record(backend, incident: Incident) -> None:
    import pyarrow as pa

    with backend.transaction() as s:
        for statement in DDL:
            s.execute(statement)
        row = asdict(incident)
        schema = pa.schema(
            [
                ("dag_id", pa.string()),
                ("run_id", pa.string()),
                ("task_id", pa.string()),
                ("map_index", pa.int32()),
                ("try_number", pa.int32()),
                ("kind", pa.string()),
                ("reason", pa.string()),
                ("occurred_at", pa.timestamp("us")),
                ("notified", pa.string()),
            ]
        )
        s.insert("ops.incidents", pa.Table.from_pylist([row], schema=schema))
