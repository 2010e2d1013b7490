{{ config(alias='disclosure_summary') }}
select as_of, table_name, cells, cells_suppressed, cell_share_suppressed, people_share_suppressed
from {{ source('disclosure', 'disclosure_summary') }}
