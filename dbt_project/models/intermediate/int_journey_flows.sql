-- treatment_flow's journey rows (outcomes.md §5): a `start` row per journey and rolling period in
-- which it starts, with its first episode's area, setting, housing and age band, and an `exit` row
-- per journey and period in which it exits, with its exit episode's. The mart only counts these
-- rows (and int_persons_in_treatment's).
-- `is_effective` (effective treatment, start rows): a successful exit, or 84 days or more from start
-- to exit; null while the journey is open, as it then depends on as_of (the mart decides it).
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

journeys as (
    select * from {{ ref('int_journeys') }}
)

select
    periods.period_end,
    journeys.person_id,
    journeys.journey_id,
    'start' as flow,
    journeys.first_la_code as la_code,
    journeys.substance_group,
    journeys.first_setting as setting,
    journeys.first_housing_status as housing_status,
    {{ age_band('journeys.first_age_at_start') }} as age_band,
    journeys.start_date,
    journeys.exit_type,
    case
        when journeys.exit_type = 'successful' then true
        when journeys.exit_date is null then null
        else {{ days_between('journeys.start_date', 'journeys.exit_date') }} >= 84
    end as is_effective
from periods
inner join journeys
    on journeys.start_date >= periods.period_start and journeys.start_date <= periods.period_end
    {% if is_incremental() %}and {{ is_changed_person_or_new_period('journeys.person_id', 'periods.period_end') }}{% endif %}

union all

select
    periods.period_end,
    journeys.person_id,
    journeys.journey_id,
    'exit',
    journeys.exit_la_code,
    journeys.substance_group,
    journeys.exit_setting,
    journeys.exit_housing_status,
    {{ age_band('journeys.exit_age_at_start') }},
    journeys.start_date,
    journeys.exit_type,
    null
from periods
inner join journeys
    on journeys.exit_date >= periods.period_start and journeys.exit_date <= periods.period_end
    {% if is_incremental() %}and {{ is_changed_person_or_new_period('journeys.person_id', 'periods.period_end') }}{% endif %}
