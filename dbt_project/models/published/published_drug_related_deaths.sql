{{ config(alias='drug_related_deaths') }}
{{ controlled('drug_related_deaths',
    dims=['year', 'year_basis', 'la_code', 'sex', 'age_band', 'treatment_status'],
    counts=['drug_poisoning_deaths', 'drug_misuse_deaths']) }}
