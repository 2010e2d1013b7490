-- Every row replaced by each build (strategy replace_all, macros/increments.sql).
{{ config(materialized='incremental', incremental_strategy='replace_all', on_schema_change='append_new_columns') }}
with deaths as (
    select * from {{ ref('int_death_treatment_status') }}
),

by_basis as (
    select 'registration' as year_basis, cast(extract(year from date_of_registration) as integer) as year, deaths.*
    from deaths
    union all
    select 'occurrence', cast(extract(year from date_of_death) as integer), deaths.*
    from deaths
),

counts as (
    {{ with_england('by_basis', ['year', 'year_basis', 'la_code', 'sex', 'age_band', 'treatment_status'], [
        [count_if('is_drug_poisoning'), 'drug_poisoning_deaths'],
        [count_if('is_drug_misuse'), 'drug_misuse_deaths'],
    ]) }}
)

select
    {{ as_of_date() }} as as_of,
    year, year_basis, la_code, sex, age_band, treatment_status, drug_poisoning_deaths, drug_misuse_deaths
from counts
