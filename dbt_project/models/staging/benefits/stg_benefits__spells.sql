with source as (
    select * from {{ events_as_of('benefits') }}
),

spine as (
    select record_id, person_id from {{ ref('stg_linkage__person_records') }} where source = 'benefits'
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
