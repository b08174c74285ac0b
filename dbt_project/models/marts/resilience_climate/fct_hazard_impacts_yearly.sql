-- Hazards per feed, place, type and year: how many events hit, the worst alert, and the people they
-- affected (each event's latest figure, summed; events without a reported figure count as events
-- only). Places are our cities, plus one country-level row for events that hit no programme city.
with

events as (

    select * from {{ ref('fct_hazard_events') }}

)

select
    {{ surrogate_key([
        'source_urn', 'country_iso3', 'city_code', 'hazard_type_code', 'event_year',
    ]) }} as hazard_impact_key,
    source_urn,
    country_iso3,
    city_code,
    any_value(city_name) as city_name,
    hazard_type_code,
    any_value(hazard_type_name) as hazard_type_name,
    event_year,
    count(*) as event_count,
    count(*) filter (where alert_level = 'red') as red_alert_count,
    count(people_affected) as events_with_people_affected,
    cast(coalesce(sum(people_affected), 0) as bigint) as people_affected,
    max(loaded_at) as loaded_at
from events
group by source_urn, country_iso3, city_code, hazard_type_code, event_year
