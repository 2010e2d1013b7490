{#
  Incremental as its source (int_reoffending_cohort, by person and new period): an incremental build
  writes the rows of the persons recomputed (found by their research id) and of the periods new
  since the last build; the others are the same rows as before (docs/marts.md).
#}
{{ config(
    alias='reoffending', materialized='incremental', incremental_strategy='replace_changed', write_changed_only=true,
    on_schema_change='append_new_columns',
    changed_rows='research_person_id in (select ' ~ research_id('person_id') ~ ' from ' ~ changed_persons_relation() ~ ')',
    new_periods='period_end'
) }}
-- Person-level reoffending cohort (outcomes.md §3) for approved researchers.
select
    {{ research_id('person_id') }} as research_person_id,
    period_end,
    start_date as journey_start,
    la_code,
    substance_group,
    exit_type_12m,
    retention_24m,
    reoffences_12m,
    offences_before,
    offences_after,
    trigger_offences_before,
    trigger_offences_after
from {{ ref('int_reoffending_cohort') }}
{% if is_incremental() %}where {{ is_changed_person_or_new_period('person_id', 'period_end') }}{% endif %}
