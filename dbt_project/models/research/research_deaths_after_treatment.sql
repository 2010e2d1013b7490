{#
  Incremental as its source (int_exit_follow_up, by person and exit): an incremental build
  recomputes the exits of the persons recomputed (found by their research id) and every exit still
  followed on the last build's date (`follow_up_limit` after it: its follow-up runs a month
  further), and of those rows writes only the ones that differ (`write_changed_only`: mostly the
  last band of each exit still followed). The rows in scope are the changed persons' and those of
  every exit recomputed (`replaced_keys`). Written whole, as it was before branch dbt14, it cost
  0.43 to 0.55 s of CPU per monthly build at 100,000 people (docs/marts.md).
#}
{{ config(
    alias='deaths_after_treatment', materialized='incremental', incremental_strategy='replace_changed',
    write_changed_only=true, on_schema_change='append_new_columns',
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
