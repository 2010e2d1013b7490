-- One row per person and rolling period: the person's latest successful exit in the period and
-- the four 12-month follow-up flags of outcomes.md §2 (follow-up starts the day after exit).
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

exits as (
    select
        periods.period_end,
        journeys.*,
        {{ add_days('journeys.exit_date', 1) }} as follow_up_start,
        row_number() over (
            partition by periods.period_end, journeys.person_id
            order by journeys.exit_date desc, journeys.start_date desc
        ) as exit_rank
    from periods
    inner join journeys
        on journeys.exit_type = 'successful'
        and journeys.exit_date >= periods.period_start and journeys.exit_date <= periods.period_end
        {% if is_incremental() %}and {{ is_changed_person_or_new_period('journeys.person_id', 'periods.period_end') }}{% endif %}
),

cohort as (
    select
        period_end, person_id, journey_id, exit_date, exit_la_code as la_code, substance_group,
        follow_up_start,
        {{ add_months('follow_up_start', 6) }} as month_7_start,
        {{ add_months('follow_up_start', 12) }} as follow_up_end
    from exits
    where exit_rank = 1
),

flagged as (
    select
        cohort.*,
        not exists (
            select 1 from journeys as later
            where later.person_id = cohort.person_id
                and later.start_date >= cohort.follow_up_start and later.start_date < cohort.follow_up_end
        ) as no_representation,
        not exists (
            select 1 from {{ ref('int_proven_offences') }} as offences
            where offences.person_id = cohort.person_id
                and offences.offence_date >= cohort.follow_up_start and offences.offence_date < cohort.follow_up_end
                and offences.disposal_date < {{ add_months('cohort.follow_up_end', 6) }}
        ) as no_reoffending,
        not exists (
            select 1 from {{ ref('int_person_deaths') }} as deaths
            where deaths.person_id = cohort.person_id
                and deaths.date_of_death >= cohort.follow_up_start and deaths.date_of_death < cohort.follow_up_end
        ) as alive,
        not exists (
            select 1 from {{ ref('stg_benefits__spells') }} as spells
            where spells.person_id = cohort.person_id
                and spells.is_out_of_work
                and spells.spell_start < cohort.follow_up_end
                and (spells.spell_end is null or spells.spell_end >= cohort.month_7_start)
        ) as off_out_of_work_benefits
    from cohort
)

select
    flagged.*,
    no_representation and no_reoffending and alive and off_out_of_work_benefits as sustained_recovery
from flagged
