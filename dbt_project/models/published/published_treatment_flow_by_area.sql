{{ config(alias='treatment_flow_by_area') }}
{{ controlled('treatment_flow_by_area',
    dims=['period_type', 'period_label', 'period_end', 'la_code'],
    counts=['in_treatment', 'new_journeys', 'exits_successful', 'exits_unsuccessful', 'exits_transferred', 'exits_died', 'effective_treatment']) }}
