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
        source.sex,
        {{ age_years('source.date_of_birth', 'source.date_of_death') }} as age_at_death
    from source
    inner join spine on spine.record_id = source.record_id
),

classified as (
    select
        renamed.*,
        (
            cause_3 between 'F11' and 'F16' or cause_3 in ('F18', 'F19')
            or cause_3 between 'X40' and 'X44' or cause_3 between 'X60' and 'X64' or cause_3 = 'X85'
            or cause_3 between 'Y10' and 'Y14'
        ) as is_drug_poisoning
    from renamed
)

select
    classified.*,
    (
        cause_3 between 'F11' and 'F16' or cause_3 in ('F18', 'F19')
        or (is_drug_poisoning and coalesce(controlled_drug_mentioned, false))
    ) as is_drug_misuse
from classified
