"""Identity records, nodes and variants: the units linkage works on.

- A *record* is one source row (source, record_id) with its pseudonymised identity block.
- A *node* is what a source already knows to be one person: its records sharing a
  `source_person_key` (PNC id, NINo, NHS number, NDTMS client id); a record without one is a
  node by itself.
- A *variant* is a distinct identity within a node. Comparing variants rather than records
  costs far less (a person's many records mostly repeat one identity) and loses nothing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from outcomes.contract import SOURCES
from outcomes.contract.extracts import IDENTITY_BLOCK

IDENTITY = [c.name for c in IDENTITY_BLOCK if c.name != "record_id"]
# Tokens determine initials, Soundex and Bloom filters, so they need not be in the key.
# The date of each record's event (not identity: decides nothing by itself). A person's second
# key in a source is made when the person comes back and is not recognised, so its records
# begin after the first key's (linkage.cluster: configurations of persons in time).
RECORD_DATE = {
    "treatment": "treatment_start_date",
    "convictions": "offence_date",
    "benefits": "spell_start",
    "deaths": "date_of_death",
}
VARIANT_KEY = ["node", "forename_token", "surname_token", "date_of_birth", "sex", "postcode_district"]
VARIANT_COLUMNS = [
    "forename_token",
    "surname_token",
    "forename_bloom",
    "surname_bloom",
    "surname_soundex_token",
    "forename_initial",
    "surname_initial",
    "date_of_birth",
    "sex",
    "postcode_district",
]


def load_records(backend, as_of=None) -> pd.DataFrame:
    """Identity block of every record in the as-of state (default: everything known), as
    `records_frame` makes it (one block a column, a Python string a distinct value)."""
    import datetime as dt

    from outcomes.eventstore.schema import as_of_sql

    day = as_of or dt.date(9999, 12, 31)

    def tables():
        with backend.transaction() as s:
            for source in SOURCES:
                cols = ", ".join(["record_id", *IDENTITY, f"{RECORD_DATE[source]} as record_date"])
                sql = f"select {cols} from ({as_of_sql(source)}) st order by record_id"
                yield source, s.fetch(sql, {"as_of": day})

    return records_frame(tables())


def records_frame(tables) -> pd.DataFrame:
    """The run's records from one Arrow table a source, (name, table) pairs (record_id, the
    identity block, record_date), taken one at a time (a generator: each source's Arrow table
    freed before the next is read): the sources' rows one after the other, a `source` column
    first, the dates as datetime64[ns]. Each source made into pandas as it comes (a Python string
    a distinct value: its Bloom filters and keys are long, so Arrow's bytes a record would cost
    more than the frame), then the frames joined column by column, each column freed from the
    sources' frames once joined, into a frame whose columns are blocks of their own: `pd.concat`
    held every column twice, and deleting a column of a block shared by others (`drop`) copied
    them all, where deleting a column of its own (`drop_columns`) frees it alone."""
    frames = []
    for name, t in tables:
        frame = t.to_pandas(split_blocks=True, self_destruct=True, date_as_object=False)
        del t
        if len(frame):
            frames.append((name, frame))
    cols = ["source", "record_id", *IDENTITY, "record_date"]
    if not frames:
        out = pd.DataFrame({c: pd.Series(dtype=object) for c in cols})
        for c in ("date_of_birth", "record_date"):
            out[c] = pd.to_datetime(out[c])
        return out
    source = np.empty(sum(len(f) for _, f in frames), dtype=object)
    at = 0
    for name, frame in frames:
        source[at : at + len(frame)] = name
        at += len(frame)
    columns = {"source": source}
    for c in frames[0][1].columns:
        values = np.concatenate([frame[c].to_numpy() for _, frame in frames])
        for _, frame in frames:
            del frame[c]
        if c in ("date_of_birth", "record_date"):
            values = values.astype("datetime64[ns]")
        columns[c] = values
    del frames
    return pd.DataFrame(columns, copy=False)  # not consolidated: a block a column


def drop_columns(frame: pd.DataFrame, columns) -> None:
    """Delete `columns` from `frame` in place, freeing them. A column alone in its block (as
    `records_frame` makes every column) is deleted without touching the others; where columns
    share a block, `drop` copies the rest (`del` would keep the deleted column alive in views of
    that block)."""
    columns = [c for c in columns if c in frame.columns]
    mgr = frame._mgr
    try:
        alone = all(mgr.blocks[mgr.blknos[frame.columns.get_loc(c)]].shape[0] == 1 for c in columns)
    except (AttributeError, IndexError, TypeError):  # another pandas: copy, as before
        alone = False
    if alone:
        for c in columns:
            del frame[c]
    elif columns:
        frame.drop(columns=columns, inplace=True)


def build_variants(records: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Assign each record its node and variant; return (records with `node`, `variant`), variants.
    The columns are added to `records` itself (no copy of millions of rows)."""
    r = records
    codes, uniq = pd.factorize(node_names(r))
    r["node"] = uniq[codes]  # one string object per node, not per record
    rank = np.empty(len(uniq), dtype=np.int64)
    rank[np.argsort(uniq, kind="stable")] = np.arange(len(uniq))  # the nodes in sorted order
    r["variant"] = variant = group_numbers(r, VARIANT_KEY, {"node": (rank[codes], len(uniq))})
    del codes, uniq, rank
    # each variant's first record (as drop_duplicates keeps it), its columns taken once each: no
    # copy of every column of the records' first rows, re-indexed and sorted
    first = first_rows(variant)
    index = pd.Index(np.arange(len(first), dtype=variant.dtype), name="variant")
    # a block a column (copy=False): not copied again into one block of every object column
    columns = {c: r[c].to_numpy()[first] for c in ["node", "source", *VARIANT_COLUMNS]}
    variants = pd.DataFrame(columns, index=index, copy=False)
    del columns
    add_birth_keys(variants)
    return r, variants


def group_numbers(frame: pd.DataFrame, keys: list[str], coded: dict | None = None) -> np.ndarray:
    """`frame.groupby(keys, sort=True, dropna=False).ngroup()` as an int64 array: each row's
    group, groups numbered in the order of their keys (a missing value after every other), made
    key by key — each key's sorted codes folded into the groups so far and renumbered — so that
    one key's codes are held at a time, not every key's at once with pandas' hash tables.
    `coded` gives a key's sorted codes (missing: the largest) and their number, made already."""
    group, n = np.zeros(len(frame), dtype=np.int64), 1  # n: at most n groups so far
    for key in keys:
        if coded and key in coded:
            codes, size = coded[key]
        else:
            codes, uniques = pd.factorize(frame[key], sort=True)  # missing: -1
            size = len(uniques) + 1
            codes = np.where(codes < 0, size - 1, codes)
            del uniques
        if n * size >= 2**62:  # the next key's codes would not fit beside these: renumber first
            group, n = _renumbered(group)
        group = group * size + codes
        n *= size
        del codes
    return _renumbered(group)[0]


def _renumbered(group: np.ndarray) -> tuple[np.ndarray, int]:
    """Groups renumbered 0..m-1 in the same order, and m."""
    uniques, group = np.unique(group, return_inverse=True)
    return group.astype(np.int64, copy=False).reshape(-1), len(uniques)


def first_rows(group: np.ndarray) -> np.ndarray:
    """The position of each group's first row, for groups numbered 0..n-1 (`group`: each row's)."""
    n = int(group.max()) + 1 if len(group) else 0
    first = np.empty(n, dtype=np.int64)
    first[group[::-1]] = np.arange(len(group) - 1, -1, -1)
    return first


class RecordIds:
    """A run's record ids as integer codes: one Arrow string array (`ids`, about 16 bytes a
    record) sorted by source, then record id, and each record's position in it (`rid`, int32), in
    place of a Python string a record (about 70 bytes). Sources are sorted by name and record ids
    as Python compares strings (Arrow sorts UTF-8 bytes: the same order), so sorting by `rid`
    sorts by (source, record_id). `names` gives the strings back where rows are written."""

    def __init__(self, ids: pa.Array, bounds: dict[str, tuple[int, int]]) -> None:
        self.ids, self.bounds = ids, bounds

    @classmethod
    def encode(cls, records: pd.DataFrame) -> RecordIds:
        """Replace `records["record_id"]` by `rid`, in place (at the same column position)."""
        source = records["source"].to_numpy(dtype=object)
        names = pa.array(records["record_id"].to_numpy(dtype=object), pa.string())
        parts, bounds, start = [], {}, 0
        for name in sorted(pd.unique(source)):
            at = np.flatnonzero(source == name)
            parts.append(at[pc.sort_indices(names.take(pa.array(at))).to_numpy()])  # a stable sort
            bounds[name] = (start, start + len(at))
            start += len(at)
        order = np.concatenate(parts) if parts else np.array([], dtype=np.int64)
        code = np.empty(len(order), dtype=np.int32 if len(order) < 2**31 else np.int64)
        code[order] = np.arange(len(order), dtype=code.dtype)
        ids = names.take(pa.array(order))
        del names
        at = records.columns.get_loc("record_id")
        drop_columns(records, ["record_id"])
        records.insert(at, "rid", code)
        return cls(ids, bounds)

    def names(self, codes) -> pa.Array:
        """The record ids of these codes (an Arrow string array)."""
        return self.ids.take(pa.array(np.asarray(codes)))

    def objects(self, codes) -> np.ndarray:
        """The record ids of these codes as a numpy array of Python strings (for a slice or a few rows)."""
        return self.names(codes).to_numpy(zero_copy_only=False)

    def codes(self, source, record_id) -> np.ndarray:
        """The codes of records named by (source, record_id) (-1 where the run holds no such record)."""
        source = np.asarray(source, dtype=object)
        record = pa.array(np.asarray(record_id, dtype=object), pa.string())
        out = np.full(len(source), -1, dtype=np.int64)
        for name, (a, b) in self.bounds.items():
            at = np.flatnonzero(source == name)
            if not len(at):
                continue
            found = pc.index_in(record.take(pa.array(at)), value_set=self.ids.slice(a, b - a))
            found = found.to_numpy(zero_copy_only=False)
            ok = ~pd.isna(found)
            out[at[ok]] = found[ok].astype(np.int64) + a
        return out

    def with_codes(self, frame: pd.DataFrame, prefixes=("",)) -> pd.DataFrame:
        """`frame` with a code column for each (`{p}source`, `{p}record_id`) pair: `{p}rid`."""
        frame = frame.copy()
        for p in prefixes:
            frame[f"{p}rid"] = self.codes(frame[f"{p}source"].to_numpy(), frame[f"{p}record_id"].to_numpy())
        return frame

    def named(self, frame: pd.DataFrame) -> pd.DataFrame:
        """`frame` with `rid` replaced by `record_id` (Python strings), at the same column position."""
        at = frame.columns.get_loc("rid")
        out = frame.drop(columns="rid")
        out.insert(at, "record_id", self.objects(frame["rid"].to_numpy()))
        return out


def shed_identity(r: pd.DataFrame, variants: pd.DataFrame | None = None) -> pd.DataFrame:
    """Once variants are made: the records' identity block kept once per variant rather than once
    per record. Returns a frame whose row i is variant i's value of each identity column that
    holds one value per variant (tokens determine initials, Soundex and Bloom filters; a node, its
    source person key), and drops those columns from `r` in place; a column holding two values
    within one variant anywhere stays in `r`. `identity_rows` puts the block back, slice by slice,
    for writing. Given the `variants` that `build_variants` made of `r` (each variant's first
    record), a column they hold is shared with them (the same values: not a second array)."""
    variant = r["variant"].to_numpy()
    first = first_rows(variant)  # each variant's first record
    n = len(first)
    shared = variants is not None and len(variants) == n
    out = {}
    for c in IDENTITY:
        if c not in r:
            continue
        values = r[c].to_numpy()
        once = variants[c].to_numpy() if shared and c in variants else values[first]
        spread = once[variant]
        missing = pd.isna(values)
        same = np.asarray(missing == pd.isna(spread)) & (missing | np.asarray(values == spread, dtype=bool))
        del spread, missing
        if same.all():
            out[c] = once
    ident = pd.DataFrame(out, index=pd.RangeIndex(n), copy=False)
    drop_columns(r, list(out))
    return ident


def code_identity(ident: pd.DataFrame, keep=()) -> pd.DataFrame:
    """The identity block per variant (`shed_identity`) with its columns held as categorical codes
    (a code a variant and each distinct value once) rather than a pointer a variant, for the
    stages that only write it back (`identity_rows` gives the same rows). Columns in `keep` (held
    by the variants still: coding them would add codes beside their values) and object columns
    whose missing values are not all None (decoded, they could not be told apart) stay as they are."""
    out = {}
    for c in ident.columns:
        values = ident[c].to_numpy()
        if c in keep or not (values.dtype == object or values.dtype.kind == "M"):
            out[c] = values
            continue
        codes, uniques = pd.factorize(values)
        if values.dtype == object and not all(v is None for v in values[codes < 0]):
            out[c] = values
            continue
        out[c] = pd.Categorical.from_codes(codes, categories=uniques)
        del codes, uniques
    return pd.DataFrame(out, index=ident.index, copy=False)


class Sealed:
    """A write-once, read-once byte stream on disk, encrypted: AES-256-GCM under a random key made
    here and held only in this object's memory (never written anywhere), the bytes sealed in chunks
    of CHUNK, each with a fresh random nonce and its index as associated data (a chunk moved,
    dropped or altered fails to open). What a spill writes of identities (names, dates of birth,
    postcodes, record ids, source keys) is ciphertext in the file's blocks and through
    /proc/<pid>/fd alike; only this process, holding the key, reads it back. A file-like sink for
    Arrow's writers (`write`, `tell`, `flush`, `close`)."""

    CHUNK = 4 << 20

    def __init__(self, sink, source) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self._aead = AESGCM(AESGCM.generate_key(bit_length=256))
        self._sink, self._source = sink, source  # the same file opened for writing and for reading
        self._buffer = bytearray()
        self._chunks = 0
        self.size = 0  # plaintext bytes written
        self.closed = False

    def write(self, data) -> int:
        view = memoryview(data).cast("B")
        self._buffer += view
        self.size += len(view)
        while len(self._buffer) >= self.CHUNK:
            self._seal(bytes(self._buffer[: self.CHUNK]))
            del self._buffer[: self.CHUNK]
        return len(view)

    def _seal(self, plain: bytes) -> None:
        import os
        import struct

        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, plain, struct.pack("<Q", self._chunks))
        self._sink.write(struct.pack("<I", len(sealed)) + nonce + sealed)
        self._chunks += 1

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        pass  # a chunk is sealed whole; `close` seals the last

    def writable(self) -> bool:
        return not self.closed

    def close(self) -> None:
        if self.closed:
            return
        if self._buffer:
            self._seal(bytes(self._buffer))
            self._buffer = bytearray()
        self._sink.close()
        self.closed = True

    def discard(self) -> None:
        """Both handles closed, the rest unread (the unlinked file then freed); the key dropped."""
        self._sink.close()
        self._source.close()
        self._buffer = bytearray()
        self.closed = True

    def read_back(self) -> bytearray:
        """Every byte written, decrypted (the stream closed first), read once: the file is then freed."""
        import struct

        self.close()
        out = bytearray(self.size)
        at = 0
        with self._source as f:
            for i in range(self._chunks):
                (n,) = struct.unpack("<I", f.read(4))
                nonce = f.read(12)
                plain = self._aead.decrypt(nonce, f.read(n), struct.pack("<Q", i))
                out[at : at + len(plain)] = plain
                at += len(plain)
        if at != self.size:
            raise OSError(f"a spill read back {at:,} of its {self.size:,} bytes")
        return out


def sealed_files(count: int, folder: str | None = None) -> list[Sealed]:
    """`count` `Sealed` streams in files of a private temporary folder (mode 0700), each opened for
    writing and for reading and the folder removed at once, so nothing named is left on disk
    however the run ends (a kill included: the kernel frees an unlinked file with its last handle)."""
    import tempfile

    spill = tempfile.mkdtemp(prefix="outcomes-spill-", dir=folder)
    out = []
    try:
        for i in range(count):
            path = Path(spill) / f"{i}.sealed"
            sink = open(path, "wb")  # noqa: SIM115 - closed by `Sealed.close`
            out.append(Sealed(sink, open(path, "rb")))  # noqa: SIM115 - held until `read_back`, past the unlink
    finally:
        _remove_folder(spill)
    return out


class SpilledFrame:
    """A frame the run does not read for a while, held on disk rather than in memory: written as
    Arrow IPC, encrypted under a key held only in memory (`Sealed`), to a file in a private
    temporary folder (mode 0700), kept open and its folder removed at once, so nothing named is
    left on disk however the run ends (an exception, or a kill the finalisers never see: the kernel
    frees an unlinked file with its last handle), and no identity is on disk in the clear. `load`
    reads it back whole, once. Columns come back as they went (categorical codes and categories,
    datetimes, strings and None)."""

    def __init__(self, frame: pd.DataFrame, folder: str | None = None) -> None:
        import pyarrow.feather as feather

        self.rows, self.columns = len(frame), list(frame.columns)
        self.index = frame.index
        (self._file,) = sealed_files(1, folder)
        try:
            feather.write_feather(frame.reset_index(drop=True), self._file, compression="uncompressed")
        finally:
            self._file.close()

    def __len__(self) -> int:
        return self.rows

    def load(self) -> pd.DataFrame:
        import pyarrow as pa

        table = pa.ipc.open_file(pa.BufferReader(pa.py_buffer(self._file.read_back()))).read_all()
        frame = table.to_pandas(split_blocks=True, self_destruct=True, date_as_object=False)
        del table
        frame.index = self.index
        return frame if list(frame.columns) == self.columns else frame[self.columns]


def _remove_folder(folder: str) -> None:
    import shutil

    shutil.rmtree(folder, ignore_errors=True)


def _decoded(column: pd.Series, rows: np.ndarray) -> np.ndarray:
    """The values of a column of `code_identity`'s frame at positions `rows`, as they were."""
    if not isinstance(column.dtype, pd.CategoricalDtype):
        return column.to_numpy()[rows]
    codes = column.cat.codes.to_numpy()[rows]
    categories = column.cat.categories.to_numpy()
    if not len(categories):
        values = np.empty(len(rows), dtype=categories.dtype)
    else:
        values = categories[np.maximum(codes, 0)]
    missing = codes < 0
    if missing.any():
        values[missing] = np.datetime64("NaT") if values.dtype.kind == "M" else None
    return values


class IdentityArrow:
    """The identity block per variant (`code_identity`'s frame) for writing as Arrow: each
    categorical column of few distinct values (at most `share` of the variants: initials, sex,
    districts, Soundex codes, dates of birth) has them converted to Arrow once, a slice's rows then
    taken from them by code in Arrow (no Python object a row decoded, then converted again); other
    columns (a Bloom filter a variant: converted once, they would be a second copy of the block)
    are converted slice by slice. `columns(variants)` gives a slice's columns, as `identity_rows`
    gives them in pandas (the same values: nulls where a code is missing)."""

    def __init__(self, ident: pd.DataFrame | None, share: float = 0.05) -> None:
        self.ident = ident
        self.values: dict[str, pa.Array] = {}
        for c in ident.columns if ident is not None else ():
            column = ident[c]
            if isinstance(column.dtype, pd.CategoricalDtype) and len(column.cat.categories) <= share * len(ident):
                self.values[c] = pa.array(column.cat.categories.to_numpy(), from_pandas=True)

    def columns(self, variants: np.ndarray) -> dict[str, pa.Array]:
        out = {}
        for c in self.ident.columns if self.ident is not None else ():
            column = self.ident[c]
            if c in self.values:
                codes = column.cat.codes.to_numpy()[variants]
                out[c] = self.values[c].take(pa.array(codes, mask=codes < 0))
            else:
                out[c] = pa.array(_decoded(column, variants), from_pandas=True)
        return out


def identity_rows(part: pd.DataFrame, ident: pd.DataFrame | None) -> pd.DataFrame:
    """Rows of the run's records (`part`, a slice holding `variant`) with the identity columns
    `shed_identity` took out of them put back from their variants (decoded where `code_identity`
    holds them as codes)."""
    if ident is None or not len(ident.columns):
        return part
    rows = part["variant"].to_numpy()
    back = pd.DataFrame({c: _decoded(ident[c], rows) for c in ident.columns}, index=part.index)
    return pd.concat([part, back], axis=1)


def node_names(records: pd.DataFrame) -> np.ndarray:
    """Each record's node: its source person key where it has one (a key joins its own records),
    else the record itself."""
    source = records["source"].to_numpy(dtype=object)
    key = records["source_person_key"].to_numpy(dtype=object)
    record = records["record_id"].to_numpy(dtype=object)
    keyed = records["source_person_key"].notna().to_numpy()
    out = np.empty(len(records), dtype=object)
    # Made source by source and, for keys, once per distinct key: no string per record is made
    # and thrown away (a million people's 9 million records made 18 million).
    for name in pd.unique(source):
        mine = source == name
        rows = mine & keyed
        if rows.any():
            codes, keys = pd.factorize(key[rows])
            out[rows] = np.add(f"{name}|k|", np.asarray(keys, dtype=object))[codes]
        rows = mine & ~keyed
        if rows.any():
            out[rows] = np.add(f"{name}|r|", record[rows])
    return out


def add_birth_keys(frame: pd.DataFrame) -> None:
    """The blocking keys derived from `date_of_birth` (a datetime column), added in place: year,
    month, day, and the date with day and month swapped where that is a date of its own; and
    `keyless_forename_token`, `keyless_surname_token`: the name tokens where the date of birth
    and the postcode district are both null."""
    dob = frame["date_of_birth"]
    frame["birth_year"] = dob.dt.year.astype("Int64")
    frame["birth_month"] = dob.dt.month.astype("Int64")
    frame["birth_day"] = dob.dt.day.astype("Int64")
    swappable = dob.notna() & (dob.dt.day <= 12) & (dob.dt.day != dob.dt.month)
    swapped = pd.to_datetime(
        {
            "year": dob.dt.year.where(swappable, 2000),
            "month": dob.dt.day.where(swappable, 1),
            "day": dob.dt.month.where(swappable, 1),
        },
        errors="coerce",
    )
    frame["dob_swapped"] = swapped.where(swappable)
    # The name tokens of a record with neither a date of birth nor a postcode district (no key in
    # any other pass): the left keys of the pass that finds it by its names alone.
    keyless = dob.isna() & frame["postcode_district"].isna()
    for c in ("forename_token", "surname_token"):
        frame[f"keyless_{c}"] = frame[c].where(keyless)


def learn_aliases(records: pd.DataFrame, column: str, min_nodes: int = 2, min_lift: float = 5.0) -> frozenset:
    """Pairs of values ("a|b", a < b) that sources already know to be one person's: both
    appear under one source person key in at least `min_nodes` nodes, and at least `min_lift`
    times as often as two values of such nodes would by chance (nodes holding a and another
    value, times nodes holding b and another, over all nodes holding two values or more).
    Nicknames (BILL and WILLIAM) repeat across many people; typing errors rarely repeat, an
    alias name recorded by the police pairs common names about as often as chance does, and
    twins never share a key."""
    # the two columns of the keyed records (not a copy of every column of most records)
    keyed = records.loc[records["source_person_key"].notna() & records[column].notna(), ["node", column]]
    per_node = keyed.drop_duplicates()
    del keyed
    per_node = per_node[per_node.groupby("node")[column].transform("size") > 1]
    if per_node.empty:
        return frozenset()
    pairs = per_node.merge(per_node, on="node", suffixes=("_a", "_b"))
    pairs = pairs[pairs[f"{column}_a"] < pairs[f"{column}_b"]]
    counts = pairs.groupby([f"{column}_a", f"{column}_b"]).size().rename("n").reset_index()
    holders = per_node[column].value_counts()
    expected = counts[f"{column}_a"].map(holders) * counts[f"{column}_b"].map(holders) / per_node["node"].nunique()
    keep = (counts["n"] >= min_nodes) & (counts["n"] >= min_lift * expected)
    return frozenset((counts[f"{column}_a"] + "|" + counts[f"{column}_b"])[keep])


def records_from_deliveries(landing, as_of=None, memory_limit: str | int | None = None) -> tuple[pd.DataFrame, object]:
    """The identity block of every record as the deliveries in `landing` leave it (and the
    latest extract date), without an event store: for a full source, the records of its latest
    extract; for a delta source, each record's latest row unless that retracts it (quashed,
    withdrawn). Read by DuckDB straight from the files; for benchmarks and bulk first runs.
    DuckDB's memory limit is half of `memory_limit` (default engine.MEMORY_DEFAULT), as a link's
    warehouse gets; the records come out as `records_frame` makes them."""
    import datetime as dt
    import tempfile
    from pathlib import Path

    import duckdb

    from linkage.engine import MEMORY_DEFAULT, parse_size
    from outcomes.eventstore.schema import RETRACTIONS

    files = sorted(Path(landing).glob("*_*_*.parquet"))
    when = {
        f: dt.date(int(f.name.split("_")[-2][:4]), int(f.name.split("_")[-2][4:6]), int(f.name.split("_")[-2][6:]))
        for f in files
    }
    if as_of is not None:
        files = [f for f in files if when[f] <= as_of]

    def tables():
        spill = tempfile.TemporaryDirectory(prefix="outcomes-read-")  # where DuckDB spills past its share
        con = duckdb.connect()
        con.execute(f"set memory_limit = '{max(parse_size(memory_limit or MEMORY_DEFAULT) // 2 // 2**20, 64)}MiB'")
        con.execute(f"set temp_directory = '{spill.name}'")
        for name, source in SOURCES.items():
            mine = [f for f in files if f.name.rsplit("_", 2)[0] == name]
            if not mine:
                continue
            cols = ", ".join(["record_id", *IDENTITY, f"{RECORD_DATE[name]} as record_date"])
            if source.delivery_type == "full":
                latest = max(mine, key=lambda f: (when[f], f.name))
                sql = f"select {cols} from read_parquet('{latest}')"
            else:
                status = source.status_column
                retracted = ", ".join(f"'{r}'" for r in RETRACTIONS)
                paths = ", ".join(f"'{f}'" for f in mine)
                # only the columns read (not every column of every delivery through the window)
                inner = ", ".join(["record_id", *IDENTITY, RECORD_DATE[name]])
                sql = (
                    f"select {cols} from (select {inner}, {status}, row_number() over (partition by record_id "
                    f"order by filename desc) rk from read_parquet([{paths}], filename = true, "
                    f"union_by_name = true)) x where rk = 1 and coalesce({status}, '') not in ({retracted})"
                )
            yield name, con.sql(sql).to_arrow_table()
        con.close()
        spill.cleanup()

    return records_frame(tables()), max(when[f] for f in files)


def true_persons(truth, keys: pd.DataFrame | None = None, persons=None) -> pd.DataFrame:
    """Ground truth (synthetic data): source, record_id and true person_id of the records `keys`
    (source, record_id), or of every record of the true persons `persons`; filtered in Arrow
    before pandas sees it, so that a month reads only its own rows of a large truth file."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    cols = ["source", "record_id", "person_id"]
    t = pq.read_table(Path(truth) / "records.parquet", columns=cols)
    if keys is not None:
        t = t.filter(pc.is_in(t["record_id"], value_set=pa.array(pd.unique(keys["record_id"]), pa.string())))
        return t.to_pandas().merge(keys[["source", "record_id"]].drop_duplicates(), on=["source", "record_id"])
    if persons is not None:
        t = t.filter(pc.is_in(t["person_id"], value_set=pa.array(list(persons), pa.string())))
    return t.to_pandas()
