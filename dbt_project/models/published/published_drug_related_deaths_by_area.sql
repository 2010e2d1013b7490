{{ config(alias='drug_related_deaths_by_area') }}
{{ controlled('drug_related_deaths_by_area',
    dims=['year', 'year_basis', 'la_code'],
    counts=['drug_poisoning_deaths', 'drug_misuse_deaths']) }}
