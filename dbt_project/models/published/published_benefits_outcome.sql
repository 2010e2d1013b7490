{{ config(alias='benefits_outcome') }}
{{ controlled('benefits_outcome',
    dims=['period_type', 'period_label', 'period_end', 'la_code', 'substance_group', 'exit_type'],
    counts=['cohort', 'oow_at_start', 'oow_at_6_months', 'oow_at_12_months'],
    rates={'rate_at_start': ['oow_at_start', 'cohort'], 'rate_at_6_months': ['oow_at_6_months', 'cohort'], 'rate_at_12_months': ['oow_at_12_months', 'cohort']},
    keep=['provisional']) }}
