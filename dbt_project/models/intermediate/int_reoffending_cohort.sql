-- One row per person and rolling period for outcomes.md §3: the person's earliest journey
-- starting in the period with a proven offence disposed of in the 24 months before its start,
-- with offences counted in the 12- and 24-month follow-ups and the 24 months before.
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
),

offences as (
    select * from {{ ref('int_proven_offences') }}
),

starts as (
    select
        periods.period_end,
        journeys.*,
        row_number() over (
            partition by periods.period_end, journeys.person_id order by journeys.start_date, journeys.journey_number
        ) as start_rank
    from periods
    inner join journeys
        on journeys.start_date >= periods.period_start and journeys.start_date <= periods.period_end
        {% if is_incremental() %}and {{ is_changed_person_or_new_period('journeys.person_id', 'periods.period_end') }}{% endif %}
    where exists (
        select 1 from offences as prior
        where prior.person_id = journeys.person_id
            and prior.disposal_date >= {{ add_months('journeys.start_date', -24) }}
            and prior.disposal_date < journeys.start_date
    )
),

cohort as (
    select
        period_end, person_id, journey_id, start_date, first_la_code as la_code, substance_group,
        exit_date, exit_type,
        {{ add_days('start_date', 1) }} as follow_up_start,
        {{ add_months(add_days('start_date', 1), 12) }} as follow_up_12_end,
        {{ add_months(add_days('start_date', 1), 24) }} as follow_up_24_end,
        {{ add_months('start_date', -24) }} as before_start
    from starts
    where start_rank = 1
),

counted as (
    select
        cohort.person_id,
        cohort.period_end,
        {{ count_if("offences.offence_date >= cohort.follow_up_start and offences.offence_date < cohort.follow_up_12_end
            and offences.disposal_date < " ~ add_months('cohort.follow_up_12_end', 6)) }} as reoffences_12m,
        {{ count_if("offences.offence_date >= cohort.before_start and offences.offence_date < cohort.start_date
            and offences.disposal_date < " ~ add_months('cohort.start_date', 6)) }} as offences_before,
        {{ count_if("offences.offence_date >= cohort.before_start and offences.offence_date < cohort.start_date
            and offences.disposal_date < " ~ add_months('cohort.start_date', 6) ~ " and offences.trigger_offence") }}
            as trigger_offences_before,
        {{ count_if("offences.offence_date >= cohort.follow_up_start and offences.offence_date < cohort.follow_up_24_end
            and offences.disposal_date < " ~ add_months('cohort.follow_up_24_end', 6)) }} as offences_after,
        {{ count_if("offences.offence_date >= cohort.follow_up_start and offences.offence_date < cohort.follow_up_24_end
            and offences.disposal_date < " ~ add_months('cohort.follow_up_24_end', 6) ~ " and offences.trigger_offence") }}
            as trigger_offences_after
    from cohort
    inner join offences on offences.person_id = cohort.person_id
    group by cohort.person_id, cohort.period_end
)

select
    cohort.period_end,
    cohort.person_id,
    cohort.journey_id,
    cohort.start_date,
    cohort.la_code,
    cohort.substance_group,
    case
        when cohort.exit_date is null or cohort.exit_date >= cohort.follow_up_12_end then 'still_in_treatment'
        when cohort.exit_type = 'successful' then 'successful'
        else 'unsuccessful'
    end as exit_type_12m,
    case
        when cohort.exit_date is null or cohort.exit_date >= cohort.follow_up_24_end then 'retained'
        when cohort.exit_type = 'successful' then 'completed'
        else 'left'
    end as retention_24m,
    counted.reoffences_12m,
    counted.offences_before,
    counted.trigger_offences_before,
    counted.offences_after,
    counted.trigger_offences_after
from cohort
inner join counted on counted.person_id = cohort.person_id and counted.period_end = cohort.period_end
