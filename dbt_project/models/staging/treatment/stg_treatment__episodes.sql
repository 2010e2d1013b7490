-- Incremental by record: an incremental build restages only the records with new events or
-- link events since the last build (macros/increments.sql); the others are unchanged.
{{ config(
    materialized='incremental', incremental_strategy='replace_changed', unique_key='episode_id',
    changed_rows=is_changed_record('episode_id', 'treatment')
) }}

with source as (
    {% if is_incremental() %}
    select * from {{ changed_events_as_of('treatment') }}
    {% else %}
    select * from {{ events_as_of('treatment') }}
    {% endif %}
),

spine as (
    select record_id, person_id from {{ ref('stg_linkage__person_records') }} where source = 'treatment'
    {% if is_incremental() %}and {{ is_changed_record('record_id', 'treatment') }}{% endif %}
),

renamed as (
    select
        source.record_id as episode_id,
        spine.person_id,
        source.provider_code,
        coalesce(source.la_code, 'unknown') as la_code,
        coalesce(source.setting, 'unknown') as setting,
        source.referral_source,
        source.referral_date,
        source.treatment_start_date as start_date,
        source.discharge_date,
        source.discharge_reason,
        source.substance_1,
        source.substance_2,
        source.substance_3,
        source.injecting_status,
        coalesce(source.housing_status, 'unknown') as housing_status,
        source.sex,
        {{ age_years('source.date_of_birth', 'source.treatment_start_date') }} as age_at_start
    from source
    inner join spine on spine.record_id = source.record_id
)

select * from renamed
