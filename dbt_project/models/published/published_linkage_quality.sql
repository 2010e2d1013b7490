{{ config(alias='linkage_quality') }}
{{ controlled('linkage_quality',
    dims=['run_id', 'source_a', 'source_b'],
    counts=['records_a', 'records_b', 'linked_records', 'review_pairs'],
    rates={'match_rate': ['linked_records', 'records_a']},
    keep=['pairwise_precision', 'pairwise_recall', 'pairwise_f1', 'cluster_precision', 'cluster_recall', 'cluster_f1']) }}
