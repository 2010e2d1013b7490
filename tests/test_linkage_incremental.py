"""Incremental monthly runs (linkage.incremental): a run of the latest date reads only the new
records and the persons their blocks touch, and writes exactly what the whole-population path
writes — the same link events, decisions and blocking figures, also when a reviewer's decisions
wait, when blocks are capped, and when a month brings no new record at all."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import shutil

import numpy as np
import pandas as pd
import pytest

from linkage.report import write_quality
from linkage.review import import_decisions
from linkage.run import link
from linkage.spec import IDENTITY as SPEC
from outcomes.contract import SOURCES
from outcomes.eventstore import connect
from outcomes.ingest import Ingestor
from outcomes.synth.generator import SynthConfig, synthesise
from outcomes.warehouse import resolve_target

TABLES = {
    "link_events": "select run_id, as_of, source, record_id, person_id, previous_person_id, event, decided_by, "
    "model_version from linkage.link_events",
    "pair_decisions": "select * from linkage.pair_decisions",
    "blocking_passes": "select * from linkage.blocking_passes",
    "runs": "select run_id, as_of, records_new, candidate_pairs, links, reviews, merges, persons_new, splits, "
    "variants from linkage.runs",
    # the stored keys the next month reads (the whole path rewrites them, the incremental one
    # updates what its month changed)
    "record_keys": "select * from linkage.record_keys where present",
    "quality": "select * from linkage.quality",
    "quality_by_group": "select * from linkage.quality_by_group",
    "match_rates": "select * from linkage.match_rates",
}
QUALITY = ["quality", "quality_by_group", "match_rates"]


def assert_same_facts(mine, reference) -> None:
    """Kept blocking facts equal to the whole computation: counts, and each pass's oversized keys."""
    assert (mine.comparable, mine.variants) == (reference.comparable, reference.variants)
    for name, (big, n) in mine.oversized.items():
        other, m = reference.oversized[name]
        assert n == m, name
        if big is not None:
            cols = list(big.columns)
            pd.testing.assert_frame_equal(
                big.sort_values(cols).reset_index(drop=True),
                other.sort_values(cols).reset_index(drop=True),
                check_dtype=False,
                obj=name,
            )


@pytest.fixture(scope="module")
def truth(months):
    return months["truth"]


@pytest.fixture(scope="module")
def months(tmp_path_factory):
    """A 600-person population over four months, delivered month by month (and its ground truth,
    under "truth")."""
    root = tmp_path_factory.mktemp("incr")
    synthesise(SynthConfig(persons=600, seed=11, start="2024-01", months=4), root / "pop")
    landing = root / "pop" / "landing"
    by_month = {}
    for month in sorted({p.name.split("_")[1] for p in landing.glob("*.parquet")}):
        step = root / "months" / month
        step.mkdir(parents=True)
        for f in landing.glob(f"*_{month}_*"):
            shutil.copy(f, step / f.name)
        by_month[month] = step
    return {**by_month, "truth": root / "pop" / "truth"}


def _tables(backend, where: str = "") -> dict[str, pd.DataFrame]:
    with backend.transaction() as s:
        out = {name: s.fetch(sql + (where if name in QUALITY else "")).to_pandas() for name, sql in TABLES.items()}
    for name, frame in out.items():
        cols = list(frame.columns)
        out[name] = frame.sort_values(cols).reset_index(drop=True)
    return out


def _review_file(path, rows) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["left_source", "left_record_id", "right_source", "right_record_id", "decision", "reviewer"])
        w.writerows(rows)


def _run_months(tmp_path, months, incremental, reviews_after=None, truth=None, reference=False):
    """Ingest and link month by month; after month `reviews_after`, log review decisions taken
    from the warehouse (a queued pair declared a match, a linked pair a non-match) and link once
    more before the next month arrives (a run with decisions pending and nothing new). With
    `reference`, each run's quality report is also computed over the whole spine by
    `report.write_quality` (stored under the run's id negated)."""
    results = []

    def run():
        result = link(backend, incremental=incremental, truth=truth)
        if reference and result.quality is not None:
            write_quality(backend, -result.run_id, result.as_of, truth, result.expected)
        results.append(result)

    with connect(resolve_target(str(tmp_path / f"{incremental}.duckdb"))) as backend:
        ingestor = Ingestor(backend, tmp_path / f"archive-{incremental}")
        steps = [v for k, v in months.items() if k != "truth"]
        # the last month arrives before the one before it: that one is a past-dated delivery, read
        # by the next run of the latest date (from the ledger: applied after the last run)
        steps[-2:] = steps[-1], steps[-2]
        for i, step in enumerate(steps):
            ingestor.ingest(step)
            run()
            if i == reviews_after:
                with backend.transaction() as s:
                    queued = s.fetch(
                        "select left_source, left_record_id, right_source, right_record_id from "
                        "linkage.pair_decisions where decision = 'review' order by weight desc, left_record_id limit 1"
                    ).to_pylist()
                    linked = s.fetch(
                        "select left_source, left_record_id, right_source, right_record_id from "
                        "linkage.pair_decisions where decision = 'link' order by weight, left_record_id limit 1"
                    ).to_pylist()
                rows = [[*q.values(), "match", "tester"] for q in queued]
                rows += [[*q.values(), "non-match", "tester"] for q in linked]
                _review_file(tmp_path / "decisions.csv", rows)
                import_decisions(backend, tmp_path / "decisions.csv", now=dt.datetime(2024, 2, 15))
                run()
        tables = _tables(backend, " where run_id > 0")
        if reference:
            tables["reference"] = _tables(backend, " where run_id < 0")
    return results, tables


def test_incremental_months_write_what_the_whole_population_path_writes(months, truth, tmp_path, monkeypatch):
    # blocks capped at 6 identities, so that some are left out: the incremental path must leave
    # out the same blocks of the whole population, not of the part it reads
    monkeypatch.setattr("linkage.run.SPEC", dataclasses.replace(SPEC, max_block=6))
    whole, expected = _run_months(tmp_path, months, False, reviews_after=1, truth=truth)
    # every incremental run's kept blocking facts (linkage.block_sizes, block_nodes, updated by the
    # month's added and removed keys) equal the whole computation over every stored key
    from linkage import incremental as inc

    kept, compared = inc.block_facts, []

    def both(s, spec):
        assert inc._blocks_kept(s, spec)
        mine, reference = kept(s, spec), inc.block_facts_whole(s, spec)
        assert mine.oversized.keys() == reference.oversized.keys()
        assert_same_facts(mine, reference)
        compared.append(sum(n for _, n in mine.oversized.values()))
        return mine

    monkeypatch.setattr(inc, "block_facts", both)
    part, got = _run_months(tmp_path, months, None, reviews_after=1, truth=truth, reference=True)
    assert len(compared) == len(part) - 1 and all(n > 0 for n in compared)  # compared, with oversized blocks

    assert [r.incremental for r in whole] == [False] * len(whole)
    assert [r.incremental for r in part] == [False] + [True] * (len(part) - 1)
    # the incremental runs read only the records with events since the last run (the ledger)
    assert [r.delta for r in part[1:]] == ["ledger"] * (len(part) - 1)
    assert part[-1].as_of == part[-2].as_of and part[-1].records_new > 0  # the late month, linked
    # later months read a fraction of the records the whole path reads
    assert all(p.records_read < w.records_read / 2 for p, w in zip(part[1:], whole[1:], strict=True))
    assert expected["blocking_passes"]["oversized_blocks"].sum() > 0
    for name in TABLES:
        pd.testing.assert_frame_equal(got[name], expected[name], check_dtype=False, check_exact=True, obj=name)
    events = got["link_events"]
    assert (events["decided_by"] == "review").any(), "the review decisions changed the spine"
    # the quality report kept month by month (linkage.quality_records) is the whole spine's
    # computation (report.write_quality), figure for figure, with ground truth
    assert got["quality"]["pairwise_recall"].notna().all() and got["quality"]["pairwise_recall"].lt(1).any()
    assert got["quality"]["run_id"].nunique() == sum(r.quality is not None for r in part) == len(part)
    # (but review_pairs: the reference's run id names no decisions; the other comparison covers it)
    for name in QUALITY:
        reference = got["reference"][name].assign(run_id=lambda f: -f["run_id"])
        mine = got[name]
        if name == "quality":
            mine, reference = mine.drop(columns="review_pairs"), reference.drop(columns="review_pairs")
        reference = reference.sort_values(list(reference.columns)).reset_index(drop=True)
        mine = mine.sort_values(list(mine.columns)).reset_index(drop=True)
        pd.testing.assert_frame_equal(mine, reference, check_dtype=False, check_exact=True, obj=f"{name} (whole spine)")


def test_months_without_truth_score_first_only_the_identities_that_block_with_a_new_one(months, tmp_path, monkeypatch):
    """Without ground truth (as `outcomes link` runs), the first scoring reads only the identities
    that share a block key with a new record (`linkage.work_match`), not every identity of their
    nodes: fewer rows, and the months write what the whole-population path writes."""
    from linkage import incremental as inc

    monkeypatch.setattr("linkage.run.SPEC", dataclasses.replace(SPEC, max_block=6))
    _, expected = _run_months(tmp_path, months, False, reviews_after=1)
    real, counts = inc.read_identities, []

    def both(s, matched=False):
        mine = real(s, matched)
        counts.append((matched, len(mine), len(real(s, False))))
        return mine

    monkeypatch.setattr(inc, "read_identities", both)
    part, got = _run_months(tmp_path, months, None, reviews_after=1)
    assert [r.incremental for r in part] == [False] + [True] * (len(part) - 1)
    assert counts and all(matched for matched, _, _ in counts)
    assert all(m <= n for _, m, n in counts) and sum(m for _, m, _ in counts) < sum(n for _, _, n in counts)
    for name in TABLES:
        pd.testing.assert_frame_equal(got[name], expected[name], check_dtype=False, check_exact=True, obj=name)


def test_months_score_the_first_scorings_pairs_without_blocking_again(months, tmp_path, monkeypatch):
    """A month with new records takes the pairs its first scoring kept (`incremental.scored_pairs`),
    in the order the run's blocking gives them, and does not block its records again; capped
    blocks and review decisions included, the months write what the whole-population path
    writes. The pairs are those the run's own blocking and scoring keep."""
    from linkage import blocking
    from linkage import incremental as inc

    monkeypatch.setattr("linkage.run.SPEC", dataclasses.replace(SPEC, max_block=6))
    _, expected = _run_months(tmp_path, months, False, reviews_after=1)
    real, taken = inc.scored_pairs, []

    def checked(variants, blocks):
        pairs = real(variants, blocks)
        taken.append(pairs)
        return pairs

    monkeypatch.setattr(inc, "scored_pairs", checked)
    calls = []

    def counted(*args, **kwargs):
        calls.append(1)
        return blocking.candidate_pairs(*args, **kwargs)

    monkeypatch.setattr("linkage.run.candidate_pairs", counted)
    part, got = _run_months(tmp_path, months, None, reviews_after=1)
    assert [r.incremental for r in part] == [False] + [True] * (len(part) - 1)
    assert taken and all(pairs is not None and len(pairs) for pairs in taken)
    assert len(calls) == len(part) - len(taken)  # the first run and the run for decisions alone
    for pairs in taken:  # as `blocking.candidate_pairs` gives them: a < b, by (a, b)
        a, b = pairs["a"].to_numpy().astype(np.int64), pairs["b"].to_numpy().astype(np.int64)
        assert (a < b).all() and (np.diff(a << 32 | b) > 0).all()
    for name in TABLES:
        pd.testing.assert_frame_equal(got[name], expected[name], check_dtype=False, check_exact=True, obj=name)


def test_a_month_without_new_records_is_a_no_op_and_keeps_the_keys_in_step(months, tmp_path):
    with connect(resolve_target(str(tmp_path / "w.duckdb"))) as backend:
        ingestor = Ingestor(backend, tmp_path / "archive")
        first = next(iter(months.values()))
        ingestor.ingest(first)
        link(backend)
        again = link(backend)
        assert again.records_new == 0 and again.incremental
        with backend.transaction() as s:
            runs = s.scalar("select count(*) from linkage.runs")
            keys = s.fetch(
                "select count(*) as n, count(person_id) as with_person from linkage.record_keys where present"
            ).to_pylist()[0]
            spine = s.scalar("select count(*) from linkage.person_records")
        assert runs == 1
        assert keys["n"] == keys["with_person"] == spine


def test_the_memory_budget_sets_duckdb_and_the_scoring_chunks(tmp_path, monkeypatch):
    from linkage.engine import chunk_for_memory, parse_size
    from linkage.run import apply_memory_limit

    assert parse_size("4GB") == 4 * 10**9 and parse_size("512MiB") == 512 * 2**20 and parse_size("2g") == 2 * 2**30
    with pytest.raises(ValueError, match="not a size"):
        parse_size("lots")
    assert chunk_for_memory(parse_size("4GB")) < chunk_for_memory(parse_size("8GB"))
    assert chunk_for_memory(1) == 20_000 and chunk_for_memory(10**15) == 4_000_000
    with connect(resolve_target(str(tmp_path / "w.duckdb"))) as backend:
        assert apply_memory_limit(backend, "1GB") == 10**9
        setting = "select current_setting('memory_limit')"
        assert backend.con.execute(setting).fetchall()[0][0] == "476.0 MiB"  # half the budget
        monkeypatch.setenv("OUTCOMES_LINK_MEMORY", "2GiB")
        assert apply_memory_limit(backend) == 2 * 2**30
        assert backend.con.execute(setting).fetchall()[0][0] == "1.0 GiB"
    # a month's reads give DuckDB a quarter of the budget, at least 256 MiB, at most its half
    from linkage.incremental import read_share

    assert read_share(parse_size("4GB")) == 10**9 and read_share(parse_size("1GB")) == 256 * 2**20
    assert read_share(parse_size("300MiB")) == 150 * 2**20


def test_a_new_record_finds_a_stored_keyless_record_by_its_names(tmp_path):
    """The names pass keys only records with neither a date of birth nor a postcode district (on
    its left) against everyone's names (right). A stored keyless record is found from a new record
    with the same names and a date of birth (the pass the other way round), as a whole-population
    run finds it; a stored record with those names and a date of birth is found only from a new
    keyless one, and not from a new keyed one."""
    from linkage import incremental as inc
    from linkage.records import IDENTITY
    from linkage.schema import DDL

    def records(rows):
        out = pd.DataFrame([{c: None for c in IDENTITY} | r for r in rows])
        return inc.with_keys(out)

    stored = records(
        [
            {"source": "deaths", "record_id": "k", "forename_token": "f1", "surname_token": "s1"},
            {
                "source": "deaths",
                "record_id": "d",
                "forename_token": "f2",
                "surname_token": "s2",
                "date_of_birth": "1980-01-02",
                "postcode_district": "E6",
            },
        ]
    )
    with connect(resolve_target(str(tmp_path / "w.duckdb"))) as backend, backend.transaction() as s:
        for statement in DDL:
            s.execute(statement)
        inc.ensure(s, "duckdb")
        inc.insert(s, "linkage.record_keys", stored.assign(person_id=None, present=True))

        def found(row) -> set:
            new = records([row]).assign(is_new=True)
            s.execute("delete from linkage.work_new")
            inc.insert(s, "linkage.work_new", new)
            inc.insert(s, "linkage.record_keys", new.drop(columns="is_new").assign(person_id=None, present=True))
            inc.candidate_nodes(s, SPEC, inc.block_facts(s, SPEC))
            s.execute("delete from linkage.record_keys where record_id like 'n%'")
            return set(s.fetch("select node from linkage.work_nodes").to_pandas()["node"])

        dob = {"date_of_birth": "1990-05-06", "postcode_district": "N1"}
        assert "deaths|r|k" in found(
            {"source": "treatment", "record_id": "n1", "forename_token": "f1", "surname_token": "s1"} | dob
        )
        assert "deaths|r|d" not in found(
            {
                "source": "treatment",
                "record_id": "n2",
                "forename_token": "f2",
                "surname_token": "s2",
                "date_of_birth": "1990-05-06",
            }
        )
        assert "deaths|r|d" in found(
            {"source": "treatment", "record_id": "n3", "forename_token": "f2", "surname_token": "s2"}
        )


def test_the_kept_blocking_facts_follow_retracted_amended_and_new_records(tmp_path):
    """keep_blocks updates the kept block sizes from the month's added and removed keys alone:
    after records are retracted, amended (their keys change) and added, the kept facts and tables
    are those computed over every stored key (block_facts_whole, rebuild_blocks)."""
    import datetime as dt

    from linkage import incremental as inc
    from linkage.records import IDENTITY
    from linkage.schema import DDL

    spec = dataclasses.replace(SPEC, max_block=2)

    def person(i, dob_shift=0):
        return {c: None for c in IDENTITY} | {
            "source": ["deaths", "treatment"][i % 2],
            "record_id": f"r{i}",
            "source_person_key": f"p{i % 7}",
            "forename_token": ["ann", "bob", "cat"][i % 3],
            "forename_initial": ["a", "b", "c"][i % 3],
            "surname_token": ["lee", "low"][i % 2],
            "surname_soundex_token": ["L000", "L000", "L200"][i % 3],
            "date_of_birth": dt.date(1980, 1 + i % 2, 2) + dt.timedelta(days=dob_shift),
            "sex": "F",
            "postcode_district": [None, "E6"][i % 2],
        }

    stored = pd.DataFrame([person(i) for i in range(30)])

    def kept_tables(s):
        return {
            t: s.fetch(f"select * from linkage.{t}")
            .to_pandas()
            .pipe(lambda f: f.sort_values(list(f.columns)).reset_index(drop=True))
            for t in ("block_variants", "block_nodes", "block_sizes")
        }

    with connect(resolve_target(str(tmp_path / "w.duckdb"))) as backend, backend.transaction() as s:
        for statement in DDL:
            s.execute(statement)
        inc.ensure(s, "duckdb")
        inc.read_delta(s, None, stored)  # every record new: stored
        inc.rebuild_blocks(s, spec)
        # a month: three retracted, three amended (another date of birth), five new (two alike)
        month = pd.concat(
            [
                stored.iloc[3:27],
                pd.DataFrame([person(i, dob_shift=40) for i in range(27, 30)]),
                pd.DataFrame([person(i) for i in (30, 31, 32, 33)] + [person(30) | {"record_id": "r99"}]),
            ],
            ignore_index=True,
        )
        delta = inc.read_delta(s, None, month)
        assert delta.retracted == 3 and delta.changed["is_new"].sum() == 5 and len(delta.changed) == 8
        inc.keep_blocks(s, spec)
        mine, reference = inc.block_facts(s, spec), inc.block_facts_whole(s, spec)
        assert sum(n for _, n in mine.oversized.values()) > 0
        assert_same_facts(mine, reference)
        kept = kept_tables(s)
        inc.rebuild_blocks(s, spec)
        for name, frame in kept_tables(s).items():
            pd.testing.assert_frame_equal(kept[name], frame, check_dtype=False, obj=name)


def test_the_persons_closure_adds_every_node_of_every_person_reached(tmp_path):
    """close_over_persons: from the nodes in work_nodes, the nodes of their records' persons, then
    of those nodes' other persons, until nothing is added; absent records and records without a
    person join nothing."""
    from linkage import incremental as inc
    from linkage.records import IDENTITY
    from linkage.schema import DDL

    # node -> its records' persons: a chain a-b-c-d through persons 1, 2, 3; e apart; f reached
    # only through an absent record (none); g holds a record without a person beside a's person 1
    rows = [
        ("a", "P1", True),
        ("b", "P1", True),
        ("b", "P2", True),
        ("c", "P2", True),
        ("c", "P3", True),
        ("d", "P3", True),
        ("e", "P4", True),
        ("f", "P4", True),
        ("f", "P1", False),
        ("g", None, True),
        ("h", "P5", True),
        ("h", None, True),
    ]
    keys = pd.DataFrame(
        [
            {c: None for c in IDENTITY}
            | {"source": "deaths", "record_id": f"r{i}", "node": node, "person_id": person}
            | {"present": present}
            for i, (node, person, present) in enumerate(rows)
        ]
    )
    with connect(resolve_target(str(tmp_path / "w.duckdb"))) as backend, backend.transaction() as s:
        for statement in DDL:
            s.execute(statement)
        inc.ensure(s, "duckdb")
        inc.insert(s, "linkage.record_keys", keys)

        def closed(start):
            s.execute("delete from linkage.work_nodes")
            inc.add_record_nodes(s, pd.DataFrame({"source": "deaths", "record_id": start}))
            n = inc.close_over_persons(s)
            nodes = set(s.fetch("select node from linkage.work_nodes").to_pandas()["node"])
            assert n == len(nodes)
            return nodes

        assert closed(["r0"]) == {"a", "b", "c", "d"}
        assert closed(["r5"]) == {"a", "b", "c", "d"}
        assert closed(["r6"]) == {"e", "f"}
        assert closed(["r9"]) == {"g"}
        assert closed(["r10", "r6"]) == {"e", "f", "h"}


def test_scoring_first_reads_whole_only_the_nodes_of_a_pair_at_review_level(tmp_path):
    """score_first blocks and scores a new record against the candidate nodes' identities (read a
    row an identity, as build_variants makes them of the records), keeps the whole population's
    blocking figures, and leaves for reading whole only the nodes of new records and of pairs at
    or above the review level: a stored record that blocks with the new one but scores below it
    is not read, nor is its person; the person of the one that scores high is, every node of it."""
    from linkage import incremental as inc
    from linkage import model as fs
    from linkage.blocking import candidate_pairs
    from linkage.records import IDENTITY, build_variants
    from linkage.schema import DDL

    levels = {c.name: c.levels for c in SPEC.comparisons}
    # agreement weighs for a match, disagreement against (levels in ascending agreement)
    m = {c: [float(i + 1) for i in range(n)] for c, n in levels.items()}
    u = {c: [float(n - i) for i in range(n)] for c, n in levels.items()}
    model = fs.Model(
        "t",
        1e-3,
        {c: [v / sum(x) for v in x] for c, x in m.items()},
        {c: [v / sum(x) for v in x] for c, x in u.items()},
    )

    def row(record_id, source, node_key, fore, sur, dob, district, person):
        return {c: None for c in IDENTITY} | {
            "source": source,
            "record_id": record_id,
            "source_person_key": node_key,
            "forename_token": fore,
            "forename_bloom": None,
            "surname_token": sur,
            "surname_bloom": None,
            "forename_initial": fore[0],
            "surname_initial": sur[0],
            "surname_soundex_token": "S" + sur[:2],
            "date_of_birth": dob,
            "sex": "M",
            "postcode_district": district,
            "person_id": person,
        }

    rows = pd.DataFrame(
        [
            # the new record (no person yet)
            row("n1", "deaths", None, "anna", "smith", "1970-03-04", "E6", None),
            # the same identity in treatment (key k1, two records), whose person holds a benefits node too
            row("t1", "treatment", "k1", "anna", "smith", "1970-03-04", "E6", "P1"),
            row("t2", "treatment", "k1", "anna", "smith", "1970-03-04", "E6", "P1"),
            row("b1", "benefits", "nb1", "ann", "smyth", "1970-03-04", "N1", "P1"),
            # blocks with it (date of birth and Soundex) but shares nothing else; its person holds another node
            row("c1", "convictions", "pn1", "zed", "smeaton", "1970-03-04", "W1", "P2"),
            row("c2", "convictions", "pn2", "yan", "smeaton", "1999-09-09", "W2", "P2"),
        ]
    )
    keyed = inc.with_keys(rows)
    keyed["person_id"] = rows["person_id"].to_numpy()
    with connect(resolve_target(str(tmp_path / "w.duckdb"))) as backend, backend.transaction() as s:
        for statement in DDL:
            s.execute(statement)
        inc.ensure(s, "duckdb")
        inc.insert(s, "linkage.record_keys", keyed.assign(present=True))
        inc.insert(s, "linkage.work_new", keyed.iloc[:1].drop(columns="person_id").assign(is_new=True))
        inc.rebuild_blocks(s, SPEC)
        facts = inc.block_facts(s, SPEC)
        inc.candidate_nodes(s, SPEC, facts)
        candidates = set(s.fetch("select node from linkage.work_nodes").to_pandas()["node"])
        assert candidates == {"deaths|r|n1", "treatment|k|k1", "convictions|k|pn1", "benefits|k|nb1"}

        # the identities read are the variants build_variants makes of those nodes' records
        ident = inc.read_identities(s)
        records = inc.load_records(s)
        _, variants = build_variants(records.drop(columns="person_id"))
        cols = [c for c in variants.columns if c in ident.columns]
        assert len(ident) == len(variants) == 4 and ident["records"].sum() == 5
        assert ident["is_new"].sum() == 1
        pd.testing.assert_frame_equal(
            ident[cols].sort_values("node").reset_index(drop=True),
            variants[cols].sort_values("node").reset_index(drop=True),
            check_dtype=False,
            check_index_type=False,
        )
        new = pd.Index(ident.index[ident["is_new"]])
        pairs, _ = candidate_pairs(ident, SPEC, new, oversized=facts.oversized, comparable=facts.comparable)

        kept = inc.score_first(s, SPEC, model, facts)
        assert kept.identities == 4 and kept.pairs == len(pairs) == 3
        assert kept.scored >= 1 and kept.scored < kept.pairs  # one blocks but scores below review
        assert facts.candidate_pairs == 3 and facts.stats[-1].name == "union" and facts.stats[-1].pairs == 3
        nodes = set(s.fetch("select node from linkage.work_nodes").to_pandas()["node"])
        assert "convictions|k|pn1" not in nodes and {"deaths|r|n1", "treatment|k|k1"} <= nodes
        inc.close_over_persons(s)
        nodes = set(s.fetch("select node from linkage.work_nodes").to_pandas()["node"])
        assert "benefits|k|nb1" in nodes and not nodes & {"convictions|k|pn1", "convictions|k|pn2"}


def test_the_kept_quality_holds_its_counts_a_row_a_person(months, tmp_path):
    """`linkage.quality_records` holds a row a record (its person, as linked), the records per
    source of each person a row a person (`quality_persons`): a month updates the records it moved
    and inserts its new ones, and the counts stay those of the records; a warehouse whose
    quality_records held the counts (the layout before) is narrowed in place, its true persons
    kept, and its persons counted again."""
    from linkage.report import quality_in_step, rebuild_quality_records

    steps = [v for k, v in months.items() if k != "truth"]
    sql = {
        "records": "select source, record_id, person_id from linkage.quality_records",
        "spine": "select p.source, p.record_id, p.person_id from linkage.person_records p "
        "join linkage.identities i on i.source = p.source and i.record_id = p.record_id",
        "persons": "select * from linkage.quality_persons",
        "counted": "select person_id, "
        + ", ".join(f"sum(case when source = '{s}' then 1 else 0 end) as n_{s}" for s in SOURCES)
        + " from linkage.quality_records group by person_id",
    }

    def tables(backend):
        with backend.transaction() as s:
            out = {k: s.fetch(q).to_pandas() for k, q in sql.items()}
        return {k: f.sort_values(list(f.columns)).reset_index(drop=True) for k, f in out.items()}

    with connect(resolve_target(str(tmp_path / "w.duckdb"))) as backend:
        ingestor = Ingestor(backend, tmp_path / "archive")
        for step in steps[:2]:
            ingestor.ingest(step)
            result = link(backend)
        assert result.incremental and result.records_new > 0
        got = tables(backend)
        pd.testing.assert_frame_equal(got["records"], got["spine"])
        pd.testing.assert_frame_equal(got["persons"], got["counted"], check_dtype=False)
        assert len(got["persons"]) == got["records"]["person_id"].nunique()
        with backend.transaction() as s:  # the layout before: counts on every record's row, none a person
            s.execute("alter table linkage.quality_records add column n_treatment bigint")
            s.execute("drop table linkage.quality_persons")
            s.execute("drop table linkage.quality_true_persons")
            assert quality_in_step(s, None)  # migrated in place: the records kept, still in step
            assert "n_treatment" not in s.fetch("select * from linkage.quality_records limit 0").column_names
        migrated = tables(backend)
        pd.testing.assert_frame_equal(migrated["records"], got["records"])
        pd.testing.assert_frame_equal(migrated["persons"], got["persons"])
        with backend.transaction() as s:
            rebuild_quality_records(s, None)
        pd.testing.assert_frame_equal(tables(backend)["persons"], got["persons"])
