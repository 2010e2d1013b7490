{#
  Incremental as its source (int_exit_follow_up, by person and exit): an incremental build writes
  the rows of the persons recomputed (found by their research id) and of every exit whose follow-up
  had not ended on the last build's date (`follow_up_limit`, the exits int_exit_follow_up recomputed);
  all the rows of such an exit are replaced (`replaced_keys`). The others are the same rows as
  before (docs/marts.md).
#}
{{ config(
    alias='deaths_after_treatment', materialized='incremental', incremental_strategy='replace_changed',
    on_schema_change='append_new_columns',
    changed_rows='research_person_id in (select ' ~ research_id('person_id') ~ ' from ' ~ changed_persons_relation() ~ ')',
    replaced_keys='research_exit_id'
) }}
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
{% if is_incremental() %}where {{ is_changed_person('person_id') }} or follow_up_limit > {{ previous_as_of() }}{% endif %}
