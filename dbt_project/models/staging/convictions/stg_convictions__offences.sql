with source as (
    select * from {{ events_as_of('convictions') }}
),

spine as (
    select record_id, person_id from {{ ref('stg_linkage__person_records') }} where source = 'convictions'
),

renamed as (
    select
        source.record_id as offence_id,
        spine.person_id,
        source.offence_date,
        source.disposal_date,
        source.offence_code,
        source.offence_group,
        source.trigger_offence,
        source.disposal_type,
        source.custody_release_date,
        source.police_force_code
    from source
    inner join spine on spine.record_id = source.record_id
)

select * from renamed
