"""A first run partition by partition (linkage.partitioned): the first partition a first run, the
others through the monthly path, all as of one date. With the same model it gives the one-pass
run's persons (apart from the order of a rare decision), cross-partition persons joined; the
budget chooses partitions whose estimate fits it, and a budget no partition fits is refused."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from linkage import partitioned
from linkage.partitioned import BudgetTooSmall, estimate, parts_for, record_keys, room
from linkage.run import link
from linkage.schema import DDL, spine_as_of_sql
from outcomes.cli import app
from outcomes.eventstore import connect
from outcomes.ingest import Ingestor
from outcomes.synth.generator import SynthConfig, synthesise
from outcomes.warehouse import resolve_target


@pytest.fixture(scope="module")
def population(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("parts")
    synthesise(SynthConfig(persons=900, seed=11, start="2024-01", months=3), out)
    return out


@pytest.fixture(scope="module")
def ingested(population, tmp_path_factory) -> Path:
    """A warehouse with the population's deliveries applied and nothing linked (copied by each test)."""
    folder = tmp_path_factory.mktemp("ingested")
    with connect(resolve_target(str(folder / "w.duckdb"))) as backend:
        Ingestor(backend, folder / "archive").ingest(population / "landing")
    return folder / "w.duckdb"


@pytest.fixture(scope="module")
def one_pass(ingested, tmp_path_factory):
    """The model the one-pass first run trained (rows of linkage.models)."""
    with _warehouse(tmp_path_factory.mktemp("one"), ingested) as backend:
        result = link(backend)
        assert not result.partitions
        with backend.transaction() as s:
            return s.fetch("select * from linkage.models").to_pylist()


def _warehouse(path: Path, ingested: Path, model: list | None = None):
    shutil.copy(ingested, path / "w.duckdb")
    backend = connect(resolve_target(str(path / "w.duckdb")))
    if model is not None:  # a model stored before the first run: every run scores with it
        with backend.transaction() as s:
            for statement in DDL:
                s.execute(statement)
            s.insert("linkage.models", pa.Table.from_pylist(model))
    return backend


def _spine(backend) -> pd.DataFrame:
    with backend.transaction() as s:
        return s.fetch("select source, record_id, person_id from linkage.person_records").to_pandas()


def _pairs(spine: pd.DataFrame) -> set:
    out = set()
    for _, group in spine.groupby("person_id"):
        ids = sorted(group["source"] + ":" + group["record_id"])
        out.update((a, b) for i, a in enumerate(ids) for b in ids[i + 1 :])
    return out


def _same_model_run(tmp_path, ingested, model, **options):
    backend = _warehouse(tmp_path, ingested, model)
    with backend:
        result = link(backend, **options)
        spine = _spine(backend)
        with backend.transaction() as s:
            keys = s.fetch("select source, record_id, date_of_birth from linkage.record_keys").to_pandas()
            events = s.fetch(
                "select run_id, as_of, source, record_id, person_id, previous_person_id, event, decided_by "
                "from linkage.link_events order by all"
            ).to_pandas()
            day = result.as_of
            as_of = s.fetch(spine_as_of_sql(), {"as_of": day}).to_pandas()
            before = s.fetch(spine_as_of_sql(), {"as_of": day - dt.timedelta(days=1)}).to_pandas()
    return result, spine, keys, events, as_of, before


def test_partitions_give_the_one_pass_persons_with_the_same_model(ingested, one_pass, tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    whole, reference, *_ = _same_model_run(tmp_path / "a", ingested, one_pass)
    result, spine, keys, events, as_of, before = _same_model_run(tmp_path / "b", ingested, one_pass, partitions=3)
    assert not whole.partitions and len(result.partitions) == 3
    assert [r.incremental for r in result.partitions] == [False, True, True]
    assert result.records_new == whole.records_new == len(spine) == len(reference)
    assert sum(r.records_new for r in result.partitions) == len(spine)
    # every record in its partition, none linked twice nor retracted by a later partition
    assert len(keys) == len(spine) and not spine.duplicated(["source", "record_id"]).any()
    # persons across partitions: many true pairs straddle two partitions, and are joined
    names = keys["source"] + ":" + keys["record_id"]
    part = dict(zip(names, record_keys(keys["date_of_birth"].to_numpy()) % 3, strict=True))
    mine, theirs = _pairs(spine), _pairs(reference)
    across = {p for p in theirs if part[p[0]] != part[p[1]]}
    assert len(across) > 500
    assert len(across & mine) / len(across) > 0.95
    # the same persons, but for the order of a rare decision (two of about 600 persons here: their
    # records decided against persons an earlier partition made, as a month decides them)
    assert len(mine & theirs) / len(theirs) > 0.998 and len(mine & theirs) / len(mine) > 0.998
    persons = {frozenset(g["source"] + ":" + g["record_id"]) for _, g in spine.groupby("person_id")}
    others = {frozenset(g["source"] + ":" + g["record_id"]) for _, g in reference.groupby("person_id")}
    assert len(persons ^ others) <= 8 and len(persons & others) > 590
    # knowledge time: every run as of one date; its spine is the last run's, none the day before
    assert events["as_of"].nunique() == 1 and events["run_id"].nunique() == 3
    pd.testing.assert_frame_equal(
        as_of.sort_values(["source", "record_id"]).reset_index(drop=True)[["source", "record_id", "person_id"]],
        spine.sort_values(["source", "record_id"]).reset_index(drop=True),
        check_dtype=False,
    )
    assert before.empty
    # what joins a person of an earlier partition is recorded: an assignment to its id, or a merge
    assert set(events["event"]) <= {"assign", "merge"}
    later = events[events["run_id"] > events["run_id"].min()]
    first_ids = set(events.loc[events["run_id"] == events["run_id"].min(), "person_id"])
    assert later["person_id"].isin(first_ids).sum() > 100


def test_a_partitioned_first_run_is_the_same_every_time(ingested, tmp_path):
    runs = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        runs.append(_same_model_run(tmp_path / name, ingested, None, partitions=2))
    (r1, s1, _, e1, *_), (_, s2, _, e2, *_) = runs
    assert len(r1.partitions) == 2
    pd.testing.assert_frame_equal(e1, e2)
    s1, s2 = (s.sort_values(["source", "record_id"], ignore_index=True) for s in (s1, s2))
    pd.testing.assert_frame_equal(s1, s2)


def test_the_budget_chooses_the_fewest_partitions_that_fit(monkeypatch):
    counts = pd.Series([30_000, 20_000, 25_000, 5_000, 20_000], index=[0, 24_001, 24_002, 24_003, 24_004])
    total = int(counts.sum())
    duck = total * partitioned.DUCK_BYTES  # DuckDB's buffers of the stored records, within its half
    one_pass = partitioned.FIXED + duck + total * partitioned.ONE_PASS_BYTES
    assert estimate(total, one_pass) == one_pass and parts_for(counts, one_pass) == (1, total)  # fits: one pass
    assert estimate(total, one_pass - 1) > one_pass - 1  # a byte less: not in one pass
    monkeypatch.setattr(partitioned, "ONE_PASS_BYTES", 20_000)  # one pass does not fit below
    stored = total * partitioned.STORED_BYTES  # what a later partition's run holds of the stored state
    limit = partitioned.FIXED + partitioned.PART_FIXED + duck + stored + 40_000 * partitioned.PART_BYTES
    assert room(limit, total) == 40_000 and room(limit, 2 * total) < 40_000  # DuckDB and the stored state grow
    k, largest = parts_for(counts, limit)
    assert k > 1 and partitioned.worst(largest, total, limit) <= limit
    # every partition's run in its turn, beside the records the partitions before it stored: within the budget
    sizes = counts.groupby(counts.index.to_numpy() % k).sum().reindex(range(k), fill_value=0).to_numpy()
    before = 0
    for size in sizes:
        assert partitioned.part_estimate(int(size), before, limit) <= limit
        before += int(size)
    assert partitioned.part_estimate(int(sizes[-1]), before - int(sizes[-1]), limit) > partitioned.part_estimate(
        int(sizes[-1]), 0, limit
    )  # the stored state counts
    keys = counts.index.to_numpy() % (k - 1)  # one partition fewer does not fit
    assert partitioned.worst(int(max(counts.groupby(keys).sum())), total, limit) > limit
    assert parts_for(counts, None, 3)[0] == 3  # an explicit count is taken as given
    with pytest.raises(BudgetTooSmall, match="raise --memory-limit"):
        parts_for(counts, partitioned.FIXED)
    with pytest.raises(BudgetTooSmall, match="more than"):  # a month of birth holds more than fits
        parts_for(counts, partitioned.FIXED + partitioned.PART_FIXED + duck + stored + 25_000 * partitioned.PART_BYTES)


def test_a_budget_the_stored_state_alone_fills_is_refused_naming_a_budget_that_fits(monkeypatch):
    counts = pd.Series([30_000, 20_000, 25_000, 5_000, 20_000], index=[0, 24_001, 24_002, 24_003, 24_004])
    monkeypatch.setattr(partitioned, "STORED_BYTES", 5_000)  # the stored state costs more than the budget leaves
    monkeypatch.setattr(partitioned, "ONE_PASS_BYTES", 20_000)  # not one pass
    limit = (
        partitioned.FIXED + partitioned.PART_FIXED + (60 << 20)
    )  # 60 MiB beside the fixed costs: the stored take 477
    assert partitioned.part_estimate(10_000, 0, limit) <= limit  # a first run of a partition alone would fit
    with pytest.raises(BudgetTooSmall, match="stored record") as refused:
        parts_for(counts, limit)
    need = int(str(refused.value).split("to at least ")[1].split(" MiB")[0].replace(",", "")) << 20
    assert need > limit
    _, largest = parts_for(counts, need + (1 << 20))  # the budget it names fits, with the 64 partitions at most
    assert partitioned.worst(largest, int(counts.sum()), need + (1 << 20)) <= need + (1 << 20)


def test_the_budget_named_on_refusal_is_accepted_where_duckdb_takes_a_quarter_of_it():
    # 64 months of birth of 50,000 records: the 64 partitions are the smallest; 3.2 million records,
    # so the budget that fits is above 1 GiB and DuckDB's read share is a quarter of it (it grows
    # with the budget named)
    from linkage.incremental import read_share

    counts = pd.Series([50_000] * 64, index=range(24_000, 24_064))
    total = int(counts.sum())
    with pytest.raises(BudgetTooSmall, match="to at least") as refused:
        parts_for(counts, 1 << 30)
    named = int(str(refused.value).split("to at least ")[1].split(" MiB")[0].replace(",", "")) << 20
    assert named > 1 << 30 and read_share(named) == named // 4 < total * partitioned.DUCK_BYTES
    assert parts_for(counts, named) == (64, 50_000)  # the budget named is accepted
    assert partitioned.worst(50_000, total, named) <= named
    with pytest.raises(BudgetTooSmall):  # a MiB less is not
        parts_for(counts, named - (1 << 20))


def test_a_small_budget_partitions_the_first_run_and_honours_it(ingested, tmp_path, monkeypatch):
    # the estimate's bytes a record raised so that this small population exceeds a small budget
    monkeypatch.setattr(partitioned, "ONE_PASS_BYTES", 400_000)  # far past the budget in one pass
    monkeypatch.setattr(partitioned, "PART_BYTES", 40_000)
    monkeypatch.setattr(partitioned, "DUCK_BYTES", 0)
    limit = partitioned.FIXED + partitioned.PART_FIXED + 3_000 * 40_000
    monkeypatch.delenv(partitioned.PARTITIONS_ENV, raising=False)
    with _warehouse(tmp_path, ingested) as backend:
        assert partitioned.plan(backend, None, None, limit) is None  # not asked for: one pass, whatever the budget
        monkeypatch.setenv(partitioned.PARTITIONS_ENV, "sometimes")
        with pytest.raises(ValueError, match="OUTCOMES_LINK_PARTITIONS"):
            partitioned.plan(backend, None, None, limit)
        monkeypatch.setenv(partitioned.PARTITIONS_ENV, "auto")
        plan = partitioned.plan(backend, None, None, limit)
        assert plan is not None and plan.parts >= 2 and partitioned.worst(plan.largest, plan.records, limit) <= limit
        result = link(backend, memory_limit=str(limit))
        assert len(result.partitions) == plan.parts
        assert f"a first run in {plan.parts} partitions" in "\n".join(result.lines())
        before = 0  # every partition's run by the plan's estimate, beside the records linked before it
        for r in result.partitions:
            assert r.records_new and partitioned.part_estimate(r.records_new, before, limit) <= limit
            before += r.records_new
        assert partitioned.part_estimate(r.records_new, before - r.records_new, limit) > partitioned.part_estimate(
            r.records_new, 0, limit
        )  # the stored term counted
        assert result.records_new == plan.records == len(_spine(backend))
        with backend.transaction() as s:  # the ledger read up to kept: the next month reads from it
            assert s.scalar("select ledger_id from linkage.key_state") is not None
        assert partitioned.plan(backend, None, None, limit) is None  # not a first run any more


def test_a_budget_no_partition_fits_is_refused_before_anything_is_linked(ingested, tmp_path):
    with _warehouse(tmp_path, ingested) as backend:
        with pytest.raises(BudgetTooSmall, match="fixed cost"):
            link(backend, memory_limit="100MB", partitions="auto")
        with backend.transaction() as s:
            assert s.scalar("select count(*) from linkage.runs") == 0
    # `outcomes link --memory-limit`: one line, no traceback
    args = ["link", "--memory-limit", "100MB", "--partitions", "auto", "--warehouse", str(tmp_path / "w.duckdb")]
    failed = CliRunner().invoke(app, args)
    assert failed.exit_code == 2 and "raise --memory-limit" in failed.output and "Traceback" not in failed.output


def test_partitions_asked_for_take_a_count_up_to_the_limit_auto_or_off(monkeypatch):
    monkeypatch.delenv(partitioned.PARTITIONS_ENV, raising=False)
    assert [partitioned.wanted(v) for v in (None, "", "off", "1", 1, "3", 4, "AUTO")] == [
        None, None, None, None, None, 3, 4, "auto"
    ]  # fmt: skip
    for bad in ("²", "0", "-2", str(partitioned.MAX_PARTS + 1), "many"):
        with pytest.raises(ValueError, match=f"from 1 to {partitioned.MAX_PARTS}"):
            partitioned.wanted(bad)
    monkeypatch.setenv(partitioned.PARTITIONS_ENV, "off")  # set to off: nothing asked, the spark engine not refused
    assert partitioned.wanted(None) is None


def test_given_records_are_held_a_partition_each_with_nothing_named_on_disk(tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    frame = pd.DataFrame(
        {
            "record_id": [f"r{i}" for i in range(6)],
            "date_of_birth": pd.to_datetime(
                ["1980-01-05", "1980-02-05", None, "1981-01-05", "1980-03-05", "1980-02-09"]
            ),
            "forename": ["ann", "bob", "cy", "di", "ed", "flo"],
        }
    )
    held = partitioned._spilled(frame, 3)
    assert list(tmp_path.iterdir()) == []  # the identities are in unlinked files only
    keys = record_keys(frame["date_of_birth"].to_numpy()) % 3
    for i, part in enumerate(held):
        back = part.load()
        pd.testing.assert_frame_equal(back, frame[keys == i].reset_index(drop=True))


def _on_disk(sealed) -> bytes:
    """What a spill's file holds on disk (its unlinked file, read through /proc/self/fd)."""
    return Path(f"/proc/self/fd/{sealed._source.fileno()}").read_bytes()


def test_a_spill_holds_no_identity_in_the_clear_and_reads_back_as_written(tmp_path, monkeypatch):
    from linkage.records import Sealed, SpilledFrame

    monkeypatch.setattr(Sealed, "CHUNK", 1_000)  # several chunks
    names = [f"zebedee{i:04d}" for i in range(400)]
    schema = pa.schema([("record_id", pa.string()), ("forename", pa.string()), ("date_of_birth", pa.date32())])
    spill = partitioned.PartSpill(2, schema, folder=str(tmp_path))
    dob = dt.date(1961, 7, 19)
    rows = pa.table({"record_id": [f"r{i}" for i in range(400)], "forename": names, "date_of_birth": [dob] * 400})
    for batch in rows.to_batches(max_chunksize=50):
        spill.write(0, batch)
    spill.close()
    on_disk = _on_disk(spill._files[0])
    assert len(on_disk) > 400 * 12 and b"zebedee" not in on_disk and b"r399" not in on_disk
    day = (dob - dt.date(1970, 1, 1)).days.to_bytes(4, "little", signed=True)  # date32 as Arrow writes it
    assert on_disk.count(day) < 3  # chance only, not 400 dates of birth
    assert spill.load(0).equals(rows) and spill.load(1).num_rows == 0 and spill.rows == [400, 0]
    assert list(tmp_path.iterdir()) == []

    frame = pd.DataFrame({"forename": pd.Categorical(names), "dob": pd.to_datetime([dob] * 400)})
    held = SpilledFrame(frame, folder=str(tmp_path))
    on_disk = _on_disk(held._file)
    assert b"zebedee" not in on_disk and list(tmp_path.iterdir()) == []
    pd.testing.assert_frame_equal(held.load(), frame)


def test_a_spill_altered_on_disk_is_refused(tmp_path):
    import cryptography.exceptions

    from linkage.records import sealed_files

    (f,) = sealed_files(1, str(tmp_path))
    f.write(b"ann 1980-01-05 AB1 2CD")
    f.close()
    with open(f"/proc/self/fd/{f._source.fileno()}", "r+b") as raw:
        raw.seek(20)
        byte = raw.read(1)
        raw.seek(20)
        raw.write(bytes([byte[0] ^ 1]))
    with pytest.raises(cryptography.exceptions.InvalidTag):
        f.read_back()


def test_the_event_store_is_read_once_into_the_partitions_with_nothing_named_on_disk(ingested, tmp_path, monkeypatch):
    import tempfile

    spill = tmp_path / "spill"
    spill.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spill))
    monkeypatch.setattr(partitioned, "SLICE", 1_000)  # several slices a source
    (tmp_path / "w").mkdir()
    with _warehouse(tmp_path / "w", ingested) as backend:
        day = partitioned._as_of(backend, None)
        scans, batches = [], partitioned._batches
        monkeypatch.setattr(partitioned, "_batches", lambda *a: scans.append(a[1]) or batches(*a))
        parts = partitioned._read_once(backend, day, 3)
        first = next(parts)
        assert list(spill.iterdir()) == []  # the identities are in unlinked files only
        once = [first, *parts]
        assert len(scans) == 4  # one scan a source, not one a source and partition
        each = [partitioned._read_part(backend, day, 3, i) for i in range(3)]
    assert len(once) == 3 and sum(len(f) for f in once) > 2_000
    for a, b in zip(once, each, strict=True):
        assert len(a) and sorted(a.columns) == sorted(b.columns)
        pd.testing.assert_frame_equal(a[b.columns], b)


def test_the_first_partition_learns_aliases_and_term_frequencies_of_every_partition(ingested, one_pass, tmp_path):
    from linkage.model import Model

    whole = Model.from_json(one_pass[0]["model_json"])  # the one-pass run's, from every record
    (tmp_path / "w").mkdir()
    with _warehouse(tmp_path / "w", ingested) as backend:
        day = partitioned._as_of(backend, None)
        learned: list = []
        parts = partitioned._read_once(backend, day, 3, learned)
        first = next(parts)
        records = partitioned._read_part(backend, day, 1, 0)  # every record, for the given records' path
        by_parts: list = []  # where the backend does not stream (PostgreSQL): a query a partition
        each = list(partitioned._read_by_parts(backend, day, 3, by_parts))
        assert len(each) == 3 and len(by_parts) == 1
        pd.testing.assert_frame_equal(each[0][first.columns], first)
        with backend.transaction() as s:
            assert partitioned._streams(s)
    given = partitioned._learned_from_frame(records)
    for got in (learned[0], given, by_parts[0]):
        assert got.aliases == whole.aliases and len(whole.aliases["forename"]) > 0
        assert set(got.tf) == set(whole.tf)
        for name, freq in whole.tf.items():
            assert set(got.tf[name]) == set(freq)
            assert max(abs(got.tf[name][k] - v) for k, v in freq.items()) < 1e-12
    # a partition's own would differ: its dates of birth three times as frequent, the others unseen
    from linkage.model import term_frequencies
    from linkage.spec import IDENTITY as SPEC

    own = term_frequencies(first, SPEC)["dob"]
    assert len(own) < len(whole.tf["dob"]) / 2
    common = next(iter(own))
    assert own[common] > 2 * whole.tf["dob"][common]


def test_a_backend_that_does_not_stream_is_read_a_partition_at_a_time(monkeypatch):
    class PostgresSession:  # as outcomes.eventstore.backend's: `fetch` gives a whole table
        con = object()

    assert not partitioned._streams(PostgresSession())
    with pytest.raises(TypeError, match="a partition at a time"):
        next(partitioned._batches(PostgresSession(), "select 1", {}))
    read: list = []

    class Backend:
        def transaction(self):
            import contextlib

            return contextlib.nullcontext(PostgresSession())

    monkeypatch.setattr(partitioned, "_read_part", lambda backend, as_of, parts, i: read.append(i) or pd.DataFrame())
    monkeypatch.setattr(partitioned, "_read_once", lambda *a: pytest.fail("read once: it does not stream"))
    plan = partitioned.Plan(3, pd.Series(dtype="int64"), 0, 0, None)
    assert len(list(partitioned._partitions(Backend(), [], plan, dt.date(2024, 1, 1)))) == 3 and read == [0, 1, 2]


def test_a_stored_model_that_does_not_fit_the_spec_is_trained_anew_from_every_partition(ingested, one_pass, tmp_path):
    import json

    from linkage.model import Model
    from linkage.spec import IDENTITY as SPEC

    stale = json.loads(one_pass[0]["model_json"])
    name = SPEC.comparisons[0].name
    stale["m"][name] = stale["m"][name][:-1]  # a level fewer: run.read sets it aside and trains anew
    assert not Model.from_json(json.dumps(stale)).fits(SPEC)
    for i, (model, fits) in enumerate(
        [(None, False), (one_pass, True), ([{**one_pass[0], "model_json": json.dumps(stale)}], False)]
    ):
        (tmp_path / str(i)).mkdir()
        with _warehouse(tmp_path / str(i), ingested, model) as backend:
            with backend.transaction() as s:
                for statement in DDL:
                    s.execute(statement)
            assert partitioned._stored_model_fits(backend) is fits  # else the first partition learns from all


def test_the_whole_populations_terms_are_released_once_the_first_partition_is_linked(ingested, tmp_path, monkeypatch):
    import linkage.incremental
    import linkage.run

    seen: list = []

    def parts(backend, box, plan, as_of, learned):
        learned.append(partitioned.Learned({"forename": []}, {"dob": {"x": 1.0}}))
        for _ in range(plan.parts):
            seen.append(list(learned))  # what is held while the next partition is read
            yield pd.DataFrame({"record_id": ["r"]})

    def run(backend, **options):
        return linkage.run.LinkResult(len(seen), options["as_of"], "v", records_new=1, incremental=len(seen) > 1)

    monkeypatch.setattr(partitioned, "_partitions", parts)
    monkeypatch.setattr(linkage.run, "link", run)
    monkeypatch.setattr(partitioned, "_combined", lambda runs, *a: runs)
    monkeypatch.setattr(linkage.incremental, "in_step", lambda s, d: True)
    plan = partitioned.Plan(3, pd.Series(dtype="int64"), 3, 1, None)
    with _warehouse(tmp_path, ingested) as backend:
        with backend.transaction() as s:
            for statement in DDL:
                s.execute(statement)
        assert len(partitioned.link_parts(backend, [pd.DataFrame()], plan)) == 3
    assert len(seen[0]) == 1 and seen[1] == [] and seen[2] == []
