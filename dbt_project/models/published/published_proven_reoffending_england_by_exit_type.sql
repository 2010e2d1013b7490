{{ config(alias='proven_reoffending_england_by_exit_type') }}
{{ controlled('proven_reoffending_england_by_exit_type',
    dims=['period_type', 'period_label', 'period_end', 'exit_type'],
    counts=['cohort', 'reoffenders', 'reoffences'],
    rates={'rate': ['reoffenders', 'cohort'], 'reoffences_per_reoffender': ['reoffences', 'reoffenders']},
    keep=['provisional']) }}
