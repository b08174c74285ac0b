{#- Pipeline health per raw table (one per sink topic): the list below is every source table the
    staging layer declares, so a new source shows up here when it is added to it. -#}
{%- set raw_tables = [
    ('sdmx', 'stats_sdmx_observation_v1'),
    ('worldbank', 'stats_worldbank_observation_v1'),
    ('unsdg', 'stats_unsdg_observation_v1'),
    ('iati', 'partner_iati_activity_v1'),
    ('iati', 'partner_iati_transaction_v1'),
    ('iati', 'partner_iati_result_v1'),
    ('hxl', 'partner_hxl_record_v1'),
    ('gdacs', 'hazard_gdacs_event_v1'),
    ('partner', 'partner_push_result_v1'),
    ('utilities', 'utility_meter_reading_v1'),
    ('utilities', 'utility_service_outage_v1'),
    ('utilities', 'utility_kpi_monthly_v1'),
] -%}

with

volumes as (

    {% for source_name, table in raw_tables -%}
        select
            '{{ source_name }}' as source_name,
            '{{ table }}' as raw_table,
            count(*) as row_count,
            count(distinct raw.source) as publisher_count,
            count(*) filter (where raw.ingested_at >= now() - interval 1 day) as rows_last_24h,
            -- late = loaded more than a day after the event; compared in microseconds because
            -- timestamp - timestamp builds an interval per row (100x slower on millions of rows)
            count(*) filter (
                where epoch_us(raw.ingested_at) - epoch_us(raw.event_time) > 86400000000
            ) as late_row_count,
            min(raw.ingested_at) as first_ingested_at,
            max(raw.ingested_at) as last_ingested_at,
            max(raw.event_time) as last_event_time
        from {{ source(source_name, table) }} as raw
        {% if not loop.last %}union all
        {% endif -%}
    {%- endfor %}

),

dead_letters as (

    select
        replace(kafka_topic, '.', '_') as raw_table,
        count(*) as dead_letter_count,
        count(*) filter (where dead_lettered_at >= now() - interval 1 day) as dead_letters_last_24h,
        max(dead_lettered_at) as last_dead_lettered_at
    from {{ source('sink', '_sink_dead_letters') }}
    group by kafka_topic

),

offsets as (

    select
        replace(kafka_topic, '.', '_') as raw_table,
        cast(sum(next_offset) as bigint) as committed_offsets,
        max(updated_at) as offsets_updated_at
    from {{ source('sink', '_sink_offsets') }}
    group by kafka_topic

)

select
    volumes.raw_table,
    volumes.source_name,
    volumes.row_count,
    volumes.publisher_count,
    volumes.rows_last_24h,
    volumes.late_row_count,
    volumes.first_ingested_at,
    volumes.last_ingested_at,
    volumes.last_event_time,
    date_diff('second', volumes.last_ingested_at, now()) / 3600.0 as freshness_hours,
    coalesce(dead_letters.dead_letter_count, 0) as dead_letter_count,
    coalesce(dead_letters.dead_letters_last_24h, 0) as dead_letters_last_24h,
    dead_letters.last_dead_lettered_at,
    coalesce(offsets.committed_offsets, 0) as committed_offsets,
    offsets.offsets_updated_at,
    now() as measured_at
from volumes
left join dead_letters
    on volumes.raw_table = dead_letters.raw_table
left join offsets
    on volumes.raw_table = offsets.raw_table
