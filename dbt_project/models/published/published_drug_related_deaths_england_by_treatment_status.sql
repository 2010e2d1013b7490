{{ config(alias='drug_related_deaths_england_by_treatment_status') }}
{{ controlled('drug_related_deaths_england_by_treatment_status',
    dims=['year', 'year_basis', 'treatment_status'],
    counts=['drug_poisoning_deaths', 'drug_misuse_deaths']) }}
