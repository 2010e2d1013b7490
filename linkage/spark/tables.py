"""Frames that travel to Spark as Parquet in the run's work folder (never through the driver's
Py4J socket), and back as pandas through Arrow."""

from __future__ import annotations

import uuid
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

DATES = ("date_of_birth", "dob_swapped")


def write_parquet(frame: pd.DataFrame, folder: Path, name: str) -> str:
    """Write `frame` (no index) as Parquet under `folder`; dates as dates, columns of nothing but
    nulls as strings (Spark has no Parquet null type). Returns the path."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    for i, field in enumerate(table.schema):
        if pa.types.is_null(field.type):
            table = table.set_column(i, field.name, table.column(i).cast(pa.string()))
        elif field.name in DATES and pa.types.is_timestamp(field.type):
            table = table.set_column(i, field.name, table.column(i).cast(pa.date32()))
    path = Path(folder) / f"{name}-{uuid.uuid4().hex[:8]}.parquet"
    pq.write_table(table, path)
    return str(path)


def read(spark, frame: pd.DataFrame, folder: Path, name: str):
    """`frame` as a Spark data frame, through a Parquet file."""
    return spark.read.parquet(write_parquet(frame, folder, name))


def as_local(frame: pd.DataFrame) -> pd.DataFrame:
    """Dates back to datetime64, as the local engine holds them."""
    for c in DATES:
        if c in frame:
            frame[c] = pd.to_datetime(frame[c])
    return frame
