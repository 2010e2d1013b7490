{{ config(alias='reoffending') }}
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
