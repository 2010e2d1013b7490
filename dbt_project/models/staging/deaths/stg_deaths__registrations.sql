with source as (
    select * from {{ events_as_of('deaths') }}
),

spine as (
    select record_id, person_id from {{ ref('stg_linkage__person_records') }} where source = 'deaths'
),

renamed as (
    select
        source.record_id as death_id,
        spine.person_id,
        source.date_of_death,
        source.date_of_registration,
        source.underlying_cause,
        substring(source.underlying_cause, 1, 3) as cause_3,
        source.controlled_drug_mentioned,
        coalesce(source.la_code, 'unknown') as la_code,
        coalesce(source.sex, 'U') as sex,
        {{ age_years('source.date_of_birth', 'source.date_of_death') }} as age_at_death
    from source
    inner join spine on spine.record_id = source.record_id
)

select * from renamed
