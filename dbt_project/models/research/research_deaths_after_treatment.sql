{{ config(alias='deaths_after_treatment') }}
-- Person-time after each journey exit by time since exit (outcomes.md §4) for studies of deaths
-- after treatment; one row per exit and band it reaches.
select
    {{ research_id('person_id') }} as research_person_id,
    {{ research_id('journey_id') }} as research_exit_id,
    exit_year,
    exit_type,
    substance_group,
    time_since_exit,
    days_at_risk,
    died,
    died_drug_poisoning
from {{ ref('int_exit_follow_up') }}
