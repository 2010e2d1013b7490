"""A run's knowledge date, from its data interval: what the run may know and publish.

The refresh runs after each month end. The run whose data interval ends on day D knows exactly
the deliveries with an extract_date on or before D, so re-running it later (after more months
have landed) builds and publishes the same tables as the first time.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from outcomes.contract.extracts import parse_delivery_filename


def knowledge_date(landing: Path, interval_end: dt.date, applied: list[dt.date] | None = None) -> dt.date:
    """The latest extract_date on or before `interval_end`, among deliveries in the landing folder
    and those already applied (`applied`, from the ledger: archived files leave the landing folder)."""
    dates = [d for d in _landed_dates(landing) if d <= interval_end]
    dates += [d for d in applied or [] if d <= interval_end]
    if not dates:
        raise ValueError(f"no delivery with an extract_date on or before {interval_end} in {landing} or the ledger")
    return max(dates)


def expected_month_end(interval_end: dt.date) -> dt.date:
    """The month end whose deliveries a run ending on `interval_end` waits for: the last month end
    on or before it (a run on 5 April waits for the 31 March extracts)."""
    first = interval_end.replace(day=1)
    following = (first + dt.timedelta(days=32)).replace(day=1)
    if interval_end == following - dt.timedelta(days=1):
        return interval_end
    return first - dt.timedelta(days=1)


def manifest_pattern(landing: str | Path, source: str, month_end: dt.date) -> str:
    """Glob of the manifests of `source`'s deliveries dated in `month_end`'s month."""
    return str(Path(landing) / f"{source}_{month_end:%Y%m}[0-9][0-9]_[0-9][0-9].manifest.json")


def _landed_dates(landing: Path) -> list[dt.date]:
    if not Path(landing).is_dir():
        return []
    out = []
    for path in Path(landing).iterdir():
        name = parse_delivery_filename(path.name)
        if name is not None:
            out.append(name.extract_date)
    return out
