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
    shown_name: str | None = None  # the name in messages and the ledger when not the file's own (a subfolder's)

    @property
    def name(self) -> str:
        return self.shown_name or self.path.name


def discover(landing: Path) -> list[Delivery]:
    """Every data file in the landing folder, plus a rejection for each manifest without data.

    Deliveries are read from the landing folder itself. A file in one of its subfolders is not
    read, but it is never passed over either: each is rejected with a reason naming where it is, so
    it shows as a line of the run and a row of the ledger (moved up, it is applied as usual).
    """
    if not landing.is_dir():
        raise FileNotFoundError(f"landing folder {landing} does not exist")
    found = _in_folder(landing)
    for folder in sorted(p for p in landing.rglob("*") if p.is_dir() and not _hidden(p, landing)):
        for d in _in_folder(folder):
            d.shown_name = str(d.path.relative_to(landing))
            d.manifest_sha256 = None  # a rejection of the file where it is, not of the delivery moved up
            d.reason = (
                f"in a subfolder of the landing folder ({d.path.parent.relative_to(landing)}/): deliveries are "
                "read from the landing folder itself, so move it there to apply it"
            )
            found.append(d)
    return found


def _hidden(path: Path, landing: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(landing).parts)


def _in_folder(folder: Path) -> list[Delivery]:
    found: list[Delivery] = []
    data_names = set()
    for path in sorted(folder.iterdir()):
        if not path.is_file() or path.name.startswith("."):
            continue
        if path.name.endswith(".manifest.json"):
            continue
        data_names.add(path.name)
        manifest = path.with_name(manifest_filename(path.name))
        found.append(Delivery(path, sha256_file(path), sha256_file(manifest) if manifest.exists() else None))
    for manifest in sorted(folder.glob("*.manifest.json")):
        stem = manifest.name.removesuffix(".manifest.json")
        if not any(f"{stem}.{suffix}" in data_names for suffix in ("parquet", "csv")):
            found.append(
                Delivery(
                    manifest, sha256_file(manifest), sha256_file(manifest), reason="manifest without its data file"
                )
            )
    return found


def check(d: Delivery, horizon: dt.date | None = None) -> Delivery:
    """File-level checks; reads the rows. Sets `reason` on the first failure. An extract_date after
    `horizon` (the ingest's today, or a date it was given) is a knowledge date not reached yet."""
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
    if horizon is not None and name.extract_date > horizon:
        d.reason = (
            f"extract_date {name.extract_date} is after {horizon}, the latest accepted: a knowledge date "
            "cannot lie in the future"
        )
        return d
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
    row_count = manifest.get("row_count")
    if not isinstance(row_count, int) or isinstance(row_count, bool) or row_count < 0:
        problems.append(f"manifest row_count must be a whole number of rows, not {row_count!r}"[:200])
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


def _text_like(t: pa.DataType) -> bool:
    if pa.types.is_dictionary(t):
        return _text_like(t.value_type)
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)


def _type_fits(found: pa.DataType, expected: pa.DataType) -> bool:
    """Whether a Parquet column of type `found` holds the contract's type exactly (other encodings of
    text and lists are the same values; a column of nulls only has no type of its own)."""
    if pa.types.is_null(found) or found.equals(expected):
        return True
    if _text_like(expected):
        return _text_like(found)
    if pa.types.is_date(expected):
        return pa.types.is_date(found)  # date32 or date64, never a timestamp: its time would be cut
    if pa.types.is_list(expected):
        is_list = pa.types.is_list(found) or pa.types.is_large_list(found) or pa.types.is_list_view(found)
        return is_list and (pa.types.is_null(found.value_type) or _text_like(found.value_type))
    return False


def _compare_types(schema: pa.Schema, source: str) -> None:
    """Reject a Parquet delivery whose column types are not the contract's, naming each column with
    the type found and the type expected (a cast would turn a string into a date, a number into a
    boolean, and cut a timestamp's time, silently)."""
    wrong = [
        f"{f.name} is {schema.field(f.name).type}, expected {f.type}"
        for f in arrow_schema(source)
        if not _type_fits(schema.field(f.name).type, f.type)
    ]
    if wrong:
        raise _ColumnsDiffer("column types do not match the spec: " + "; ".join(wrong))


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
        _compare_types(schema, source)
        return pq.read_table(path).cast(arrow_schema(source))
    with path.open(newline="", encoding="utf-8-sig") as f:
        names = next(csv.reader(f), [])
    _compare_columns(names, source)
    return pacsv.read_csv(
        path,
        convert_options=pacsv.ConvertOptions(
            column_types={n: pa.string() for n in names}, strings_can_be_null=True, quoted_strings_can_be_null=False
        ),
    )
