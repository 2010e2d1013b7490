"""Splitting a synthetic landing folder by extract date, for tests that ingest history in steps."""

from __future__ import annotations

import shutil
from pathlib import Path


def _extract_date(path: Path) -> str:
    return path.name.split("_")[1].split(".")[0]


def extract_dates(landing: Path) -> list[str]:
    """The extract dates (YYYYMMDD) of the deliveries in `landing`, in order."""
    return sorted({_extract_date(p) for p in landing.glob("*.manifest.json")})


def copy_until(landing: Path, to: Path, last: str) -> Path:
    """Copy the deliveries with extract date on or before `last` into `to`."""
    to.mkdir(parents=True, exist_ok=True)
    for f in landing.iterdir():
        if _extract_date(f) <= last:
            shutil.copy(f, to / f.name)
    return to
