-- Linkage quality (outcomes.md §8) of the latest linkage run known at `as_of`: one row per
-- source pair (breakdown 'all'), then the same match rate within groups of source_a's records
-- (every ordered pair of sources)
-- by sex, age band and region (breakdown 'sex', 'age_band', 'region'), beside the true rate
-- where there is ground truth, so that linkage biased against a group is visible.
-- The latest run is by knowledge date, then run: a past date linked afterwards does not replace
-- the quality of a later date's run.
-- Every row replaced by each build (strategy replace_all, macros/increments.sql).
{{ config(materialized='incremental', incremental_strategy='replace_all', on_schema_change='append_new_columns') }}
with runs as (
    select run_id from {{ source('linkage', 'quality') }}
    where as_of <= {{ as_of_date() }}
    order by as_of desc, run_id desc
    limit 1
),

pairs as (
    select
        quality.run_id,
        quality.source_a,
        quality.source_b,
        'all' as breakdown,
        'all' as breakdown_value,
        quality.records_a,
        quality.records_b,
        quality.linked_records,
        quality.match_rate,
        quality.review_pairs,
        quality.pairwise_precision,
        quality.pairwise_recall,
        quality.pairwise_f1,
        quality.cluster_precision,
        quality.cluster_recall,
        quality.cluster_f1,
        quality.expected_precision,
        quality.expected_recall,
        cast(null as double precision) as true_match_rate
    from {{ source('linkage', 'quality') }} as quality
    inner join runs on runs.run_id = quality.run_id
),

groups as (
    select
        by_group.run_id,
        by_group.source_a,
        by_group.source_b,
        by_group.dimension as breakdown,
        by_group.value as breakdown_value,
        by_group.records_a,
        cast(null as bigint) as records_b,
        by_group.linked_records,
        by_group.match_rate,
        cast(null as bigint) as review_pairs,
        cast(null as double precision) as pairwise_precision,
        cast(null as double precision) as pairwise_recall,
        cast(null as double precision) as pairwise_f1,
        cast(null as double precision) as cluster_precision,
        cast(null as double precision) as cluster_recall,
        cast(null as double precision) as cluster_f1,
        cast(null as double precision) as expected_precision,
        cast(null as double precision) as expected_recall,
        by_group.true_match_rate
    from {{ source('linkage', 'quality_by_group') }} as by_group
    inner join runs on runs.run_id = by_group.run_id
)

select
    {{ as_of_date() }} as as_of,
    run_id,
    source_a,
    source_b,
    records_a,
    records_b,
    linked_records,
    match_rate,
    review_pairs,
    pairwise_precision,
    pairwise_recall,
    pairwise_f1,
    cluster_precision,
    cluster_recall,
    cluster_f1,
    breakdown,
    breakdown_value,
    true_match_rate,
    expected_precision,
    expected_recall
from (
    select * from pairs
    union all
    select * from groups
) as rows_
