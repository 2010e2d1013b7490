-- Every journey exit at risk (successful, unsuccessful, transferred) followed out of treatment
-- until death, the next journey, 5 years or `as_of` (outcomes.md §4), split into the time-since-
-- exit bands. Day k after exit is exit + k; person-time is kept in days so sums are exact.
-- Incremental by person and exit: an incremental build recomputes the exits of the changed persons
-- and the exits still followed on the last build's date (their follow-up was cut at it, and now
-- runs further); an exit whose follow-up ended by then (death, next journey, 5 years) of a person
-- with no change keeps its rows. The rows replaced are those of the changed persons and of the
-- exits recomputed (`replaced_keys`, macros/increments.sql). `follow_up_limit` is the end of
-- follow-up before the cut at `as_of`.
{{ config(
    materialized='incremental', incremental_strategy='replace_changed', unique_key='person_id',
    changed_rows=is_changed_person('person_id'), replaced_keys='journey_id'
) }}

with exits as (
    select
        journeys.journey_id,
        journeys.person_id,
        journeys.exit_date,
        journeys.exit_type,
        journeys.substance_group,
        deaths.date_of_death,
        coalesce(deaths.is_drug_poisoning, false) as is_drug_poisoning,
        {{ add_days('journeys.next_journey_start', -1) }} as day_before_next_journey,
        {{ add_days(add_months(add_days('journeys.exit_date', 1), 60), -1) }} as five_years
    from {{ ref('int_journeys') }} as journeys
    -- The person's death whenever it is: a death on or before the exit (a data or linkage error)
    -- leaves no day at risk, rather than a dead person followed for five years.
    left join {{ ref('int_person_deaths') }} as deaths on deaths.person_id = journeys.person_id
    where journeys.exit_type in ('successful', 'unsuccessful', 'transferred')
),

open_ended as (
    -- The end of follow-up before the cut at `as_of`.
    select
        exits.*,
        least(
            coalesce(date_of_death, five_years),
            coalesce(day_before_next_journey, five_years),
            five_years
        ) as follow_up_limit
    from exits
),

ended as (
    select
        open_ended.*,
        least(follow_up_limit, {{ as_of_date() }}) as follow_up_end
    from open_ended
    {% if is_incremental() %}
    where {{ is_changed_person('person_id') }} or follow_up_limit > {{ previous_as_of() }}
    {% endif %}
),

measured as (
    select
        ended.*,
        greatest({{ days_between('exit_date', 'follow_up_end') }}, 0) as days_followed,
        date_of_death is not null and date_of_death > exit_date and date_of_death <= follow_up_end
            as died_in_follow_up,
        case when date_of_death > exit_date and date_of_death <= follow_up_end
            then {{ days_between('exit_date', 'date_of_death') }} end as death_day
    from ended
),

bands as (
    select '0-28d' as time_since_exit, 1 as first_day, 28 as last_day
    union all select '29-365d', 29, 365
    union all select '1-2y', 366, 730
    union all select '2-5y', 731, 100000
)

select
    measured.journey_id,
    measured.person_id,
    cast(extract(year from measured.exit_date) as integer) as exit_year,
    measured.exit_type,
    measured.substance_group,
    bands.time_since_exit,
    cast(least(measured.days_followed, bands.last_day) - bands.first_day + 1 as bigint) as days_at_risk,
    measured.died_in_follow_up and measured.death_day between bands.first_day and bands.last_day as died,
    measured.died_in_follow_up and measured.death_day between bands.first_day and bands.last_day
        and measured.is_drug_poisoning as died_drug_poisoning,
    measured.follow_up_limit
from measured
inner join bands on measured.days_followed >= bands.first_day
