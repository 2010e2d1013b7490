-- Deaths with the ONS drug poisoning and drug misuse flags: the first three characters of the
-- underlying cause decide (outcomes.md §4).
-- Incremental by person: an incremental build recomputes only the changed persons (macros/increments.sql).
{{ config(
    materialized='incremental', incremental_strategy='replace_changed', unique_key='person_id',
    changed_rows=is_changed_person('person_id')
) }}

with deaths as (
    select * from {{ ref('stg_deaths__registrations') }}
    {% if is_incremental() %}where {{ is_changed_person('person_id') }}{% endif %}
),

classified as (
    select
        deaths.*,
        (
            cause_3 between 'F11' and 'F16' or cause_3 in ('F18', 'F19')
            or cause_3 between 'X40' and 'X44' or cause_3 between 'X60' and 'X64' or cause_3 = 'X85'
            or cause_3 between 'Y10' and 'Y14'
        ) as is_drug_poisoning
    from deaths
)

select
    classified.*,
    (
        cause_3 between 'F11' and 'F16' or cause_3 in ('F18', 'F19')
        or (is_drug_poisoning and coalesce(controlled_drug_mentioned, false))
    ) as is_drug_misuse
from classified
