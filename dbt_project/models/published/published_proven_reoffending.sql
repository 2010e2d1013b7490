{{ config(alias='proven_reoffending') }}
{{ disclose(ref('proven_reoffending'),
    dims=['period_type', 'period_label', 'period_end', 'la_code', 'substance_group', 'exit_type'],
    counts=['cohort', 'reoffenders', 'reoffences'],
    rates={'rate': ['reoffenders', 'cohort'], 'reoffences_per_reoffender': ['reoffences', 'reoffenders']},
    keep=['provisional'],
    groupings=[
        ['period_type', 'period_label', 'period_end', 'substance_group', 'exit_type'],
        {'by': ['period_type', 'period_label', 'period_end', 'la_code', 'substance_group'], 'counts': ['cohort']},
    ]) }}
