-- Access to water (SDG 6.1.1), sanitation (6.2.1) and electricity (7.1.1), percent of the
-- population, and municipal solid waste collected and managed in controlled facilities (11.6.1),
-- percent of the waste, by publisher × city or country × period × sex.
-- A deleted SDMX observation leaves int_indicators__observations; the post-hook drops its row
-- here too (same key columns and filter as below).
-- depends_on: {{ ref('stg_sdmx__observations') }}
{{ config(post_hook="{{ delete_rows_of_deleted_observations(
    'service_access_key',
    ['data_source', 'source_urn', 'series_key', 'time_period'],
    \"sdg_indicator in ('6.1.1', '6.2.1', '7.1.1', '11.6.1')\"
) }}") }}

with

observations as (

    select * from {{ ref('int_indicators__observations') }}
    where sdg_indicator in ('6.1.1', '6.2.1', '7.1.1', '11.6.1')
        and {{ staged_after_last_run() }}

)

select
    {{ surrogate_key([
        'data_source', 'source_urn', 'series_key', 'time_period'
    ]) }} as service_access_key,
    data_source,
    case sdg_indicator
        when '6.1.1' then 'water'
        when '6.2.1' then 'sanitation'
        when '7.1.1' then 'electricity'
        when '11.6.1' then 'waste'
    end as service,
    sdg_indicator,
    series_code,
    indicator_name,
    {{ indicator_place_period_columns() }},
    value as access_pct,
    source_urn,
    ingested_at as loaded_at,
    staged_at
from observations
