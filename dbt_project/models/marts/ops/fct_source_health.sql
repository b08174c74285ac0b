{#- Pipeline health per raw table (one per sink topic): the tables come from
    stg_ops__raw_table_loads, which measures every source declared as sink-loaded, so a new source
    shows up here without editing this model. -#}
with

volumes as (

    select * from {{ ref('stg_ops__raw_table_loads') }}

),

dead_letters as (

    select
        raw_table,
        count(*) as dead_letter_count,
        count(*) filter (where dead_lettered_at >= now() - interval 1 day) as dead_letters_last_24h,
        max(dead_lettered_at) as last_dead_lettered_at
    from {{ ref('stg_ops__sink_dead_letters') }}
    group by raw_table

),

offsets as (

    select
        raw_table,
        cast(sum(next_offset) as bigint) as committed_offsets,
        max(updated_at) as offsets_updated_at
    from {{ ref('stg_ops__sink_offsets') }}
    group by raw_table

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
