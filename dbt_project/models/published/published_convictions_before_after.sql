{{ config(alias='convictions_before_after') }}
-- Before/after changes in convictions cannot be interpreted as causal effects of treatment.
{{ controlled('convictions_before_after',
    dims=['period_type', 'period_label', 'period_end', 'la_code', 'substance_group', 'retention', 'offence_scope'],
    counts=['cohort', 'offences_before', 'offences_after'],
    rates={'percent_change': ['offences_before', 'offences_after']},
    keep=['provisional']) }}
