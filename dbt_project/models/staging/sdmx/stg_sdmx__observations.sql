{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
    )
}}

with

source as (

    select raw.*
    from {{ source('sdmx', 'stats_sdmx_observation_v1') }} as raw
    {{ raw_rows_not_yet_staged('raw') }}

),

renamed as (

    select
        -- envelope (CloudEvents)
        event_id,
        source as source_urn,
        type as event_type,
        subject as subject_code,
        specversion as event_specversion,
        dataschema as event_dataschema,
        event_time,

        -- SDMX payload, as sent (contract org.urbanflow.stats.observation.v1)
        data ->> '$.dataflow' as dataflow,
        data ->> '$.series_key' as series_key,
        data ->> '$.dimensions.FREQ' as freq_code,
        data ->> '$.dimensions.REF_AREA' as ref_area_code,
        data ->> '$.dimensions.CITY' as city_code,
        data ->> '$.dimensions.SERIES' as series_code,
        data ->> '$.dimensions.SEX' as sex_code,
        data ->> '$.time_period' as time_period,
        cast(data ->> '$.value' as double) as obs_value,
        data ->> '$.attributes.UNIT_MEASURE' as unit_measure,
        cast(data ->> '$.attributes.UNIT_MULT' as integer) as unit_mult,
        data ->> '$.attributes.OBS_STATUS' as obs_status,
        data ->> '$.attributes.SOURCE_DETAIL' as source_detail,
        data -> '$.labels' as labels,

        -- Kafka coordinates and load time
        message_key,
        kafka_topic,
        kafka_partition,
        kafka_offset,
        kafka_timestamp,
        ingested_at

    from source

),

deduplicated as (

    -- A retried / re-sent event keeps its (source, id): keep the first copy the sink loaded.
    select *
    from renamed
    qualify
        row_number() over (
            partition by source_urn, event_id
            order by kafka_offset asc, kafka_partition asc, ingested_at asc
        ) = 1

)

select * from deduplicated
