"""What the synthetic population models: determinism, corrections and lateness, identifier noise,
and rates in the neighbourhood of the published figures they imitate."""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb
import pytest

from outcomes.pseudonymise.keyed import Pseudonymiser
from outcomes.synth.generator import SynthConfig, provider_key, synthesise
from tests.conftest import SMALL


def _digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_same_seed_gives_byte_identical_files(small_population, tmp_path):
    synthesise(SMALL, tmp_path)
    assert _digests(tmp_path) == _digests(small_population)


def test_another_seed_gives_another_population(small_population, tmp_path):
    synthesise(
        SynthConfig(persons=SMALL.persons, seed=SMALL.seed + 1, start=SMALL.start, months=SMALL.months), tmp_path
    )
    mine, theirs = _digests(tmp_path), _digests(small_population)
    assert mine.keys() == theirs.keys()
    assert all(mine[k] != theirs[k] for k in mine if k.endswith(".parquet"))


def test_refuses_to_mix_with_earlier_output(small_population):
    with pytest.raises(FileExistsError, match="not empty"):
        synthesise(SMALL, small_population)


@pytest.fixture(scope="module")
def db(small_population):
    con = duckdb.connect()
    land = small_population / "landing"
    for source in ("treatment", "convictions", "benefits", "deaths"):
        con.execute(f"""create view {source} as
            select *, cast(regexp_extract(filename, '_(\\d{{8}})_', 1) as varchar) as delivery
            from read_parquet('{land}/{source}_*.parquet', filename = true)""")
    con.execute(f"create view truth as select * from read_parquet('{small_population}/truth/records.parquet')")
    con.execute(f"create view persons as select * from read_parquet('{small_population}/truth/persons.parquet')")
    return con


def one(con, sql):
    return con.execute(sql).fetchone()[0]


def test_treatment_snapshots_grow_and_correct_themselves(db):
    sizes = [r[0] for r in db.execute("select count(*) from treatment group by delivery order by delivery").fetchall()]
    assert sizes[-1] > sizes[0]
    # episodes withdrawn: present in one snapshot, absent from the last
    last = one(db, "select max(delivery) from treatment")
    withdrawn = one(
        db,
        f"""select count(distinct record_id) from treatment
        where record_id not in (select record_id from treatment where delivery = '{last}')""",
    )
    assert withdrawn > 0
    # discharge reasons corrected between snapshots
    corrected = one(
        db,
        """select count(*) from (select record_id from treatment where discharge_reason is not null
        group by record_id having count(distinct discharge_reason) > 1)""",
    )
    assert corrected > 0
    # episodes that first appear months after they started (late submissions)
    late = one(
        db,
        """select count(*) from (select record_id, min(delivery) as first, min(treatment_start_date) as s
        from treatment group by record_id) where strptime(first, '%Y%m%d') > s + interval 62 day
        and s > (select min(strptime(delivery, '%Y%m%d')) from treatment)""",
    )
    assert late > 0
    assert one(db, "select count(*) from treatment where discharge_reason = 'died'") > 0


def test_deltas_carry_retractions_and_amendments(db):
    assert one(db, "select count(*) from convictions where record_status = 'quashed'") > 0
    assert one(db, "select count(*) from benefits where record_status = 'withdrawn'") > 0
    assert one(db, "select count(*) from deaths where record_status = 'amended'") > 0
    # open spells are closed by a later row with the same record_id
    assert (
        one(
            db,
            """select count(*) from (select record_id from benefits group by record_id
        having bool_or(spell_end is null) and bool_or(spell_end is not null))""",
        )
        > 0
    )
    # custody release dates arrive after the conviction
    assert (
        one(db, "select count(*) from convictions where disposal_type = 'custody' and custody_release_date is not null")
        > 0
    )


def test_coroners_cases_registered_months_after_death(db):
    delay = one(
        db,
        """select median(date_of_registration - date_of_death) from deaths
        where substr(underlying_cause, 1, 1) = 'X'""",
    )
    natural = one(
        db,
        """select median(date_of_registration - date_of_death) from deaths
        where substr(underlying_cause, 1, 1) in ('I', 'C', 'J')""",
    )
    assert delay > 60 and natural < 15


def test_identifiers_vary_as_in_life(db):
    """One person's records disagree on some identifiers; different people can share a name."""
    varied = one(
        db,
        """select count(*) from (select t.person_id from treatment x join truth t using (record_id)
        group by t.person_id having count(distinct x.forename_token) > 1)""",
    )
    assert varied > 0
    swapped = one(
        db,
        """select count(*) from (select t.person_id from convictions x join truth t using (record_id)
        where x.date_of_birth is not null group by t.person_id having count(distinct x.date_of_birth) > 1)""",
    )
    assert swapped > 0
    assert one(db, "select count(*) from persons where twin_of is not null") > 0


def test_noise_free_population_has_consistent_identities(clean_population):
    con = duckdb.connect()
    rows = con.execute(f"""
        with recs as (
            select * from read_parquet('{clean_population}/landing/*.parquet', union_by_name = true)
        )
        select count(*) filter (where n_fore > 1 or n_sur > 1 or n_dob > 1)
        from (select t.person_id, count(distinct forename_token) n_fore, count(distinct surname_token) n_sur,
                     count(distinct date_of_birth) n_dob
              from recs join read_parquet('{clean_population}/truth/records.parquet') t using (record_id)
              group by t.person_id)""").fetchone()[0]
    assert rows == 0


def test_most_other_source_records_match_nobody_in_treatment(db):
    for source in ("convictions", "benefits", "deaths"):
        share = one(
            db,
            f"""select avg(case when p.kind = 'treatment' then 0 else 1 end) from
            (select distinct record_id from {source}) r
            join truth t using (record_id) join persons p using (person_id)""",
        )
        assert share > 0.5, source


def test_rates_near_published_figures(small_population, tmp_path):
    """The figures documented in docs/synthetic-population.md, within broad bands."""
    result = synthesise(SynthConfig(persons=12_000, seed=3), tmp_path)
    f = {x.measure: x.value for x in result.stats.figures()}
    assert 45 <= f["new journeys that are opiate users"] <= 65
    assert 6 <= f["episodes starting with no fixed abode"] <= 13
    assert 11 <= f["episodes starting with another housing problem"] <= 20
    assert 30 <= f["fall in convictions, retained 2 years"] <= 60
    assert 30 <= f["fall in convictions, completed within 2 years"] <= 60
    assert f["deaths after treatment that are drug poisonings"] >= 20
    assert f["mean registration delay of drug poisoning deaths"] > 90


def test_some_people_hold_two_person_keys_in_a_source(db):
    """Duplicate PNC nominals and second NINos (extracts.md §2): one person, two keys in a source,
    some of them under an alias; but a key never belongs to two people."""
    for source in ("convictions", "benefits", "treatment"):
        two = one(
            db,
            f"""select count(*) from (select t.person_id from {source} x join truth t using (record_id)
            where t.source = '{source}' and x.source_person_key is not null
            group by t.person_id having count(distinct x.source_person_key) > 1)""",
        )
        assert two > 0, source
        repeat = one(
            db,
            f"""select count(*) from (select t.person_id from {source} x join truth t using (record_id)
            where t.source = '{source}' group by t.person_id having count(distinct record_id) > 1)""",
        )
        if source == "convictions":  # 13% of repeat offenders, less those recorded on one day only
            assert 0.06 < two / repeat < 0.2, two / repeat
        shared = one(
            db,
            f"""select count(*) from (select x.source_person_key from {source} x join truth t using (record_id)
            where t.source = '{source}' and x.source_person_key is not null
            group by x.source_person_key having count(distinct t.person_id) > 1)""",
        )
        assert shared == 0, source


def test_second_key_records_carry_the_alias(monkeypatch):
    """With every other identifier error off, the records under a second id differ from the
    first id's records in a forename, surname or date of birth, and only those do."""
    import dataclasses

    import numpy as np

    from outcomes.synth import noise
    from outcomes.synth.calendar import DeliveryCalendar
    from outcomes.synth.people import Geography, NamePools, make_people

    off = {f.name: 0.0 for f in dataclasses.fields(noise.NoiseRates)}
    monkeypatch.setitem(noise.RATES, "convictions", noise.NoiseRates(**{**off, "second_key_alias": 1.0}))
    cal = DeliveryCalendar("2024-04", 12, 48)
    people = make_people(np.random.default_rng(1), 0, 300, cal, NamePools(), Geography(), 0.0)
    rows = np.repeat(np.arange(300), 3)
    day = np.tile(np.array([cal.window_start - 400, cal.window_start - 200, cal.window_start]), 300)
    clear = noise.recorded_identity(
        np.random.default_rng(2), people, rows, day, "convictions", np.arange(900).astype(str), 1.0,
        extra=np.random.default_rng(3),
    )  # fmt: skip
    second = clear["source_person_id"].str.endswith(noise.SECOND_KEY_SUFFIX).to_numpy()
    assert 0.5 < second.mean() < 0.9  # everyone has a second id, from some later record on
    first_of = clear[~second].groupby(rows[~second]).first()
    other = clear[second]
    ref = first_of.loc[rows[second]]
    differs = (
        (other["forename"].to_numpy() != ref["forename"].to_numpy())
        | (other["surname"].to_numpy() != ref["surname"].to_numpy())
        | (other["date_of_birth"].to_numpy() != ref["date_of_birth"].to_numpy())
    )
    assert differs.mean() > 0.95
    # under the first id, nothing varies (every other error is off)
    assert (clear[~second].groupby(rows[~second])[["forename", "surname", "date_of_birth"]].nunique() == 1).all().all()


def _initial_tokens() -> set[str]:
    """The forename tokens of a bare initial, under the simulated providers' key."""
    p = Pseudonymiser(provider_key(SMALL.seed))
    return {p.token("forename", chr(c)) for c in range(ord("A"), ord("Z") + 1)}


def test_treatment_records_with_initials_only(db):
    tokens = _initial_tokens()
    db.execute("create or replace temp table initial_tokens(t varchar)")
    db.executemany("insert into initial_tokens values (?)", [[t] for t in sorted(tokens)])
    share = one(
        db,
        """select avg(case when forename_token in (select t from initial_tokens) then 1 else 0 end)
        from (select distinct record_id, forename_token from treatment)""",
    )
    assert 0.01 < share < 0.06  # 3% of treatment records at noise 1


def test_noise_zero_gives_one_key_per_person_in_convictions_and_benefits(clean_population):
    con = duckdb.connect()
    for source in ("convictions", "benefits"):
        n = con.execute(f"""select count(*) from (select t.person_id
            from read_parquet('{clean_population}/landing/{source}_*.parquet') x
            join read_parquet('{clean_population}/truth/records.parquet') t using (record_id)
            group by t.person_id having count(distinct x.source_person_key) > 1)""").fetchone()[0]
        assert n == 0, source


def test_names_and_birth_dates_as_in_england():
    """Surnames at England and Wales shares (Smith about 1.3%, a long tail of rare names), no
    namesakes of one district by chance, and ages truncated, not clipped onto one birth date."""
    import numpy as np
    import pandas as pd

    from outcomes.synth import names
    from outcomes.synth.calendar import DeliveryCalendar
    from outcomes.synth.people import TREATMENT, Geography, NamePools, make_people

    pools = NamePools()
    top = pd.Series(pools.p_surname[: len(names.TOP_SURNAME_PERCENT)], index=pools.surnames[:10])
    assert top.to_dict() == pytest.approx({k: v / 100 for k, v in names.TOP_SURNAME_PERCENT.items()})
    assert pools.p_surname.sum() == pytest.approx(1.0) and (np.diff(pools.p_surname) <= 1e-12).all()
    assert len(pools.surnames) > 20_000 and pools.p_male[0] < 0.06 and pools.p_female[0] < 0.06

    cal = DeliveryCalendar("2023-04", 36, 120)
    people = make_people(np.random.default_rng(3), 0, 10_000, cal, pools, Geography(), 1.0)
    df = pd.DataFrame({"f": people.forename, "s": people.surname, "x": people.sex, "d": people.district})
    df = df[people.twin_of < 0]
    assert 0.008 < (df["s"] == "SMITH").mean() < 0.02
    assert df["s"].nunique() > 0.3 * len(df)
    assert (df.groupby(["f", "s", "x", "d"]).size() > 1).sum() <= 2  # chance namesakes of a district
    assert pd.Series(people.dob).value_counts().max() <= 10  # no pile-up on the youngest age
    age = (cal.window_start - people.dob) / 365.25
    adult = people.kind == TREATMENT
    assert age[adult].min() >= 18 and 38 < age[adult].mean() < 45
