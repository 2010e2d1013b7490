"""Derived columns the suites read (see `outcomes.validation.rules`), added to a copy of a delivery frame.

They only re-express values so GX can compare them: a date as the number YYYYMMDD, a list as one
string. Whether a value is valid is decided by the expectations, not here. A value of the wrong
Python type (a date that is not text, a list column holding a string) is a caller's error and
raises TypeError naming the column only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import numpy as np
import pandas as pd

from outcomes.contract import SOURCES
from outcomes.validation.rules import DATE_REGEX, ICD10_COLUMNS, date_helper, joined_helper

_DATE = re.compile(DATE_REGEX)


def _yyyymmdd(text: str) -> float:
    """YYYYMMDD of a real date written YYYY-MM-DD, else NaN: the suite's own date regex decides."""
    if not _DATE.search(text):
        return np.nan
    return float(text.replace("-", ""))


def dates_as_numbers(values: pd.Series, column: str) -> np.ndarray:
    """YYYYMMDD (float, NaN when null or not a date) of a text date column, computed once per distinct value."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    numbers = np.empty(len(uniques) + 1, dtype=np.float64)
    for i, text in enumerate(uniques):
        if not isinstance(text, str):
            raise TypeError(f"date column {column!r} must hold text (str 'YYYY-MM-DD') or None")
        numbers[i] = _yyyymmdd(text)
    numbers[-1] = np.nan  # the sentinel -1 of a null picks the last slot
    return numbers[codes]


def _escape(element: object) -> str:
    if not isinstance(element, str):
        return ""  # an empty element never matches a code
    return element.replace("\\", "\\\\").replace("|", "\\|")


def join_list(value: object, column: str) -> str | None:
    """A list column's elements as one `|`-joined string; None for a null or empty list."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise TypeError(f"list column {column!r} must hold lists of str (or None)")
    elements = list(value)
    if not elements:
        return None
    return "|".join(_escape(e) for e in elements)


def with_derived_columns(source: str, frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of `frame` (index reset to positions 0..n-1) with the derived columns of `source`'s suite."""
    spec = SOURCES[source]
    out = frame.reset_index(drop=True)
    derived: dict[str, object] = {}
    for col in spec.columns:
        if col.type == "date":
            derived[date_helper(col.name)] = dates_as_numbers(out[col.name], col.name)
    for column in ICD10_COLUMNS.get(source, ()):
        if spec.column(column).type == "list":
            derived[joined_helper(column)] = pd.Series(
                [join_list(v, column) for v in out[column].tolist()], index=out.index, dtype=object
            )
    return out.assign(**derived)
