{{ config(alias='drug_related_deaths') }}
{{ disclose(ref('drug_related_deaths'),
    dims=['year', 'year_basis', 'la_code', 'sex', 'age_band', 'treatment_status'],
    counts=['drug_poisoning_deaths', 'drug_misuse_deaths'],
    groupings=[
        ['year', 'year_basis', 'sex', 'age_band', 'treatment_status'],
    ]) }}
