-- Offences that can be proven offences: active (quashed rows are gone from the as-of state) and
-- not in the breach group. Windows and the 6-month waiting period are applied by each cohort.
-- Incremental by person: an incremental build recomputes only the changed persons (macros/increments.sql).
{{ config(
    materialized='incremental', incremental_strategy='replace_changed', unique_key='person_id', write_changed_only=true,
    changed_rows=is_changed_person('person_id')
) }}

select
    person_id,
    offence_id,
    offence_date,
    disposal_date,
    coalesce(trigger_offence, false) as trigger_offence
from {{ ref('stg_convictions__offences') }}
where (offence_group is null or offence_group <> 'breach')
    {% if is_incremental() %}and {{ is_changed_person('person_id') }}{% endif %}
