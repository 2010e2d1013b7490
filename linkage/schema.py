"""Tables of the `linkage` schema (identity stays here). The dbt project owns the marts; its
`marts.linkage_quality` reads `linkage.quality`."""

from __future__ import annotations

from outcomes.contract.extracts import IDENTITY_BLOCK
from outcomes.eventstore.schema import SQL_TYPES

IDENTITY_COLS = ", ".join(f"{c.name} {SQL_TYPES[c.type]}" for c in IDENTITY_BLOCK if c.name != "record_id")


def spine_sql(as_of: str | None, extra: str = "") -> str:
    """Each record's person from its latest link event, among the events known on `as_of` (a SQL
    expression; None: all of them, the current spine).

    Latest by the knowledge date of the run that wrote the event (`linkage.runs.as_of`), then by
    run: a run as of an earlier date made after a later date's run (a past date linked afterwards)
    slots in beneath it, and never changes the spine as of the later date. Runs made in date order
    (every monthly refresh) rank exactly as by run alone. Within a run a merge or split comes after
    the record's assignment. A record whose latest event is `unlink` is not in the spine."""
    seen = "" if as_of is None else f"where e.as_of <= {as_of} "
    cols = ", ".join(["source", "record_id", "person_id", *([extra] if extra else [])])
    return (
        f"select {cols} from (select e.*, row_number() over (partition by e.source, e.record_id "
        "order by r.as_of desc nulls last, e.run_id desc, case e.event when 'assign' then 0 else 1 end desc) as rk "
        f"from linkage.link_events e left join linkage.runs r on r.run_id = e.run_id {seen}) x "
        "where rk = 1 and event <> 'unlink'"
    )


def spine_as_of_sql(as_of: str = ":as_of") -> str:
    """The spine as known on a date: each record's latest link event among those whose knowledge
    date is on or before it (spine_sql)."""
    return spine_sql(as_of)


DDL = [
    "create schema if not exists linkage",
    """create table if not exists linkage.runs (
        run_id bigint primary key, as_of date, model_version varchar not null, records_new bigint,
        variants bigint, candidate_pairs bigint, links bigint, reviews bigint, merges bigint, persons_new bigint,
        seconds double precision, blocking varchar, created_at timestamp not null,
        review_decisions bigint, splits bigint, expected_precision double precision,
        expected_recall double precision)""",
    # Clerical review decisions, append-only (linkage.review): every run applies them all.
    """create table if not exists linkage.review_decisions (
        decision_id bigint primary key, left_source varchar not null, left_record_id varchar not null,
        right_source varchar not null, right_record_id varchar not null, decision varchar not null,
        reviewer varchar not null, decided_at timestamp not null, imported_at timestamp not null, file varchar)""",
    """create table if not exists linkage.models (
        model_version varchar primary key, trained_in_run bigint not null, model_json varchar not null)""",
    f"""create table if not exists linkage.identities (
        source varchar not null, record_id varchar not null, node varchar not null, run_id bigint not null,
        {IDENTITY_COLS})""",
    """create table if not exists linkage.link_events (
        run_id bigint not null, as_of date, source varchar not null, record_id varchar not null,
        person_id varchar not null, previous_person_id varchar, event varchar not null, decided_by varchar not null,
        weight double precision, model_version varchar not null)""",
    """create table if not exists linkage.pair_decisions (
        run_id bigint not null, left_source varchar, left_record_id varchar, right_source varchar,
        right_record_id varchar, forename_level smallint, surname_level smallint, dob_level smallint,
        sex_level smallint, postcode_level smallint, key_level smallint, weight double precision,
        probability double precision,
        decision varchar not null, reason varchar, model_version varchar not null)""",
    """create table if not exists linkage.quality (
        run_id bigint not null, as_of date, source_a varchar, source_b varchar, records_a bigint, records_b bigint,
        linked_records bigint, match_rate double precision, review_pairs bigint,
        pairwise_precision double precision, pairwise_recall double precision, pairwise_f1 double precision,
        cluster_precision double precision, cluster_recall double precision, cluster_f1 double precision,
        expected_precision double precision, expected_recall double precision)""",
    # Match rates per source pair within groups of source_a's records (sex, age band, region),
    # beside the true rate: biased linkage shows as groups linked less often than truth says.
    """create table if not exists linkage.quality_by_group (
        run_id bigint not null, as_of date, source_a varchar, source_b varchar, dimension varchar not null,
        value varchar not null, records_a bigint, linked_records bigint, match_rate double precision,
        true_match_rate double precision)""",
    """create table if not exists linkage.blocking_passes (
        run_id bigint not null, as_of date, pass varchar not null, pass_order integer not null, pairs bigint,
        new_pairs bigint, reduction_ratio double precision, true_pairs_found bigint,
        pair_completeness double precision, oversized_blocks bigint)""",
    """create table if not exists linkage.match_rates (
        run_id bigint not null, as_of date, source varchar, dimension varchar, value varchar, records bigint,
        linked_to_treatment bigint, rate double precision, true_rate double precision)""",
    # The spine: each record's person, from its latest link event (merges move records); see spine_sql.
    "create or replace view linkage.person_records as " + spine_sql(None, "run_id, as_of"),
    """create or replace view linkage.clerical_review as
        select * from linkage.pair_decisions where decision = 'review'""",
]
