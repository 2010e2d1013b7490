-- One row per person and rolling period: the person's latest journey exit in the period and
-- whether an out-of-work benefit spell covers the journey start, exit + 6 and exit + 12 months.
-- Incremental by person: an incremental build recomputes the changed persons, and everyone's
-- periods new since the last build (macros/increments.sql).
{{ config(
    materialized='incremental', incremental_strategy='replace_changed', unique_key='person_id',
    changed_rows=is_changed_person('person_id'), new_periods='period_end',
    keep_replaced=true, post_hook="{{ drop_replaced() }}"
) }}

with periods as (
    select * from {{ ref('int_periods') }} where period_type = 'rolling_12_months'
),

exits as (
    select
        periods.period_end,
        journeys.*,
        row_number() over (
            partition by periods.period_end, journeys.person_id
            order by journeys.exit_date desc, journeys.start_date desc
        ) as exit_rank
    from periods
    inner join {{ ref('int_journeys') }} as journeys
        on journeys.exit_date >= periods.period_start and journeys.exit_date <= periods.period_end
        {% if is_incremental() %}and {{ is_changed_person_or_new_period('journeys.person_id', 'periods.period_end') }}{% endif %}
),

cohort as (
    select
        period_end, person_id, journey_id, start_date, exit_date, exit_type, exit_la_code as la_code,
        substance_group,
        {{ add_months('exit_date', 6) }} as at_6_months,
        {{ add_months('exit_date', 12) }} as at_12_months
    from exits
    where exit_rank = 1
),

spells as (
    select * from {{ ref('stg_benefits__spells') }} where is_out_of_work
)

select
    cohort.*,
    exists (
        select 1 from spells where spells.person_id = cohort.person_id
            and spells.spell_start <= cohort.start_date
            and (spells.spell_end is null or spells.spell_end >= cohort.start_date)
    ) as oow_at_start,
    exists (
        select 1 from spells where spells.person_id = cohort.person_id
            and spells.spell_start <= cohort.at_6_months
            and (spells.spell_end is null or spells.spell_end >= cohort.at_6_months)
    ) as oow_at_6_months,
    exists (
        select 1 from spells where spells.person_id = cohort.person_id
            and spells.spell_start <= cohort.at_12_months
            and (spells.spell_end is null or spells.spell_end >= cohort.at_12_months)
    ) as oow_at_12_months
from cohort
