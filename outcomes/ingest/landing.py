"""Finding deliveries in a landing folder and checking them against their manifests (extracts.md §1).

A delivery that fails a file-level check is rejected whole, with the reason; nothing found in
the landing folder is passed over without a word.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from outcomes.contract import SOURCES, SPEC_VERSION, arrow_schema
from outcomes.contract.extracts import manifest_filename, parse_delivery_filename
from outcomes.pseudonymise.delivery import sha256_file


@dataclass
class Delivery:
    """A data file and what is known of it; `reason` is set when it must be rejected."""

    path: Path
    data_sha256: str
    manifest_sha256: str | None
    source: str | None = None
    extract_date: dt.date | None = None
    seq: int | None = None
    delivery_type: str | None = None
    row_count: int | None = None
    reason: str | None = None
    table: pa.Table | None = None  # the rows as read: typed for Parquet, text for CSV


def discover(landing: Path) -> list[Delivery]:
    """Every data file in the landing folder, plus a rejection for each manifest without data."""
    if not landing.is_dir():
        raise FileNotFoundError(f"landing folder {landing} does not exist")
    found: list[Delivery] = []
    data_names = set()
    for path in sorted(landing.iterdir()):
        if not path.is_file() or path.name.startswith("."):
            continue
        if path.name.endswith(".manifest.json"):
            continue
        data_names.add(path.name)
        manifest = path.with_name(manifest_filename(path.name))
        found.append(Delivery(path, sha256_file(path), sha256_file(manifest) if manifest.exists() else None))
    for manifest in sorted(landing.glob("*.manifest.json")):
        stem = manifest.name.removesuffix(".manifest.json")
        if not any(f"{stem}.{suffix}" in data_names for suffix in ("parquet", "csv")):
            found.append(
                Delivery(
                    manifest, sha256_file(manifest), sha256_file(manifest), reason="manifest without its data file"
                )
            )
    return found


def check(d: Delivery) -> Delivery:
    """File-level checks; reads the rows. Sets `reason` on the first failure."""
    if d.reason:
        return d
    name = parse_delivery_filename(d.path.name)
    if name is None:
        d.reason = "file name is not {source}_{YYYYMMDD}_{seq:02d}.parquet|csv"
        return d
    if name.source not in SOURCES:
        d.reason = f"unknown source {name.source!r} in the file name"
        return d
    d.source, d.extract_date, d.seq = name.source, name.extract_date, name.seq
    if d.manifest_sha256 is None:
        d.reason = "no manifest"
        return d
    try:
        manifest = json.loads(d.path.with_name(manifest_filename(d.path.name)).read_text(encoding="utf-8"))
        if not isinstance(manifest, dict):
            raise ValueError("not an object")
    except (ValueError, UnicodeDecodeError) as exc:
        d.reason = f"manifest is not valid JSON ({exc.__class__.__name__})"
        return d
    d.delivery_type = manifest.get("delivery_type")
    problems = []
    if manifest.get("source") != name.source:
        problems.append(f"manifest source {manifest.get('source')!r} does not match the file name")
    if manifest.get("spec_version") != SPEC_VERSION:
        problems.append(f"spec_version {manifest.get('spec_version')!r} is not {SPEC_VERSION}")
    if manifest.get("extract_date") != name.extract_date.isoformat():
        problems.append(f"manifest extract_date {manifest.get('extract_date')!r} does not match the file name")
    if manifest.get("delivery_type") != SOURCES[name.source].delivery_type:
        problems.append(
            f"delivery_type {manifest.get('delivery_type')!r} is not {SOURCES[name.source].delivery_type!r}"
        )
    if manifest.get("sha256") != d.data_sha256:
        problems.append("sha256 does not match the data file")
    if problems:
        d.reason = "; ".join(problems)
        return d
    try:
        d.table = _read(d.path, name.source)
    except _ColumnsDiffer as exc:
        d.reason = str(exc)
        return d
    except (pa.ArrowException, OSError, UnicodeDecodeError) as exc:
        d.reason = f"unreadable {d.path.suffix[1:]} file: {str(exc).splitlines()[0][:200]}"
        return d
    d.row_count = d.table.num_rows
    if manifest.get("row_count") != d.table.num_rows:
        d.reason = f"manifest row_count {manifest.get('row_count')!r} but the file holds {d.table.num_rows} rows"
    return d


class _ColumnsDiffer(ValueError):
    pass


def _compare_columns(found: list[str], source: str) -> None:
    expected = SOURCES[source].column_names
    if found != expected:
        missing = [c for c in expected if c not in found]
        extra = [c for c in found if c not in expected]
        parts = []
        if missing:
            parts.append(f"missing columns {', '.join(missing)}")
        if extra:
            parts.append(f"unexpected columns {', '.join(extra)}")
        if not parts:
            parts.append("columns in the wrong order")
        raise _ColumnsDiffer("columns do not match the spec: " + "; ".join(parts))


def _read(path: Path, source: str) -> pa.Table:
    if path.suffix == ".parquet":
        schema = pq.read_schema(path)
        _compare_columns(schema.names, source)
        table = pq.read_table(path)
        expected = arrow_schema(source)
        try:
            return table.cast(expected)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            wrong = [f.name for f in expected if not table.schema.field(f.name).type.equals(f.type)]
            raise _ColumnsDiffer(f"column types do not match the spec: {', '.join(wrong)}") from None
    with path.open(newline="", encoding="utf-8-sig") as f:
        names = next(csv.reader(f), [])
    _compare_columns(names, source)
    return pacsv.read_csv(
        path,
        convert_options=pacsv.ConvertOptions(
            column_types={n: pa.string() for n in names}, strings_can_be_null=True, quoted_strings_can_be_null=False
        ),
    )
