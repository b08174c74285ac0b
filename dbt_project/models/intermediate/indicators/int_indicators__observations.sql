-- SDG indicator observations from every statistics publisher (SDMX, World Bank, UN SDG API),
-- one row per publisher family × publisher (source_urn) × series key × period (latest revision):
-- two statistics offices may publish the same series key (SDMX keys hold no agency), and neither
-- may overwrite the other. Harmonised to ISO 3166 countries,
-- UN/LOCODE cities, SDG series, sex and age groups, periods and units.
--
-- Incremental: a run recomputes only the observations that got a revision staged since the
-- model's last run (staging's `staged_at` watermark), from all of their revisions, and replaces
-- those rows; the result equals a full refresh (tests/integration/test_theme_marts.py).
{% set publishers = ['sdmx', 'worldbank', 'unsdg'] %}

with

{% if is_incremental() -%}
    changed_observations as (

    -- observations with at least one revision staged since this model's last run
        {% for publisher in publishers -%}
            select distinct
                '{{ publisher }}' as data_source,
                source_urn,
                series_key,
                time_period
            from {{ ref('stg_' ~ publisher ~ '__observations') }}
            where {{ staged_after_last_run() }}
            {% if not loop.last %}union all
            {% endif -%}
        {%- endfor %}

    ),

{% endif -%}
unioned as (

    {% for publisher in publishers -%}
        select
            '{{ publisher }}' as data_source,
            event_id, source_urn, event_time, series_key, series_code, ref_area_code, city_code,
            sex_code, age_code, time_period, obs_value, unit_measure, unit_mult, obs_status,
            source_detail,
            kafka_topic, kafka_partition, kafka_offset, kafka_timestamp, ingested_at, staged_at
        from {{ ref('stg_' ~ publisher ~ '__observations') }}
        {% if not loop.last %}union all
        {% endif -%}
    {%- endfor %}

),

revisions as (

    -- every revision of the observations this run recomputes (all of them on a full refresh)
    select unioned.*
    from unioned
    {%- if is_incremental() %}
    inner join changed_observations
        on
            unioned.data_source = changed_observations.data_source
            and unioned.source_urn = changed_observations.source_urn
            and unioned.series_key = changed_observations.series_key
            and unioned.time_period = changed_observations.time_period
    {%- endif %}

),

latest_revisions as (

    -- A revision is a new event of the same publisher, series key and period: keep the latest.
    select
        *,
        count(*) over observation_window as revision_count,
        max(staged_at) over observation_window as last_staged_at
    from revisions
    window observation_window as (partition by data_source, source_urn, series_key, time_period)
    qualify
        row_number() over (
            partition by data_source, source_urn, series_key, time_period
            order by
                event_time desc,
                kafka_timestamp desc,
                kafka_offset desc,
                ingested_at desc,
                event_id desc
        ) = 1

),

worldbank_indicators as (

    select * from {{ ref('ref_worldbank_indicators') }}

),

sdg_series as (

    select * from {{ ref('ref_sdg_series') }}

),

sexes as (

    select * from {{ ref('ref_sex') }}

),

ages as (

    select * from {{ ref('ref_age') }}

),

cities as (

    select * from {{ ref('ref_cities') }}

),

countries as (

    select * from {{ ref('ref_countries') }}

),

coded as (

    select
        latest_revisions.*,
        coalesce(worldbank_indicators.series_code, latest_revisions.series_code) as sdg_series_code,
        coalesce(
            cities.country_iso3,
            by_iso3.country_iso3,
            by_m49.country_iso3
        ) as country_iso3
    from latest_revisions
    left join worldbank_indicators
        on latest_revisions.series_code = worldbank_indicators.indicator_code
    left join cities
        on latest_revisions.city_code = cities.city_code
    left join countries as by_iso3
        on latest_revisions.ref_area_code = by_iso3.country_iso3
    left join countries as by_m49
        on lpad(latest_revisions.ref_area_code, 3, '0') = by_m49.country_m49

),

harmonised as (

    select
        -- grain
        coded.data_source,
        coded.source_urn,
        coded.series_key,
        coded.time_period,

        -- where
        case when coded.city_code is null then 'country' else 'city' end as area_level,
        coded.city_code,
        cities.city_name,
        coded.country_iso3,
        countries.country_name,
        coded.ref_area_code,

        -- what
        coded.sdg_series_code as series_code,
        coded.series_code as series_code_as_sent,
        sdg_series.sdg_indicator,
        sdg_series.series_name as indicator_name,
        sdg_series.theme,
        coalesce(sexes.sex, 'total') as sex,
        coalesce(ages.age_group, 'all ages') as age_group,
        coded.age_code,

        -- when
        {{ sdmx_period_type('coded.time_period') }} as period_type,
        {{ sdmx_period_year('coded.time_period') }} as period_year,
        {{ sdmx_period_start('coded.time_period') }} as period_start,

        -- value, scaled to units by UNIT_MULT
        coded.obs_value * power(10, coalesce(coded.unit_mult, 0)) as value,
        sdg_series.unit,
        coded.obs_value as obs_value_as_sent,
        coded.unit_measure,
        coalesce(coded.unit_mult, 0) as unit_mult,
        coded.obs_status,

        -- lineage of the kept revision
        coded.revision_count,
        coded.source_detail,
        coded.event_id,
        coded.event_time,
        coded.kafka_topic,
        coded.kafka_partition,
        coded.kafka_offset,
        coded.kafka_timestamp,
        coded.ingested_at,
        coded.last_staged_at as staged_at

    from coded
    left join sdg_series
        on coded.sdg_series_code = sdg_series.series_code
    left join sexes
        on coded.sex_code = sexes.sex_code
    left join ages
        on coded.age_code = ages.age_code
    left join cities
        on coded.city_code = cities.city_code
    left join countries
        on coded.country_iso3 = countries.country_iso3

)

select * from harmonised
