{#
  A table written whole by every build. An incremental build would rewrite most of it anyway: the
  follow-up of every exit still followed on the last build's date runs a month further (about half
  the rows, int_exit_follow_up's `follow_up_limit`), and deleting and re-inserting those rows under
  the table's primary key cost more than writing the table anew (1.18 s of CPU against 0.48 s at
  100,000 people: docs/marts.md).
#}
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
