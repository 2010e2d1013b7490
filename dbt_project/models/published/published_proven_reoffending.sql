{{ config(alias='proven_reoffending') }}
{{ controlled('proven_reoffending',
    dims=['period_type', 'period_label', 'period_end', 'la_code', 'substance_group', 'exit_type'],
    counts=['cohort', 'reoffenders', 'reoffences'],
    rates={'rate': ['reoffenders', 'cohort'], 'reoffences_per_reoffender': ['reoffences', 'reoffenders']},
    keep=['provisional']) }}
