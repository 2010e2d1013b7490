"""Which knowledge dates `outcomes link --as-of D` can link: any date with an applied delivery on
or before it.

The linker is incremental: each run adds the records not linked yet to the person spine as of its
date, and a build as of D reads the spine as of D. A date before a date linked already (a month
backfilled after a one-shot refresh, or a late delivery of an earlier month) is linked beneath the
later runs: its run links what the spine as of D lacks, and the spine as of every later date stays
as it was (linkage.run.PastRun, docs/linkage.md). A date linked already may be linked again
(nothing is new: a re-run or backfill of that month changes nothing).
"""

from __future__ import annotations

import datetime as dt

from outcomes.warehouse.target import WarehouseError


def check_can_link(backend, as_of: dt.date) -> None:
    """Raise WarehouseError (one line) when nothing can be linked as of `as_of`."""
    with backend.transaction() as s:
        ledger = s.scalar(
            "select count(*) from information_schema.tables where table_schema = 'events' and table_name = 'deliveries'"
        )
        applied = (
            s.scalar(
                "select count(*) from events.deliveries where status = 'applied' and extract_date <= :d", {"d": as_of}
            )
            if ledger
            else 0
        )
    if not applied:
        raise WarehouseError(f"no delivery applied on or before {as_of}: nothing to link as of that date")
