with

observations as (

    select * from {{ ref('stg_sdmx__observations') }}

),

sdg_series as (

    select * from {{ ref('ref_sdg_series') }}

),

sexes as (

    select * from {{ ref('ref_sex') }}

),

cities as (

    select * from {{ ref('ref_cities') }}

),

latest_revisions as (

    -- A revision is a new event for the same observation: keep the latest one.
    select
        *,
        count(*) over observation_window as revision_count
    from observations
    window observation_window as (partition by city_code, series_code, sex_code, time_period)
    qualify
        row_number() over (
            partition by city_code, series_code, sex_code, time_period
            order by
                event_time desc,
                kafka_timestamp desc,
                kafka_offset desc,
                ingested_at desc,
                event_id desc
        ) = 1

),

harmonised as (

    select
        -- grain
        latest_revisions.city_code,
        latest_revisions.series_code,
        latest_revisions.sex_code,
        latest_revisions.time_period,

        -- city and country (ISO 3166) from the reference list
        cities.city_name,
        cities.country_iso3,
        cities.country_iso2,
        cities.country_name,
        latest_revisions.ref_area_code,

        -- indicator
        sdg_series.sdg_indicator,
        sdg_series.series_name as indicator_name,
        sdg_series.theme,
        sexes.sex,

        -- period
        {{ sdmx_period_type('latest_revisions.time_period') }} as period_type,
        {{ sdmx_period_year('latest_revisions.time_period') }} as period_year,
        {{ sdmx_period_start('latest_revisions.time_period') }} as period_start,

        -- value, scaled to units by UNIT_MULT
        latest_revisions.obs_value
        * power(10, coalesce(latest_revisions.unit_mult, 0)) as value,
        sdg_series.unit,
        latest_revisions.obs_value as obs_value_as_sent,
        latest_revisions.unit_measure,
        coalesce(latest_revisions.unit_mult, 0) as unit_mult,
        latest_revisions.obs_status,

        -- lineage of the kept revision
        latest_revisions.revision_count,
        latest_revisions.series_key,
        latest_revisions.dataflow,
        latest_revisions.source_urn,
        latest_revisions.source_detail,
        latest_revisions.event_id,
        latest_revisions.event_time,
        latest_revisions.kafka_topic,
        latest_revisions.kafka_partition,
        latest_revisions.kafka_offset,
        latest_revisions.kafka_timestamp,
        latest_revisions.ingested_at

    from latest_revisions
    left join sdg_series
        on latest_revisions.series_code = sdg_series.series_code
    left join sexes
        on latest_revisions.sex_code = sexes.sex_code
    left join cities
        on latest_revisions.city_code = cities.city_code

)

select * from harmonised
