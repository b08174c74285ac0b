-- Utility service levels per city × service × utility × month from the monthly KPI drops; a
-- re-sent or corrected row for the same month replaces the earlier one (latest event wins).
with

kpis as (

    select * from {{ ref('stg_utilities__kpis') }}
    qualify
        row_number() over (
            partition by city_code, service, utility_name, month
            order by event_time desc, kafka_offset desc
        ) = 1

)

select
    {{ surrogate_key(['kpis.city_code', 'kpis.service', 'kpis.utility_name', 'kpis.month']) }}
        as service_level_key,
    kpis.city_code,
    cities.city_name,
    cities.country_iso3,
    kpis.service,
    kpis.utility_name,
    kpis.month,
    cast(kpis.month || '-01' as date) as month_start,
    kpis.coverage_pct,
    kpis.hours_of_supply_per_day,
    kpis.non_revenue_water_pct,
    kpis.connections,
    kpis.source_file,
    kpis.ingested_at as loaded_at
from kpis
left join {{ ref('ref_cities') }} as cities
    on kpis.city_code = cities.city_code
