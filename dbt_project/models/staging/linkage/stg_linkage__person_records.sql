-- The person spine as known at `as_of`: each record's latest link event among runs whose
-- knowledge date is on or before it (a later merge or split does not rewrite an earlier build).
with source as (
    select * from {{ source('linkage', 'link_events') }}
    where as_of <= {{ as_of_date() }}
),

ranked as (
    select
        source.*,
        row_number() over (
            partition by source, record_id
            order by run_id desc, case event when 'assign' then 0 else 1 end desc
        ) as version_rank
    from source
),

renamed as (
    select source, record_id, person_id, run_id as linked_in_run
    from ranked
    where version_rank = 1
)

select * from renamed
