-- Each drug poisoning or misuse death with the person's treatment status at death (outcomes.md §4).
-- Incremental by person: an incremental build recomputes only the changed persons (macros/increments.sql).
{{ config(
    materialized='incremental', incremental_strategy='replace_changed', unique_key='person_id',
    changed_rows=is_changed_person('person_id')
) }}

with deaths as (
    select * from {{ ref('int_deaths') }} where (is_drug_poisoning or is_drug_misuse)
    {% if is_incremental() %}and {{ is_changed_person('person_id') }}{% endif %}
),

episodes as (
    select * from {{ ref('int_episodes') }}
),

latest_exit as (
    select
        deaths.death_id,
        max(journeys.exit_date) as exit_date
    from deaths
    inner join {{ ref('int_journeys') }} as journeys
        on journeys.person_id = deaths.person_id and journeys.exit_date < deaths.date_of_death
    group by deaths.death_id
)

select
    deaths.death_id,
    deaths.person_id,
    deaths.date_of_death,
    deaths.date_of_registration,
    deaths.la_code,
    deaths.sex,
    {{ age_band('deaths.age_at_death') }} as age_band,
    deaths.is_drug_poisoning,
    deaths.is_drug_misuse,
    case
        when exists (
            select 1 from episodes
            where episodes.person_id = deaths.person_id
                and (
                    episodes.discharge_reason = 'died'
                    or (episodes.start_date <= deaths.date_of_death
                        and (episodes.discharge_date is null or episodes.discharge_date >= deaths.date_of_death))
                )
        ) then 'in_treatment'
        when latest_exit.exit_date >= {{ add_months('deaths.date_of_death', -12) }} then 'left_within_1_year'
        when latest_exit.exit_date is not null then 'left_over_1_year'
        else 'never_in_treatment'
    end as treatment_status
from deaths
left join latest_exit on latest_exit.death_id = deaths.death_id
