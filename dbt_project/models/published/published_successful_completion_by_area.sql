{{ config(alias='successful_completion_by_area') }}
{{ controlled('successful_completion_by_area',
    dims=['period_type', 'period_label', 'period_end', 'la_code'],
    counts=['in_treatment', 'successful_completions', 'not_representing'],
    rates={'rate': ['not_representing', 'in_treatment']},
    keep=['provisional']) }}
