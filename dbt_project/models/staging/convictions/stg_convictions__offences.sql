-- Incremental by record: an incremental build restages only the records with new events or
-- link events since the last build (macros/increments.sql); the others are unchanged.
{{ config(
    materialized='incremental', incremental_strategy='replace_changed', unique_key='offence_id',
    changed_rows=is_changed_record('offence_id', 'convictions')
) }}

with source as (
    {% if is_incremental() %}
    select * from {{ changed_events_as_of('convictions') }}
    {% else %}
    select * from {{ events_as_of('convictions') }}
    {% endif %}
),

spine as (
    select record_id, person_id from {{ ref('stg_linkage__person_records') }} where source = 'convictions'
    {% if is_incremental() %}and {{ is_changed_record('record_id', 'convictions') }}{% endif %}
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
