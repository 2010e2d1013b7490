"""Writing a delivery: the data file and its manifest (extracts.md §1)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from outcomes.contract import SOURCES, SPEC_VERSION, arrow_schema, delivery_filename
from outcomes.contract.extracts import manifest_filename, parse_delivery_filename

PARQUET_OPTIONS = {"compression": "zstd", "compression_level": 3, "write_statistics": True}


@dataclass(frozen=True)
class DeliveryFiles:
    data: Path
    manifest: Path
    row_count: int
    sha256: str


def next_seq(out_dir: Path, source: str, extract_date: dt.date) -> int:
    """The first sequence number not yet used for this source and date in out_dir."""
    used = {
        n.seq
        for f in out_dir.glob(f"{source}_{extract_date:%Y%m%d}_*")
        if (n := parse_delivery_filename(f.name)) is not None
    }
    return max(used, default=0) + 1


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_manifest(data: Path, source: str, extract_date: dt.date, row_count: int, producer: str) -> DeliveryFiles:
    digest = sha256_file(data)
    manifest = {
        "source": source,
        "spec_version": SPEC_VERSION,
        "extract_date": extract_date.isoformat(),
        "delivery_type": SOURCES[source].delivery_type,
        "row_count": row_count,
        "sha256": digest,
        "producer": producer,
    }
    path = data.with_name(manifest_filename(data.name))
    path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return DeliveryFiles(data, path, row_count, digest)


class DeliveryWriter:
    """Streams record batches into one delivery; the manifest is written on close.

    Parquet output is byte-deterministic for the same rows (fixed options, no pandas metadata).
    """

    def __init__(
        self, out_dir: Path, source: str, extract_date: dt.date, seq: int, producer: str, fmt: str = "parquet"
    ) -> None:
        if fmt not in ("parquet", "csv"):
            raise ValueError(f"unknown delivery format {fmt!r}: use parquet or csv")
        self.source, self.extract_date, self.producer, self.fmt = source, extract_date, producer, fmt
        self.schema = arrow_schema(source)
        self.path = Path(out_dir) / delivery_filename(source, extract_date, seq, fmt)
        self.rows = 0
        self._writer: pq.ParquetWriter | pacsv.CSVWriter | None = None

    def _open(self) -> None:
        if self.fmt == "parquet":
            self._writer = pq.ParquetWriter(self.path, self.schema, **PARQUET_OPTIONS)
        else:
            self._writer = pacsv.CSVWriter(self.path, _csv_schema(self.schema))

    def write(self, table: pa.Table) -> None:
        table = table.select(self.schema.names).cast(self.schema)
        if self._writer is None:
            self._open()
        if self.fmt == "csv":
            table = _to_csv_table(table)
        self._writer.write_table(table)
        self.rows += table.num_rows

    def close(self) -> DeliveryFiles:
        if self._writer is None:  # an empty delivery is still a delivery
            self._open()
            if self.fmt == "parquet":
                self._writer.write_table(self.schema.empty_table())
        self._writer.close()
        return write_manifest(self.path, self.source, self.extract_date, self.rows, self.producer)


def _csv_schema(schema: pa.Schema) -> pa.Schema:
    return pa.schema([pa.field(f.name, pa.string() if pa.types.is_list(f.type) else f.type) for f in schema])


def _to_csv_table(table: pa.Table) -> pa.Table:
    """Lists become `|`-separated text, as the spec's CSV form says."""
    cols = []
    for name in table.column_names:
        col = table[name]
        if pa.types.is_list(col.type):
            col = pc.binary_join(col, "|")
        cols.append(col)
    return pa.table(cols, names=table.column_names)


def write_delivery(
    table: pa.Table,
    out_dir: Path,
    source: str,
    extract_date: dt.date,
    producer: str,
    fmt: str = "parquet",
    seq: int | None = None,
) -> DeliveryFiles:
    out_dir.mkdir(parents=True, exist_ok=True)
    writer = DeliveryWriter(
        out_dir, source, extract_date, seq or next_seq(out_dir, source, extract_date), producer, fmt
    )
    writer.write(table)
    return writer.close()
