{{ config(alias='sustained_recovery') }}
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
