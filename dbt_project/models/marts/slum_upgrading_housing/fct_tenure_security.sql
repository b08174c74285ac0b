-- Share of adults with secure tenure rights to land (SDG 1.4.2), by publisher × city or country ×
-- period × sex, for both of its measures: legally recognised documentation and perceived security.
-- A deleted SDMX observation leaves int_indicators__observations; the post-hook drops its row
-- here too (same key columns and filter as below).
-- depends_on: {{ ref('stg_sdmx__observations') }}
{{ config(post_hook="{{ delete_rows_of_deleted_observations(
    'tenure_security_key',
    ['data_source', 'source_urn', 'series_key', 'time_period'],
    \"sdg_indicator = '1.4.2'\"
) }}") }}

with

observations as (

    select * from {{ ref('int_indicators__observations') }}
    where sdg_indicator = '1.4.2'
        and {{ staged_after_last_run() }}

)

select
    {{ surrogate_key([
        'data_source', 'source_urn', 'series_key', 'time_period'
    ]) }} as tenure_security_key,
    data_source,
    case series_code
        when 'SP_LGL_LNDDOC' then 'documented'
        when 'SP_LGL_LNDSTR' then 'perceived_secure'
    end as tenure_measure,
    series_code,
    {{ indicator_place_period_columns() }},
    value as secure_tenure_pct,
    obs_status,
    source_urn,
    ingested_at as loaded_at,
    staged_at
from observations
