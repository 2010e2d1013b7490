-- Linkage quality (outcomes.md §8) of the latest linkage run known at `as_of`.
with runs as (
    select max(run_id) as run_id from {{ source('linkage', 'quality') }} where as_of <= {{ as_of_date() }}
)

select
    {{ as_of_date() }} as as_of,
    quality.run_id,
    quality.source_a,
    quality.source_b,
    quality.records_a,
    quality.records_b,
    quality.linked_records,
    quality.match_rate,
    quality.review_pairs,
    quality.pairwise_precision,
    quality.pairwise_recall,
    quality.pairwise_f1,
    quality.cluster_precision,
    quality.cluster_recall,
    quality.cluster_f1
from {{ source('linkage', 'quality') }} as quality
inner join runs on runs.run_id = quality.run_id
