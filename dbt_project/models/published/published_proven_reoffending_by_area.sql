{{ config(alias='proven_reoffending_by_area') }}
{{ controlled('proven_reoffending_by_area',
    dims=['period_type', 'period_label', 'period_end', 'la_code'],
    counts=['cohort', 'reoffenders', 'reoffences'],
    rates={'rate': ['reoffenders', 'cohort'], 'reoffences_per_reoffender': ['reoffences', 'reoffenders']},
    keep=['provisional']) }}
