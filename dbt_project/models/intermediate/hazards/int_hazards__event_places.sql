-- Hazard events, one row per feed × event × place (city, or country when no city was hit): the
-- latest episode wins, since each episode revises the event's alert, end and people affected.
with

episodes as (

    select
        *,
        count(*) over (
            partition by source_urn, hazard_type_code, hazard_event_id, country_iso3, city_code
        ) as episode_count
    from {{ ref('stg_gdacs__hazard_events') }}

),

latest as (

    select * from episodes
    qualify
        row_number() over (
            partition by source_urn, hazard_type_code, hazard_event_id, country_iso3, city_code
            order by episode_id desc, modified_time desc nulls last, kafka_offset desc
        ) = 1

)

select
    source_urn,
    hazard_type_code,
    hazard_event_id,
    event_name,
    episode_id as latest_episode_id,
    episode_count,
    alert_level,
    from_time,
    to_time,
    country_iso3,
    city_code,
    place_match,
    people_affected,
    severity,
    severity_unit,
    ingested_at
from latest
