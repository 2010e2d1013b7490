-- Incremental by record: an incremental build restages only the records with new events or
-- link events since the last build (macros/increments.sql); the others are unchanged.
{{ config(
    materialized='incremental', incremental_strategy='replace_changed', unique_key='spell_id',
    changed_rows=is_changed_record('spell_id', 'benefits')
) }}

with source as (
    {% if is_incremental() %}
    select * from {{ changed_events_as_of('benefits') }}
    {% else %}
    select * from {{ events_as_of('benefits') }}
    {% endif %}
),

spine as (
    select record_id, person_id from {{ ref('stg_linkage__person_records') }} where source = 'benefits'
    {% if is_incremental() %}and {{ is_changed_record('record_id', 'benefits') }}{% endif %}
),

renamed as (
    select
        source.record_id as spell_id,
        spine.person_id,
        source.benefit_type,
        source.uc_conditionality,
        source.spell_start,
        source.spell_end,
        (
            source.benefit_type in ('JSA', 'ESA', 'IS', 'IB')
            or (
                source.benefit_type = 'UC'
                and source.uc_conditionality in (
                    'searching_for_work', 'no_work_requirements', 'planning_for_work', 'preparing_for_work'
                )
            )
        ) as is_out_of_work
    from source
    inner join spine on spine.record_id = source.record_id
)

select * from renamed
