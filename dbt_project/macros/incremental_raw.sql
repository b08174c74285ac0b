{#
  Incremental staging on the raw offsets. The sink commits each partition's records in offset
  order (its offset fence makes that a guarantee), so "new since the last run" is exactly
  "kafka_offset above the highest offset already staged for that topic-partition".
  Rows whose (source, event_id) was already staged are skipped, so the first copy wins, exactly as
  a full refresh's dedup does, and an incremental run ends in the same state as a full refresh.
  The already-staged lookup reads only staged rows that share an id with a new row, so its cost
  follows the batch, not the size of the model.
#}
{% macro raw_rows_not_yet_staged(raw_relation) %}
    {%- if is_incremental() %}
    with

    new_rows as (

        select raw.*
        from {{ raw_relation }} as raw
        where
            -- a literal lower bound lets DuckDB skip old row groups (zonemaps) instead of reading
            -- every raw row's `data` before the per-partition comparison below
            raw.kafka_offset > {{ staged_offset_floor(raw_relation) }}
            and raw.kafka_offset > coalesce(
            (
                select max(staged.kafka_offset)
                from {{ this }} as staged
                where
                    staged.kafka_topic = raw.kafka_topic
                    and staged.kafka_partition = raw.kafka_partition
            ),
            -1
        )

    ),

    already_staged as (

        select
            staged.source_urn,
            staged.event_id
        from {{ this }} as staged
        where staged.event_id in (select new_rows.event_id from new_rows)

    )

    select new_rows.*
    from new_rows
    left join already_staged
        on
            new_rows.source = already_staged.source_urn
            and new_rows.event_id = already_staged.event_id
    where already_staged.event_id is null
    {%- else %}
    select raw.*
    from {{ raw_relation }} as raw
    {%- endif %}
{% endmacro %}

{#- The lowest highest-staged offset over every partition in the raw table (-1 for a partition
    with nothing staged yet): no new row has an offset at or below it. Read before the model runs,
    so it can be rendered as a literal. -#}
{% macro staged_offset_floor(raw_relation) %}
    {%- set query %}
        select coalesce(min(coalesce(staged.high_water, -1)), -1)
        from (select distinct kafka_topic, kafka_partition from {{ raw_relation }}) as partitions
        left join (
            select kafka_topic, kafka_partition, max(kafka_offset) as high_water
            from {{ this }}
            group by kafka_topic, kafka_partition
        ) as staged
            on
                partitions.kafka_topic = staged.kafka_topic
                and partitions.kafka_partition = staged.kafka_partition
    {%- endset %}
    {%- if execute -%}
        {{ run_query(query).columns[0].values()[0] }}
    {%- else -%}
        -1
    {%- endif -%}
{% endmacro %}
