{{ config(alias='treatment_flow') }}
{{ controlled('treatment_flow',
    dims=['period_type', 'period_label', 'period_end', 'la_code', 'substance_group', 'setting', 'housing_status', 'age_band'],
    counts=['in_treatment', 'new_journeys', 'exits_successful', 'exits_unsuccessful', 'exits_transferred', 'exits_died', 'effective_treatment']) }}
