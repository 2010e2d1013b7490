-- Before/after conviction counts (2012 treatment-and-reconviction study). Not causal effects.
with cohort as (
    select * from {{ ref('int_reoffending_cohort') }}
),

scoped as (
    select period_end, la_code, substance_group, retention_24m as retention, 'all' as offence_scope,
        offences_before, offences_after
    from cohort
    union all
    select period_end, la_code, substance_group, retention_24m, 'trigger',
        trigger_offences_before, trigger_offences_after
    from cohort
),

counts as (
    {{ with_england('scoped', ['period_end', 'la_code', 'substance_group', 'retention', 'offence_scope'], [
        ['cast(count(*) as bigint)', 'cohort'],
        ['cast(sum(offences_before) as bigint)', 'offences_before'],
        ['cast(sum(offences_after) as bigint)', 'offences_after'],
    ]) }}
),

rated as (
    select
        counts.*,
        {{ rate('offences_after - offences_before', 'offences_before', 100) }} as percent_change,
        {{ add_months('period_end', 30) }} > {{ as_of_date() }} as provisional
    from counts
),

expanded as (
    {{ expand_periods('rated') }}
)

select
    as_of, period_type, period_label, period_end, la_code, substance_group, retention, offence_scope,
    cohort, offences_before, offences_after, percent_change, provisional
from expanded
