"""Frames that travel to Spark as Parquet in the run's work folder (never through the driver's
Py4J socket), and back the same way: Spark writes a result as Parquet and the driver reads it
with pyarrow, so that the JVM never holds a whole result (`toPandas` gathers every partition's
Arrow batches in the driver JVM's heap first)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

DATES = ("date_of_birth", "dob_swapped")


SLICE_ROWS = 500_000  # rows converted to Arrow at once when writing a frame: its copy is bounded, not whole


def write_parquet(
    frame: pd.DataFrame, folder: Path, name: str, first: dict | None = None, last: dict | None = None
) -> str:
    """Write `frame` (no index) as Parquet under `folder`, between the columns `first` and `last`
    (name: array) when given; dates as dates, columns of nothing but nulls as strings (Spark has
    no Parquet null type). Converted and written `SLICE_ROWS` rows at a time (a row group each),
    so that the driver holds an Arrow copy of a slice, not of the whole frame (the variants, every
    record). Returns the path."""
    first, last = first or {}, last or {}
    base = _types(frame)  # the whole frame's, every slice's
    fields = [pa.field(c, pa.array(v[:0]).type) for c, v in first.items()]
    fields += list(base) + [pa.field(c, pa.array(v[:0]).type) for c, v in last.items()]
    for i, field in enumerate(fields):
        if pa.types.is_null(field.type):
            fields[i] = field.with_type(pa.string())
        elif field.name in DATES and pa.types.is_timestamp(field.type):
            fields[i] = field.with_type(pa.date32())
    schema = pa.schema(fields)
    path = Path(folder) / f"{name}-{uuid.uuid4().hex[:8]}.parquet"
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, max(len(frame), 1), SLICE_ROWS):
            at = slice(start, start + SLICE_ROWS)
            table = pa.Table.from_pandas(frame.iloc[at], schema=base, preserve_index=False)
            for i, (column, values) in enumerate(first.items()):
                table = table.add_column(i, column, pa.array(values[at]))
            for column, values in last.items():
                table = table.append_column(column, pa.array(values[at]))
            writer.write_table(table.cast(schema))
            del table
    return str(path)


def _types(frame: pd.DataFrame) -> pa.Schema:
    """The Arrow types of a frame's columns, as `from_pandas` gives them for the whole frame,
    without converting it: an object column's inferred from its values (no buffers built)."""
    schema = pa.Schema.from_pandas(frame.iloc[:0], preserve_index=False)
    for i, name in enumerate(schema.names):
        if frame[name].dtype == object:
            schema = schema.set(i, schema.field(i).with_type(pa.infer_type(frame[name], from_pandas=True)))
    return schema


def read(spark, frame: pd.DataFrame, folder: Path, name: str):
    """`frame` as a Spark data frame, through a Parquet file."""
    return spark.read.parquet(write_parquet(frame, folder, name))


def stored(frame, folder: Path | None, name: str):
    """`frame` computed once and kept: written as Parquet under `folder` and read back (without a
    folder, a local checkpoint in Spark's block store). Files, not Spark's block store: at 500,000
    people a task failed to find a block of a locally checkpointed or disk-persisted table
    ("[INTERNAL_ERROR_STORAGE] Block rdd_287_0 does not exist", with the JVM's heap at 1 GiB), and
    a local checkpoint's lost block cannot be recomputed; a file stays until the run's work folder
    is removed."""
    if folder is None:
        return frame.localCheckpoint()
    path = Path(folder) / f"{name}-{uuid.uuid4().hex[:8]}"
    frame.write.parquet(str(path))
    return frame.sparkSession.read.parquet(str(path))


def written(frame, folder: Path, name: str) -> list[str]:
    """A Spark data frame written by the executors as Parquet under `folder`: its files, in the
    order of its partitions."""
    path = Path(folder) / f"{name}-{uuid.uuid4().hex[:8]}"
    frame.write.parquet(str(path))
    return sorted(str(f) for f in path.glob("part-*.parquet"))


def collect(frame, folder: Path, name: str) -> pd.DataFrame:
    """A Spark data frame as pandas, through Parquet files written by the executors (rows in the
    order of its partitions, as `toPandas` gives them)."""
    parts = written(frame, folder, name)
    schema = _arrow_schema(frame.schema)
    if not parts:
        return schema.empty_table().to_pandas()
    table = pa.concat_tables([pq.read_table(f, schema=schema) for f in parts])
    return table.to_pandas(self_destruct=True)


def _arrow_schema(schema) -> pa.Schema:
    """Spark's schema as Arrow's (the types these results hold)."""
    from pyspark.sql.pandas.types import to_arrow_schema

    return to_arrow_schema(schema)


def as_local(frame: pd.DataFrame) -> pd.DataFrame:
    """Dates back to datetime64, as the local engine holds them."""
    for c in DATES:
        if c in frame:
            frame[c] = pd.to_datetime(frame[c])
    return frame
