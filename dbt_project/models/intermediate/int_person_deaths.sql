-- A person's death: the earliest registered date of death (linkage allows one per person).
-- Incremental by person: an incremental build recomputes only the changed persons (macros/increments.sql).
{{ config(
    materialized='incremental', incremental_strategy='replace_changed', unique_key='person_id',
    changed_rows=is_changed_person('person_id')
) }}

with ranked as (
    select
        deaths.*,
        row_number() over (partition by person_id order by date_of_death, death_id) as death_rank
    from {{ ref('int_deaths') }} as deaths
    {% if is_incremental() %}where {{ is_changed_person('deaths.person_id') }}{% endif %}
)

select person_id, death_id, date_of_death, is_drug_poisoning, is_drug_misuse
from ranked
where death_rank = 1
