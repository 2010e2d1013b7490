{{ config(alias='successful_completion') }}
{{ controlled('successful_completion',
    dims=['period_type', 'period_label', 'period_end', 'la_code', 'substance_group'],
    counts=['in_treatment', 'successful_completions', 'not_representing'],
    rates={'rate': ['not_representing', 'in_treatment']},
    keep=['provisional']) }}
