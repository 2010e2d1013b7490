{{ config(alias='convictions_before_after_england_by_retention') }}
-- Before/after changes in convictions cannot be interpreted as causal effects of treatment.
{{ controlled('convictions_before_after_england_by_retention',
    dims=['period_type', 'period_label', 'period_end', 'retention', 'offence_scope'],
    counts=['cohort', 'offences_before', 'offences_after'],
    rates={'percent_change': ['offences_before', 'offences_after']},
    keep=['provisional']) }}
