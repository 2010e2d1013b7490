"""A first run under a small memory budget (`link(memory_limit=)`: DuckDB's share and the scoring
chunks) writes what an unbounded one writes: the same spine, decisions, identities, stored keys
and quality tables."""

from __future__ import annotations

import pytest

from outcomes.synth.generator import SynthConfig, synthesise
from tests.linkage_tables import LINK_TABLES as TABLES


@pytest.fixture(scope="module")
def population(tmp_path_factory):
    root = tmp_path_factory.mktemp("memory")
    synthesise(SynthConfig(persons=300, seed=11, start="2024-01", months=2), root)
    return root


def _first_run(population, path, **budget):
    from linkage.records import records_from_deliveries
    from linkage.run import link
    from outcomes.eventstore import connect
    from outcomes.warehouse import resolve_target

    records, last = records_from_deliveries(population / "landing")
    with connect(resolve_target(str(path))) as backend:
        result = link(backend, truth=population / "truth", records=records, as_of=last, **budget)
        setting = backend.con.execute("select current_setting('memory_limit')").fetchall()[0][0]
        with backend.transaction() as s:
            tables = {
                t: s.fetch(f"select * exclude (run_id) from {t} order by {order}").to_pylist()
                if t != "linkage.record_keys"
                else s.fetch(f"select * from {t} order by {order}").to_pylist()
                for t, order in TABLES.items()
            }
    return result, setting, tables


def test_a_first_run_under_a_small_budget_writes_what_an_unbounded_one_writes(population, tmp_path):
    unbounded, _, whole = _first_run(population, tmp_path / "unbounded.duckdb", memory_limit="none")
    small, setting, bounded = _first_run(population, tmp_path / "small.duckdb", memory_limit="512MB", chunk=200)
    assert setting == "244.0 MiB"  # DuckDB holds half the budget
    assert unbounded.chunks == 1 and small.chunks > 2  # the pairs scored in several chunks
    assert small.candidate_pairs == unbounded.candidate_pairs > 0
    counts = [(r.links, r.reviews, r.persons_new) for r in (small, unbounded)]
    assert counts[0] == counts[1]
    for table, rows in whole.items():
        assert rows, table
        assert bounded[table] == rows, table


def test_term_frequencies_per_variant_are_those_per_record_and_score_the_same():
    """The model's term frequencies counted once per variant, weighted by its records, equal
    those counted over every record; scoring from each variant's frequency looked up once gives
    the weights scoring from its value gives."""
    import numpy as np
    import pandas as pd

    import linkage.model as fs
    from linkage.compare import Comparer
    from linkage.engine import score_chunk, tf_arrays
    from linkage.records import build_variants
    from linkage.spec import IDENTITY as spec

    names = ["ANN", "BOB", "ANN", None, "CAT", "BOB", "ANN"]
    records = pd.DataFrame(
        {
            "source": ["treatment", "treatment", "convictions", "convictions", "benefits", "benefits", "deaths"],
            "record_id": [f"R{i}" for i in range(7)],
            "source_person_key": ["K1", "K1", None, "P2", "N3", None, None],
            "forename_token": names,
            "surname_token": ["SMITH", "JONES", "SMITH", "SMITH", "JONES", "JONES", "SMITH"],
            "forename_bloom": None,
            "surname_bloom": None,
            "surname_soundex_token": "S530",
            "forename_initial": [n[0] if n else None for n in names],
            "surname_initial": "S",
            "date_of_birth": pd.to_datetime(["1980-01-02"] * 3 + [None, "1975-05-06", "1975-05-06", "1980-01-02"]),
            "sex": "M",
            "postcode_district": "LS1",
        }
    )
    r, variants = build_variants(records)
    counts = np.bincount(r["variant"].to_numpy(), minlength=len(variants))
    assert fs.term_frequencies(variants, spec, counts) == fs.term_frequencies(r, spec)
    model = fs.Model("t", 0.01, {c.name: [0.5] * (c.levels) for c in spec.comparisons}, {})
    model.u = {c.name: [0.3] * (c.levels) for c in spec.comparisons}
    model.tf = fs.term_frequencies(r, spec)
    comparer = Comparer(variants, spec)
    a, b = np.triu_indices(len(variants), 1)
    by_value = score_chunk(comparer, model, spec, tf_arrays(variants, spec), a, b)
    by_frequency = score_chunk(comparer, model, spec, tf_arrays(variants, spec, model), a.astype(np.int32), b)
    assert len(by_value) and by_value["weight"].tolist() == by_frequency["weight"].tolist()


def test_an_insert_holds_no_arrow_rows_until_commit(tmp_path):
    """`DuckDBSession.insert` reads its Arrow rows by a replacement scan and copies them: once the
    caller lets them go they are freed, not held until the transaction commits (a view
    registered for them kept every slice's Arrow data to the commit); the rows are inserted."""
    import gc

    import numpy as np
    import pyarrow as pa

    from outcomes.eventstore import connect
    from outcomes.warehouse import resolve_target

    with connect(resolve_target(str(tmp_path / "w.duckdb"))) as backend:
        with backend.transaction() as s:
            s.execute("create table t (a integer)")
            before = pa.total_allocated_bytes()
            for _ in range(3):  # 4 MB of Arrow data each, allocated by Arrow's pool
                s.insert("t", pa.table({"a": pa.array(np.arange(1_000_000)).cast(pa.int32())}))
            gc.collect()
            assert pa.total_allocated_bytes() - before < 1_000_000
        assert backend.con.execute("select count(*), sum(a) from t").fetchall() == [(3_000_000, 3 * 499_999_500_000)]


def test_compact_node_structures_answer_as_the_dicts_they_replace():
    """The union-find holds only joined nodes and keyed roots, node spans and node variants are
    index-backed arrays (linkage.cluster): the same answers as a dict a node, and the union-find the
    same persons, roots and conflicts as one that held every node."""
    import numpy as np
    import pandas as pd

    from linkage.cluster import NodeVariants, UnionFind, node_spans
    from linkage.engine import MIN_CHUNK, PAIR_BYTES, fit_chunk

    rng = np.random.default_rng(3)
    nodes = np.array([f"s{i % 3}|{'k' if i % 2 else 'r'}|{i}" for i in range(60)], dtype=object)
    per_variant = nodes[rng.integers(0, 60, 400)]
    want = pd.DataFrame({"node": per_variant}).groupby("node", sort=False).indices
    got = NodeVariants(per_variant)
    assert len(got) == len(want)
    for n, v in want.items():
        assert got[n].dtype == np.int64 and got[n].tolist() == v.tolist()

    records = pd.DataFrame({"node": per_variant, "record_day": rng.integers(0, 900, 400).astype(float)})
    records.loc[::7, "record_day"] = np.nan
    spans = node_spans(records)
    frame = records.dropna().groupby("node")["record_day"].agg(["min", "max"])
    assert len(spans) == len(frame) and "nowhere" not in spans
    for n, row in frame.iterrows():
        assert n in spans and spans[n] == (row["min"], row["max"])

    keys = {nodes[0]: {"deaths": frozenset([nodes[0]])}, nodes[6]: {"deaths": frozenset([nodes[6]])}, nodes[9]: {}}
    uf = UnionFind(nodes, keys, spans)
    merges = rng.integers(0, 60, (80, 2))
    truth = {n: {n} for n in nodes}  # the persons, by brute force
    refused = 0
    for i, j in merges:
        ra, rb = uf.find(nodes[i]), uf.find(nodes[j])
        if ra == rb:
            continue
        if uf.conflict(ra, rb):
            refused += 1
            assert nodes[0] in truth[ra] | truth[rb] and nodes[6] in truth[ra] | truth[rb]
            continue
        uf.union(ra, rb)
        joined = truth[ra] | truth[rb]
        for n in joined:
            truth[n] = joined
    assert refused > 0
    assert len(uf.parent) == len(nodes) - len(uf.roots())  # only joined nodes are held
    assert sorted(uf.roots()) == sorted({min(p) for p in truth.values()})
    for n in nodes:
        assert uf.find(n) == min(truth[n])
        assert sorted(uf.members(uf.find(n))) == sorted(truth[n])

    assert fit_chunk(1_000_000, None, 10**12) == 1_000_000
    assert fit_chunk(1_000_000, 4 << 30, 1 << 30) == 1_000_000
    assert fit_chunk(1_000_000, 4 << 30, (4 << 30) - 300_000 * PAIR_BYTES) == 300_000
    assert fit_chunk(1_000_000, 4 << 30, 5 << 30) == MIN_CHUNK


def test_record_ids_as_codes_sort_name_and_find_records_as_their_strings_do():
    """`records.RecordIds`: a run's record ids as integer codes into one Arrow table. Sorting by
    code is sorting by (source, record_id) as pandas sorts the strings (non-ASCII, prefixes and
    the same id in two sources included); the codes give the strings back; a lookup by
    (source, record_id) finds each record and -1 for one the run does not hold."""
    import numpy as np
    import pandas as pd

    from linkage.records import RecordIds

    ids = ["b10", "b2", "Ä1", "a", "ab", "b1", "z", "ä", "a", "é9", "b10x", "B2"]
    sources = ["treatment", "deaths", "treatment", "deaths", "treatment", "treatment"] * 2
    frame = pd.DataFrame({"source": sources, "record_id": ids, "node": [f"n{i}" for i in range(len(ids))]})
    expected = frame.sort_values(["source", "record_id"]).index.to_numpy()
    coded = frame.copy()
    table = RecordIds.encode(coded)
    assert list(coded.columns) == ["source", "rid", "node"] and coded["rid"].dtype == np.int32
    assert np.argsort(coded["rid"].to_numpy(), kind="stable").tolist() == expected.tolist()
    assert table.objects(coded["rid"].to_numpy()).tolist() == ids
    assert table.named(coded).equals(frame)
    look = table.codes(["deaths", "treatment", "deaths", "benefits", "treatment"], ["a", "a", "zz", "a", "Ä1"])
    rid = coded["rid"].to_numpy()
    assert look.tolist() == [rid[3], rid[8], -1, -1, rid[2]]
    pairs = pd.DataFrame(
        {"left_source": ["treatment"], "left_record_id": ["ab"], "right_source": ["x"], "right_record_id": ["ab"]}
    )
    with_codes = table.with_codes(pairs, ("left_", "right_"))
    assert with_codes[["left_rid", "right_rid"]].to_numpy().tolist() == [[rid[4], -1]]


def test_records_are_read_as_one_block_a_column_and_match_a_frame_per_source(population):
    """`records_from_deliveries` (through `records.records_frame`) gives the frame the sources'
    frames concatenated give — the same rows, values and dtypes — but with each column a block of
    its own and each distinct string of a source one object, so that a column is deleted (`drop_columns`)
    without copying the others, and the deleted strings are freed; the run's frame of records
    given in that form shares their columns (a shallow copy), adding to it leaves the caller's."""
    import sys

    import numpy as np
    import pandas as pd

    from linkage.records import IDENTITY, drop_columns, records_from_deliveries
    from linkage.run import _given_records

    records, _ = records_from_deliveries(population / "landing")
    cols = ["source", "record_id", *IDENTITY, "record_date"]
    assert list(records.columns) == cols and records._mgr.nblocks == len(cols)
    assert str(records["date_of_birth"].dtype) == str(records["record_date"].dtype) == "datetime64[ns]"
    # the reference: a frame a source (object dates made datetimes), concatenated
    frames = []
    for name, part in records.groupby("source", sort=False):
        frame = part.drop(columns="source").astype({"date_of_birth": object, "record_date": object})
        frame.insert(0, "source", name)
        frames.append(frame)
    reference = pd.concat(frames, ignore_index=True)
    for c in ("date_of_birth", "record_date"):
        reference[c] = pd.to_datetime(reference[c])
    pd.testing.assert_frame_equal(records, reference)
    for _, part in records.groupby("source"):
        tokens = part["forename_token"].dropna()
        assert tokens.map(id).nunique() == tokens.nunique()  # one object a distinct string (a source's)

    mine = _given_records(records)
    assert np.shares_memory(mine["record_id"].to_numpy(), records["record_id"].to_numpy())
    mine["node"] = 1
    drop_columns(mine, ["surname_token"])
    assert "node" not in records and "surname_token" in records  # the caller's frame as it was

    kept = records["forename_token"].to_numpy()
    one = records["record_id"].iloc[0]
    held = sys.getrefcount(one)
    del mine
    drop_columns(records, ["record_id"])
    assert sys.getrefcount(one) == held - 1  # freed from the frame: no view keeps the column
    assert np.shares_memory(kept, records["forename_token"].to_numpy())  # the others not copied
    consolidated = reference.copy()
    drop_columns(consolidated, ["record_id"])  # columns sharing a block: copied, as `drop` does
    assert "record_id" not in consolidated and len(consolidated.columns) == len(cols) - 1


def test_truth_labels_by_record_code_are_those_a_merge_by_name_gives(population):
    """`run._truth_labels` matches the ground truth to the records by code in Arrow: each variant
    labelled with the person of its first record the truth names, persons numbered in the order of
    those records, as merging the truth's strings with the records' gave; `build_variants` takes
    each variant's first record as drop_duplicates did, numbering variants as `ngroup` did."""
    import numpy as np
    import pandas as pd

    from linkage.records import (
        VARIANT_COLUMNS,
        VARIANT_KEY,
        RecordIds,
        build_variants,
        group_numbers,
        records_from_deliveries,
        true_persons,
    )
    from linkage.run import _truth_labels

    records, _ = records_from_deliveries(population / "landing")
    r, variants = build_variants(records)
    ngroup = r.groupby(VARIANT_KEY, sort=True, dropna=False).ngroup().to_numpy()
    assert r["variant"].to_numpy().tolist() == ngroup.tolist()  # records.group_numbers
    odd = pd.DataFrame(
        {
            "a": ["x", None, "y", "x", None, "b", "x"],
            "b": pd.to_datetime(["2000-01-01", None, None, "1999-01-01", None, "2000-01-01", "2000-01-01"]),
            "c": ["m", "f", None, "m", "f", "f", "m"],
        }
    )
    want = odd.groupby(["a", "b", "c"], sort=True, dropna=False).ngroup().tolist()
    assert group_numbers(odd, ["a", "b", "c"]).tolist() == want == [2, 4, 3, 1, 4, 0, 2]
    first = r.drop_duplicates("variant").set_index("variant").sort_index()[["node", "source", *VARIANT_COLUMNS]]
    pd.testing.assert_frame_equal(variants[first.columns], first)
    names = r[["source", "record_id", "variant"]].copy()
    t = true_persons(population / "truth", keys=names)
    r = r.sample(frac=1.0, random_state=5).reset_index(drop=True)  # an order of records not the truth's
    ids = RecordIds.encode(r)
    shuffled = names.sample(frac=1.0, random_state=5).reset_index(drop=True)
    m = shuffled.merge(t, on=["source", "record_id"], how="left").dropna(subset=["person_id"])
    m = m.drop_duplicates("variant")
    want = np.full(len(variants), -1, dtype=np.int64)
    want[m["variant"].to_numpy()] = pd.factorize(m["person_id"])[0]
    got = _truth_labels(population / "truth", r, ids, len(variants))
    assert (got >= 0).sum() > 0 and (got == -1).sum() < len(got)
    assert got.tolist() == want.tolist()


def _aliases_joined(tok_a, tok_b, aliases):
    """The alias lookup as it was: every pair's tokens as fixed-width unicode, joined "lo|hi"."""
    import numpy as np
    import pandas as pd

    out = np.zeros(len(tok_a), bool)
    both = pd.notna(tok_a) & pd.notna(tok_b) & (tok_a != tok_b)
    if not aliases or not both.any():
        return out
    x, y = tok_a[both].astype(str), tok_b[both].astype(str)
    first = x < y
    lo, hi = np.where(first, x, y), np.where(first, y, x)
    out[both] = pd.Series(np.char.add(np.char.add(lo, "|"), hi)).isin(aliases).to_numpy()
    return out


def test_aliases_by_rank_and_bloom_words_in_steps_are_the_joined_strings_and_one_decoding():
    """`compare.alias_mask` finds a learned alias pair by the tokens' ranks, as joining every pair's
    tokens did (either order, missing and equal tokens, a token in no alias pair, aliases holding
    "|" by the joined strings); `bloom_words` decoded a step at a time gives the words decoding every
    filter at once gave, missing filters zero."""
    import base64

    import numpy as np
    import pandas as pd

    from linkage.compare import alias_mask, bloom_words

    rng = np.random.default_rng(7)
    vocab = np.array(["BILL", "WILLIAM", "BOB", "ROBERT", "ÉMILE", "EMIL", "ANN", None, "X"], dtype=object)
    aliases = frozenset(["BILL|WILLIAM", "BOB|ROBERT", "EMIL|ÉMILE", "ANN|ROBERT"])
    tok_a, tok_b = vocab[rng.integers(0, len(vocab), 5000)], vocab[rng.integers(0, len(vocab), 5000)]
    want = _aliases_joined(tok_a, tok_b, aliases)
    assert 0 < want.sum() < len(want)
    assert alias_mask(tok_a, tok_b, aliases).tolist() == want.tolist()
    assert not alias_mask(tok_a, tok_b, frozenset()).any()
    piped = frozenset(["A|B|C", "BILL|WILLIAM"])  # a token holding "|": the joined strings decide
    assert alias_mask(tok_a, tok_b, piped).tolist() == _aliases_joined(tok_a, tok_b, piped).tolist()

    raw = rng.integers(0, 256, (23, 64), dtype=np.uint8)
    encoded = [base64.b64encode(r.tobytes()).decode() for r in raw]
    encoded[4] = encoded[17] = None
    series = pd.Series(encoded, dtype=object)
    present = series.notna().to_numpy()
    whole = np.zeros((len(series), 8), dtype=np.uint64)
    joined = b"".join(base64.b64decode(v) for v in series[present])
    whole[present] = np.frombuffer(joined, dtype=">u8").reshape(-1, 8).astype(np.uint64)
    for step in (1, 5, 100_000):
        got = bloom_words(series, step=step)
        assert got.dtype == np.uint64 and np.array_equal(got, whole)
    assert not whole[4].any() and whole[0].any()


def test_word_tables_give_the_dense_words_and_the_same_levels(population):
    """`bloom_table` and `bigram_table` hold each distinct filter once (`WordTable`): indexed, they
    give the rows `bloom_words` and `bigram_words` give (repeated and missing filters among them),
    at 4 bytes a row; and a comparer's name and string levels over every pair of a population's
    variants are those the dense words give."""
    import base64

    import numpy as np
    import pandas as pd

    from linkage.compare import (
        Comparer,
        NameLevels,
        StringLevels,
        WordTable,
        bigram_table,
        bigram_words,
        bloom_table,
        bloom_words,
    )
    from linkage.records import build_variants, records_from_deliveries
    from linkage.spec import IDENTITY as spec

    rng = np.random.default_rng(3)
    raw = rng.integers(0, 256, (5, 64), dtype=np.uint8)
    distinct = [base64.b64encode(r.tobytes()).decode() for r in raw]
    encoded = pd.Series([distinct[i] if i < 5 else None for i in rng.integers(0, 7, 400)], dtype=object)
    table = bloom_table(encoded, step=2)
    assert isinstance(table, WordTable) and len(table) == 400 and len(table.table) == 6  # five filters, missing
    assert table.codes.dtype == np.int32
    assert np.array_equal(table.dense(), bloom_words(encoded))
    rows = rng.integers(0, 400, 50)
    assert np.array_equal(table[rows], bloom_words(encoded)[rows])
    clear = pd.Series(["ANNE", "ANN", None, "ANNE", "", "BOB"] * 20, dtype=object)
    assert np.array_equal(bigram_table(clear).dense(), bigram_words(clear))

    records, _ = records_from_deliveries(population / "landing")
    _, variants = build_variants(records)
    comparer = Comparer(variants, spec)
    a, b = np.triu_indices(min(len(variants), 400), k=1)
    checked = 0
    for name, feature in comparer.features.items():
        if not isinstance(feature, (NameLevels, StringLevels)) or feature.words is None:
            continue
        assert isinstance(feature.words, WordTable)
        got = comparer.levels(name, a, b)
        feature.words = feature.words.dense()  # the dense words, as before
        if isinstance(feature, NameLevels) and hasattr(feature, "only_initial"):
            from linkage.compare import popcount

            assert np.array_equal(feature.only_initial, popcount(feature.words) <= 30)
        assert np.array_equal(comparer.levels(name, a, b), got), name
        assert len(np.unique(got)) > 1, name
        checked += 1
    assert checked >= 2


def test_a_spilled_frame_comes_back_as_it_went_and_leaves_no_file(tmp_path):
    """`records.SpilledFrame` (a whole run's identity block per variant, held on disk between
    blocking and writing): loaded, the frame is the one spilled — categorical codes with object and
    datetime categories and missing codes, strings with None, datetimes with NaT, its index — and
    nothing of it is named on disk once made (its folder removed at once, the file held by its
    open handle), nor after a write that fails."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    from linkage.records import SpilledFrame

    n = 1000
    rng = np.random.default_rng(5)
    codes = rng.integers(-1, 3, n)
    days = pd.to_datetime(["1980-01-02", "1975-12-31", "2001-07-04"])
    frame = pd.DataFrame(
        {
            "district": pd.Categorical.from_codes(codes, categories=["AB1", "CD2", "EF3"]),
            "date_of_birth": pd.Categorical.from_codes(rng.integers(-1, 3, n), categories=days),
            "bloom": np.array([None if i % 7 == 0 else f"b{i}" for i in range(n)], dtype=object),
            "when": pd.to_datetime(np.where(np.arange(n) % 5 == 0, None, "2020-03-01")),
            "count": np.arange(n, dtype=np.int32),
        },
        index=pd.RangeIndex(n),
    )
    spilled = SpilledFrame(frame, folder=str(tmp_path))
    assert len(spilled) == n and not list(tmp_path.iterdir())  # held by its open handle alone
    back = spilled.load()
    pd.testing.assert_frame_equal(back, frame)
    assert back["bloom"].to_numpy()[0] is None
    assert spilled._file.closed
    # A write that fails (a column Arrow cannot type) leaves no folder or partial file behind.
    with pytest.raises(pa.ArrowException):
        SpilledFrame(pd.DataFrame({"mixed": np.array([1, "a", 2.5], dtype=object)}), folder=str(tmp_path))
    assert not list(tmp_path.iterdir())


def test_comparer_rows_term_frequency_codes_and_key_m_are_those_of_the_whole_frame_and_strings(population):
    """On a population's variants: the comparer given only a chunk's rows compares as recordlinkage
    over every variant did; term frequencies counted by code (and each variant's frequency) are those
    counted by a string a variant; aliases learned from the variants' keyed names are the records';
    a source key's m counted by node code is that of the node names' strings."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    import linkage.model as fs
    from linkage.compare import Comparer
    from linkage.engine import estimate_key_m
    from linkage.records import (
        IdentityArrow,
        build_variants,
        code_identity,
        identity_rows,
        learn_aliases,
        records_from_deliveries,
        shed_identity,
    )
    from linkage.run import _keyed_names
    from linkage.spec import IDENTITY as spec

    records, _ = records_from_deliveries(population / "landing")
    r, variants = build_variants(records)
    want_aliases = learn_aliases(r, "forename_token")
    kept = r.copy()
    identity = shed_identity(r)
    first = kept.drop_duplicates("variant").sort_values("variant").index  # each variant's first record
    assert len(identity.columns) > 5 and list(r.columns) == [c for c in kept.columns if c not in identity]
    for c in identity.columns:  # each variant's value, as its first record holds it
        pd.testing.assert_series_equal(identity[c], kept.loc[first, c].reset_index(drop=True), check_names=False)
    shared = shed_identity(kept, variants)  # the variants' own columns, shared: the same frame
    pd.testing.assert_frame_equal(shared, identity)
    assert list(kept.columns) == list(r.columns)
    assert np.shares_memory(shared["forename_token"].to_numpy(), variants["forename_token"].to_numpy())
    holey = identity.copy()  # missing values (None, NaT) beside present ones; a column with NaN stays
    holey.loc[holey.index[::4], ["postcode_district", "surname_token", "date_of_birth"]] = None
    holey.loc[holey.index[::6], "sex"] = np.nan
    coded = code_identity(holey, keep={"forename_token"})
    assert isinstance(coded["postcode_district"].dtype, pd.CategoricalDtype)
    assert isinstance(coded["date_of_birth"].dtype, pd.CategoricalDtype)
    assert coded["forename_token"].dtype == object and coded["sex"].dtype == object
    part = r.iloc[::3]
    want = pd.concat([part, holey.iloc[part["variant"].to_numpy()].set_axis(part.index)], axis=1)
    got = identity_rows(part, coded)
    pd.testing.assert_frame_equal(got, want)
    assert got["postcode_district"].isna().any() and got["postcode_district"].map(type).eq(str).any()
    assert all(v is None for v in got["postcode_district"][got["postcode_district"].isna()])
    # the same rows taken in Arrow (what the identities are written from): the values of the pandas rows
    # (every categorical column taken in Arrow, none, and as the writer chooses)
    for share in (1.0, 0.0, 0.05):
        arrow = IdentityArrow(coded, share).columns(part["variant"].to_numpy())
        assert list(arrow) == list(coded.columns)
        for c, values in arrow.items():
            want_c = pa.Array.from_pandas(want[c].to_numpy())
            if want_c.type != values.type:  # (a categorical date: nanoseconds there, as pandas holds it)
                want_c = want_c.cast(values.type)
            assert values.equals(want_c), (c, share)
    assert learn_aliases(_keyed_names(variants, identity, r), "forename_token") == want_aliases
    comparer = Comparer(variants, spec, {"forename": want_aliases})
    rng = np.random.default_rng(1)
    a = rng.integers(0, len(variants), 3000).astype(np.int32)
    b = rng.integers(0, len(variants), 3000).astype(np.int32)
    whole = comparer.compare.compute(pd.MultiIndex.from_arrays([a, b]), comparer.variants)
    whole = whole[list(spec.names)].astype(np.int8).reset_index(drop=True)
    got = comparer.vectors(a, b)
    pd.testing.assert_frame_equal(got, whole)
    assert (got["forename"] >= 0).any() and (got["dob"] >= 1).any() and (got["key"] >= 0).any()
    assert want_aliases and (got["forename"] == spec.comparison("forename").exact - 1).any()  # an alias pair

    counts = np.bincount(r["variant"].to_numpy(), minlength=len(variants))
    odd = variants.copy()  # missing dates of birth and names beside present ones
    odd.loc[odd.index[::5], "date_of_birth"] = pd.NaT
    odd.loc[odd.index[::7], "forename_token"] = None
    for frame in (variants, odd):
        tf = fs.term_frequencies(frame, spec, counts)
        weights = np.asarray(counts, dtype=np.int64)
        for c in spec.comparisons:
            if c.tf:
                assert tf[c.name] == fs._term_frequencies_by_string(frame, c, weights), c.name
        model = fs.Model("t", 0.01, {}, {}, tf=tf)
        freq = fs.tf_frequencies(frame, spec, model)
        for c in spec.comparisons:
            if c.tf:
                by_string = fs.tf_keys(frame, c).map(tf[c.name]).to_numpy(dtype=float)
                np.testing.assert_array_equal(freq[c.name], by_string)
    assert any(k.startswith("<NA>|") for k in fs.term_frequencies(odd, spec, counts)["forename"])

    m = {c.name: [0.9 / max(c.levels - 1, 1)] * (c.levels - 1) + [0.1] for c in spec.comparisons}
    u = {c.name: [1.0 / c.levels] * c.levels for c in spec.comparisons}
    model = fs.Model("t", 0.05, m, u)
    vec = comparer.vectors(a, b)
    vec.loc[vec.index[::3], "key"] = 0  # keyed differently in the first source: some at level 0
    got = estimate_key_m(model, vec, variants, spec, "key", 0.5)
    assert got == _key_m_by_names(model, vec, variants, spec, "key", 0.5)


def _key_m_by_names(model, vec, variants, spec, name, share):
    """`engine.estimate_key_m` as it was: the keyed nodes and their sources from the names' strings."""
    import numpy as np

    import linkage.model as fs

    comparison = spec.comparison(name)
    keep = list(model.m[name])
    model.m[name] = list(model.u[name])
    levels = vec[name].to_numpy()
    differ_at = levels >= 0
    p = fs.probability(model.score(vec[differ_at].reset_index(drop=True), spec))
    model.m[name] = keep
    at = levels[differ_at]
    differ = np.bincount(at // 2, weights=p * (at % 2 == 0), minlength=len(comparison.groups)) / max(share, 1e-12)
    per_node = variants["node"].value_counts()
    per_node = per_node[per_node.index.str.contains("|k|", regex=False)]
    source = per_node.index.str.split("|", n=1).str[0]
    size = per_node.to_numpy(dtype=np.float64)
    out = []
    for i, group in enumerate(comparison.groups):
        k = size[source == group]
        same = float((k * (k - 1) / 2).sum())
        m0 = (differ[i] + 0.5) / (differ[i] + same + 1.0)
        out += [m0, 1.0 - m0]
    return out


def test_the_quality_truth_read_in_slices_is_the_truth_read_whole(population, tmp_path):
    """`report._truth_file_table` inserts the truth's Parquet file slice by slice in Arrow: the same
    rows, in the same order, as the whole file read into pandas and inserted by `_truth_table`."""
    import pandas as pd

    from linkage.report import _truth_file_table, _truth_table
    from outcomes.eventstore import connect
    from outcomes.warehouse import resolve_target

    path = population / "truth" / "records.parquet"
    whole = pd.read_parquet(path, columns=["source", "record_id", "person_id"])
    with connect(resolve_target(str(tmp_path / "w.duckdb"))) as backend, backend.transaction() as s:
        s.execute("create schema if not exists linkage")
        _truth_table(s, whole.rename(columns={"person_id": "true_person"}))
        want = s.fetch("select * from linkage.work_quality_truth").to_pylist()
        _truth_file_table(s, path, rows=97)  # several slices
        got = s.fetch("select * from linkage.work_quality_truth").to_pylist()
    assert len(want) == len(whole) > 97 * 3
    assert got == want
