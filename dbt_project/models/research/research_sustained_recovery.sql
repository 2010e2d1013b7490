{#
  Incremental as its source (int_sustained_recovery_cohort, by person and new period): an incremental build
  writes the rows of the persons recomputed (found by their research id) and of the periods new
  since the last build; the others are the same rows as before (docs/marts.md).
#}
{{ config(
    alias='sustained_recovery', materialized='incremental', incremental_strategy='replace_changed', write_changed_only=true,
    on_schema_change='append_new_columns',
    changed_rows='research_person_id in (select ' ~ research_id('person_id') ~ ' from ' ~ changed_persons_relation() ~ ')',
    new_periods='period_end'
) }}
-- Person-level sustained recovery cohort (outcomes.md §2) for approved researchers.
select
    {{ research_id('person_id') }} as research_person_id,
    period_end,
    exit_date,
    la_code,
    substance_group,
    no_representation,
    no_reoffending,
    alive,
    off_out_of_work_benefits,
    sustained_recovery
from {{ ref('int_sustained_recovery_cohort') }}
{% if is_incremental() %}where {{ is_changed_person_or_new_period('person_id', 'period_end') }}{% endif %}
