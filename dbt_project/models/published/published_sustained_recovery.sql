{{ config(alias='sustained_recovery') }}
{{ controlled('sustained_recovery',
    dims=['period_type', 'period_label', 'period_end', 'la_code', 'substance_group'],
    counts=['cohort', 'no_representation', 'no_reoffending', 'alive', 'off_out_of_work_benefits', 'sustained_recovery'],
    rates={'no_representation_rate': ['no_representation', 'cohort'], 'no_reoffending_rate': ['no_reoffending', 'cohort'], 'alive_rate': ['alive', 'cohort'], 'off_out_of_work_benefits_rate': ['off_out_of_work_benefits', 'cohort'], 'sustained_recovery_rate': ['sustained_recovery', 'cohort']},
    keep=['provisional']) }}
