-- Hazard events in our cities: one row per feed × hazard event × place (the programme city hit, or
-- the country when no programme city was near: city_code null), with the latest episode's alert
-- level, dates and people affected, and that count as a share of the city's population.
with

events as (

    select * from {{ ref('int_hazards__event_places') }}

)

select
    {{ surrogate_key([
        'events.source_urn', 'events.hazard_type_code', 'events.hazard_event_id',
        'events.country_iso3', 'events.city_code',
    ]) }} as hazard_event_key,
    events.source_urn,
    events.hazard_type_code,
    hazard_types.hazard_type_name,
    events.hazard_event_id,
    events.event_name,
    events.latest_episode_id,
    events.episode_count,
    events.alert_level,
    cast(events.from_time as date) as start_date,
    cast(events.to_time as date) as end_date,
    cast(year(events.from_time) as integer) as event_year,
    date_diff('day', cast(events.from_time as date), cast(events.to_time as date)) + 1
        as duration_days,
    events.country_iso3,
    events.city_code,
    cities.city_name,
    events.place_match,
    events.people_affected,
    round(100.0 * events.people_affected / cities.population, 3) as people_affected_pct,
    events.severity,
    events.severity_unit,
    events.ingested_at as loaded_at
from events
inner join {{ ref('ref_hazard_types') }} as hazard_types
    on events.hazard_type_code = hazard_types.hazard_type_code
left join {{ ref('ref_cities') }} as cities
    on events.city_code = cities.city_code
