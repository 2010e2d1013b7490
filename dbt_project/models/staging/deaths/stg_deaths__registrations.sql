-- Incremental by record: an incremental build restages only the records with new events or
-- link events since the last build (macros/increments.sql); the others are unchanged.
{{ config(
    materialized='incremental', incremental_strategy='replace_changed', unique_key='death_id',
    changed_rows=is_changed_record('death_id', 'deaths')
) }}

with source as (
    {% if is_incremental() %}
    select * from {{ changed_events_as_of('deaths') }}
    {% else %}
    select * from {{ events_as_of('deaths') }}
    {% endif %}
),

spine as (
    select record_id, person_id from {{ ref('stg_linkage__person_records') }} where source = 'deaths'
    {% if is_incremental() %}and {{ is_changed_record('record_id', 'deaths') }}{% endif %}
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
