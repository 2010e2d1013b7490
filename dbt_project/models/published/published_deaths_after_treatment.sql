{{ config(alias='deaths_after_treatment') }}
{{ controlled('deaths_after_treatment',
    dims=['exit_year', 'exit_type', 'substance_group', 'time_since_exit'],
    counts=['deaths_all_cause', 'deaths_drug_poisoning'],
    rates={'rate_all_cause_per_1000py': ['deaths_all_cause'], 'rate_drug_poisoning_per_1000py': ['deaths_drug_poisoning']},
    keep=['person_years']) }}
