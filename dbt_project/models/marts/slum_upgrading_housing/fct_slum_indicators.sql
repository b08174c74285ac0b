-- Share of the urban population living in slums (SDG 11.1.1), by publisher × city or country ×
-- period × sex: what the Slum upgrading & housing dashboard charts.
-- A deleted SDMX observation leaves int_indicators__observations; the post-hook drops its row
-- here too (same key columns and filter as below).
-- depends_on: {{ ref('stg_sdmx__observations') }}
{{ config(post_hook="{{ delete_rows_of_deleted_observations(
    'slum_indicator_key',
    ['data_source', 'source_urn', 'series_key', 'time_period'],
    \"sdg_indicator = '11.1.1'\"
) }}") }}

with

observations as (

    select * from {{ ref('int_indicators__observations') }}
    where sdg_indicator = '11.1.1'
        and {{ staged_after_last_run() }}

)

select
    {{ surrogate_key([
        'data_source', 'source_urn', 'series_key', 'time_period'
    ]) }} as slum_indicator_key,
    data_source,
    {{ indicator_place_period_columns() }},
    value as slum_population_pct,
    obs_status,
    source_urn,
    ingested_at as loaded_at,
    staged_at
from observations
