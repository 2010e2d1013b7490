"""Which knowledge dates `outcomes link --as-of D` can link.

The linker is incremental: each run adds the records not linked yet to the person spine as of its
date, and a build as of D reads the runs as of D or earlier. So D needs applied deliveries on or
before it, and no run may be as of a later date: a run as of D made after it would link records
the later run has already placed, and change the spine that a rebuild of the later date must
reproduce byte for byte. Dates are therefore linked in order (the refresh DAG links each extract
date it ingests); a date linked already may be linked again (nothing is new: a re-run or backfill
of that month changes nothing).
"""

from __future__ import annotations

import datetime as dt

from outcomes.warehouse.target import WarehouseError


def _has_table(s, schema: str, table: str) -> bool:
    return bool(
        s.scalar(
            "select count(*) from information_schema.tables where table_schema = :s and table_name = :t",
            {"s": schema, "t": table},
        )
    )


def check_can_link(backend, as_of: dt.date) -> None:
    """Raise WarehouseError (one line) when records cannot be linked as of `as_of`."""
    with backend.transaction() as s:
        applied = (
            s.scalar(
                "select count(*) from events.deliveries where status = 'applied' and extract_date <= :d", {"d": as_of}
            )
            if _has_table(s, "events", "deliveries")
            else 0
        )
        later = (
            s.fetch(
                "select run_id, as_of from linkage.runs where as_of > :d order by as_of desc, run_id desc limit 1",
                {"d": as_of},
            ).to_pylist()
            if _has_table(s, "linkage", "runs")
            else []
        )
    if not applied:
        raise WarehouseError(f"no delivery applied on or before {as_of}: nothing to link as of that date")
    if later:
        from outcomes.marts.build import unlinked_records

        if not unlinked_records(backend, as_of):
            return  # every record known then is in the spine as of then: a no-op re-run
        run = later[0]
        raise WarehouseError(
            f"linkage run {run['run_id']} is as of {run['as_of']}, after {as_of}: dates are linked in order, "
            f"so {as_of} had to be linked before it (link each extract date in turn from an empty linkage schema)"
        )
