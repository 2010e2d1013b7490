"""Reading a provider's identified extract and turning it into a delivery."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from outcomes.contract import SOURCES
from outcomes.pseudonymise.delivery import DeliveryFiles, write_delivery
from outcomes.pseudonymise.identity import CLEAR_IDENTITY_COLUMNS, identity_block
from outcomes.pseudonymise.keyed import Pseudonymiser

_TRUE = {"true", "t", "1", "yes", "y"}
_FALSE = {"false", "f", "0", "no", "n"}


class ExtractError(ValueError):
    """The identified extract cannot be turned into a delivery; the message says why."""


def read_extract(path: Path) -> pa.Table:
    """An identified extract, CSV (every column read as text) or Parquet."""
    if not path.exists():
        raise ExtractError(f"no such extract: {path}")
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            return pq.read_table(path)
        if suffix == ".csv":
            with path.open(newline="", encoding="utf-8") as f:
                header = next(csv.reader(f), [])
            return pacsv.read_csv(
                path,
                convert_options=pacsv.ConvertOptions(
                    column_types={n: pa.string() for n in header},
                    strings_can_be_null=True,
                ),
            )
    except (pa.ArrowInvalid, OSError, UnicodeDecodeError) as exc:
        raise ExtractError(f"cannot read {path.name}: {exc}") from None
    raise ExtractError(f"{path.name}: an extract is .csv or .parquet, not {suffix or 'no suffix'}")


def _as_text(col: pa.ChunkedArray) -> pa.ChunkedArray:
    return col if pa.types.is_string(col.type) else pc.cast(col, pa.string())


def _convert(table: pa.Table, name: str, kind: str) -> pa.ChunkedArray:
    """One source column in its spec type; a value that cannot be read names its row."""
    col = table[name]
    if kind == "date":
        if pa.types.is_date(col.type) or pa.types.is_timestamp(col.type):
            return pc.cast(col, pa.date32())
        text = pc.utf8_trim_whitespace(_as_text(col))
        parsed = pc.strptime(text, format="%Y-%m-%d", unit="s", error_is_null=True)
        bad = pc.and_(pc.is_valid(text), pc.is_null(parsed))
        _raise_on_bad(bad, name, "a date (YYYY-MM-DD)")
        return pc.cast(parsed, pa.date32())
    if kind == "bool":
        if pa.types.is_boolean(col.type):
            return col
        text = pc.utf8_lower(pc.utf8_trim_whitespace(_as_text(col)))
        is_true = pc.is_in(text, pa.array(sorted(_TRUE)))
        is_false = pc.is_in(text, pa.array(sorted(_FALSE)))
        bad = pc.and_(pc.is_valid(text), pc.invert(pc.or_(is_true, is_false)))
        _raise_on_bad(bad, name, "true or false")
        return pc.if_else(pc.is_valid(text), is_true, pa.scalar(None, pa.bool_()))
    if kind == "list":
        if pa.types.is_list(col.type):
            return pc.cast(col, pa.list_(pa.string()))
        text = pc.fill_null(_as_text(col), "")
        split = pc.split_pattern(text, "|")
        # "" means an empty list, not a list holding one empty string
        return pc.if_else(pc.equal(text, ""), pa.scalar([], pa.list_(pa.string())), split)
    return _as_text(col)


def _raise_on_bad(bad: pa.ChunkedArray, column: str, expected: str) -> None:
    rows = pc.indices_nonzero(bad.combine_chunks()) if len(bad) else pa.array([])
    if len(rows):
        # Row numbers only: a value may be personal data and must not reach a log.
        shown = ", ".join(str(r.as_py() + 1) for r in rows[:5])
        more = f" and {len(rows) - 5} more" if len(rows) > 5 else ""
        raise ExtractError(f"column {column!r} must hold {expected}: rows {shown}{more}")


def pseudonymise_extract(
    path: Path,
    source: str,
    key: bytes,
    out_dir: Path,
    extract_date: dt.date,
    fmt: str = "parquet",
    producer: str = "outcomes pseudonymise",
) -> DeliveryFiles:
    if source not in SOURCES:
        raise ExtractError(f"unknown source {source!r}: one of {', '.join(SOURCES)}")
    spec = SOURCES[source]
    table = read_extract(path)
    own = [c for c in spec.columns if not c.identity and c.name != "record_id"]
    wanted = list(CLEAR_IDENTITY_COLUMNS) + [c.name for c in own]
    missing = [n for n in wanted if n not in table.column_names]
    if missing:
        raise ExtractError(f"{path.name} lacks columns: {', '.join(missing)}")
    extra = [n for n in table.column_names if n not in wanted]
    if extra:
        # Forwarding an unexpected column could leak identity; the provider must drop it.
        raise ExtractError(f"{path.name} has columns the spec does not allow: {', '.join(extra)}")

    clear = pd.DataFrame({n: table[n].to_pandas() if n != "date_of_birth" else None for n in CLEAR_IDENTITY_COLUMNS})
    clear["date_of_birth"] = _convert(table, "date_of_birth", "date").to_pandas()
    if clear["record_id"].isna().any():
        raise ExtractError("record_id is null on some rows: every row needs its source's id")
    columns = identity_block(Pseudonymiser(key), source, clear)
    for c in own:
        columns[c.name] = _convert(table, c.name, c.type)
    out = pa.table({c.name: columns[c.name] for c in spec.columns})
    return write_delivery(out, out_dir, source, extract_date, producer, fmt)
