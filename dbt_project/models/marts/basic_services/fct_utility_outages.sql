-- Water and electricity outages, one row per utility × outage: an outage is reported when it starts
-- and again when it ends, and the latest report wins. Ongoing outages have no end and no duration.
with

outages as (

    select * from {{ ref('stg_utilities__outages') }}
    qualify
        row_number() over (
            partition by source_urn, outage_id
            order by event_time desc, kafka_offset desc
        ) = 1

)

select
    {{ surrogate_key(['outages.source_urn', 'outages.outage_id']) }} as outage_key,
    outages.source_urn,
    outages.outage_id,
    outages.city_code,
    cities.city_name,
    cities.country_iso3,
    outages.service,
    outages.area,
    outages.cause,
    outages.started_at,
    outages.ended_at,
    outages.ended_at is null as is_ongoing,
    date_diff('minute', outages.started_at, outages.ended_at) / 60.0 as duration_hours,
    outages.customers_affected,
    outages.ingested_at as loaded_at
from outages
left join {{ ref('ref_cities') }} as cities
    on outages.city_code = cities.city_code
