-- The person spine as known at `as_of`: each record's latest link event among those whose
-- knowledge date is on or before it (a later merge or split does not rewrite an earlier build).
-- Latest by the knowledge date of the run that wrote it, then by run: a past date linked after a
-- later one slots in beneath the later run (linkage.schema.spine_sql, the same query). A record
-- whose latest event is `unlink` is not in the spine as of that date.
-- Incremental by record: an incremental build re-ranks only the records with new events or link
-- events since the last build (macros/increments.sql).
{{ config(
    materialized='incremental', incremental_strategy='replace_changed', unique_key=['source', 'record_id'],
    changed_rows=is_changed_source_record('stg_linkage__person_records')
) }}

with source as (
    select
        events.*,
        runs.as_of as run_as_of
    from {{ source('linkage', 'link_events') }} as events
    left join {{ source('linkage', 'runs') }} as runs on runs.run_id = events.run_id
    where events.as_of <= {{ as_of_date() }}
        {% if is_incremental() %}and {{ is_changed_source_record('events') }}{% endif %}
),

ranked as (
    select
        source.*,
        row_number() over (
            partition by source, record_id
            order by run_as_of desc nulls last, run_id desc, case event when 'assign' then 0 else 1 end desc
        ) as version_rank
    from source
),

renamed as (
    select source, record_id, person_id, run_id as linked_in_run
    from ranked
    where version_rank = 1 and event <> 'unlink'
)

select * from renamed
