"""Calendar helpers and reporting periods, as docs/marts.md defines them."""

from __future__ import annotations

import calendar
import datetime as dt
import functools
from dataclasses import dataclass

from dateutil.relativedelta import relativedelta

ONE_DAY = dt.timedelta(days=1)


@functools.cache  # only for speed: relativedelta arithmetic is slow and the same dates recur
def add_months(d: dt.date, n: int) -> dt.date:
    """The same day n months later, clipped to the last day of that month (2024-01-31 + 1 = 2024-02-29)."""
    return d + relativedelta(months=n)


def month_end(d: dt.date) -> dt.date:
    return dt.date(d.year, d.month, calendar.monthrange(d.year, d.month)[1])


def age_in_years(date_of_birth: dt.date | None, at: dt.date) -> int | None:
    """Whole years of age on `at` (the birthday itself counts as the new year; 29 February birthdays turn
    a year older on 1 March in common years)."""
    if date_of_birth is None:
        return None
    before_birthday = (at.month, at.day) < (date_of_birth.month, date_of_birth.day)
    return at.year - date_of_birth.year - (1 if before_birthday else 0)


def age_band(age: int | None) -> str:
    if age is None:
        return "unknown"
    if age < 20:
        return "<20"
    if age < 30:
        return "20-29"
    if age < 40:
        return "30-39"
    if age < 50:
        return "40-49"
    if age < 70:
        return "50-69"
    return "70+"


@dataclass(frozen=True)
class Period:
    """The 12 months ending `end` (a month end): `start` to `end`, both included."""

    period_type: str
    period_label: str
    end: dt.date

    @property
    def start(self) -> dt.date:
        return add_months(self.end, -12) + ONE_DAY

    def contains(self, d: dt.date | None) -> bool:
        return d is not None and self.start <= d <= self.end


def rolling_period_ends(first_extract_date: dt.date, as_of: dt.date) -> list[dt.date]:
    """Every month end from the month end of the earliest applied extract date to the last month end on or
    before `as_of`."""
    ends = []
    p = month_end(first_extract_date)
    while p <= as_of:
        ends.append(p)
        p = month_end(p + ONE_DAY)
    return ends


def reporting_periods(first_extract_date: dt.date | None, as_of: dt.date) -> list[Period]:
    """Rolling 12-month periods, plus a financial-year row for each ending 31 March and a calendar-year row
    for each ending 31 December (the same 12 months under another label)."""
    if first_extract_date is None:
        return []
    periods = []
    for end in rolling_period_ends(first_extract_date, as_of):
        periods.append(Period("rolling_12_months", f"{end:%Y-%m}", end))
        if (end.month, end.day) == (3, 31):
            periods.append(Period("financial_year", f"{end.year - 1}-{end.year % 100:02d}", end))
        if (end.month, end.day) == (12, 31):
            periods.append(Period("calendar_year", f"{end.year}", end))
    return periods
