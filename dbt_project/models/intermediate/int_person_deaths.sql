-- A person's death: the earliest registered date of death (linkage allows one per person).
with ranked as (
    select
        deaths.*,
        row_number() over (partition by person_id order by date_of_death, death_id) as death_rank
    from {{ ref('int_deaths') }} as deaths
)

select person_id, death_id, date_of_death, is_drug_poisoning, is_drug_misuse
from ranked
where death_rank = 1
