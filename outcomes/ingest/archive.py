"""The immutable archive of delivered files, addressed by the data file's sha256."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from outcomes.pseudonymise.delivery import PARQUET_OPTIONS


def archive_path(root: Path, source: str, sha256: str) -> Path:
    return root / source / f"{sha256}.parquet"


def archive(root: Path, source: str, sha256: str, original: Path, table: pa.Table) -> Path:
    """Keep the delivery: a Parquet file is kept byte for byte; a CSV is kept as Parquet text.

    Written once (to a temporary name, then renamed) and made read-only; an existing archive
    entry is never rewritten, so an interrupted run simply finds it there next time.
    """
    dest = archive_path(root, source, sha256)
    if dest.exists():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(".tmp")
    if original.suffix == ".parquet":
        shutil.copyfile(original, tmp)
    else:
        pq.write_table(table, tmp, **PARQUET_OPTIONS)
    os.chmod(tmp, 0o444)
    os.replace(tmp, dest)
    return dest


def read_archived(path: Path) -> pa.Table:
    return pq.read_table(path)
