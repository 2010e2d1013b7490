"""Dates as int32 days since 1970-01-01 (Arrow's date32), and the delivery calendar."""

from __future__ import annotations

import datetime as dt

import numpy as np

EPOCH = dt.date(1970, 1, 1)


def to_days(d: dt.date) -> int:
    return (d - EPOCH).days


def from_days(days: int) -> dt.date:
    return EPOCH + dt.timedelta(days=int(days))


def month_number(days: np.ndarray) -> np.ndarray:
    """Months since 1970-01 of each day."""
    return np.asarray(days, dtype="int64").astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)


def month_end(year: int, month: int) -> dt.date:
    first_next = dt.date(year + month // 12, month % 12 + 1, 1)
    return first_next - dt.timedelta(days=1)


def parse_month(text: str) -> tuple[int, int]:
    try:
        d = dt.datetime.strptime(text, "%Y-%m")
    except ValueError:
        raise ValueError(f"a month is YYYY-MM, not {text!r}") from None
    return d.year, d.month


class DeliveryCalendar:
    """Monthly extract dates: the last day of each of `months` months from `start`."""

    def __init__(self, start: str, months: int, history_months: int) -> None:
        if months < 1:
            raise ValueError("months must be at least 1")
        y, m = parse_month(start)
        self.first_month = (y - 1970) * 12 + (m - 1)  # months since 1970-01
        self.months = months
        self.extract_dates = [
            month_end(1970 + (self.first_month + i) // 12, (self.first_month + i) % 12 + 1) for i in range(months)
        ]
        self.window_start = to_days(dt.date(y, m, 1))
        self.window_end = to_days(self.extract_dates[-1])
        hm = self.first_month - history_months
        self.history_start = to_days(dt.date(1970 + hm // 12, hm % 12 + 1, 1))

    def delivery_index(self, known_day: np.ndarray, lag_months: np.ndarray | int = 0) -> np.ndarray:
        """Index of the first delivery that carries a fact known on `known_day` after a lag.

        Facts known before the first extract date arrive in the first delivery (the initial
        load); an index of `months` or more means the fact is not delivered within the run.
        """
        idx = month_number(known_day) - self.first_month + lag_months
        return np.maximum(idx, 0)
