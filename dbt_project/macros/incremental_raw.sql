{#
  Incremental staging on the raw offsets. The sink commits each partition's records in offset
  order (its offset fence makes that a guarantee), so "new since the last run" is exactly
  "kafka_offset above the highest offset already staged for that topic-partition".
  Rows whose (source, event_id) was already staged are skipped, so the first copy wins, exactly as
  a full refresh's dedup does, and an incremental run ends in the same state as a full refresh.
#}
{% macro raw_rows_not_yet_staged(raw_alias) %}
    {%- if is_incremental() %}
    where {{ raw_alias }}.kafka_offset > coalesce(
        (
            select max(staged.kafka_offset)
            from {{ this }} as staged
            where
                staged.kafka_topic = {{ raw_alias }}.kafka_topic
                and staged.kafka_partition = {{ raw_alias }}.kafka_partition
        ),
        -1
    )
    and not exists (
        select 1
        from {{ this }} as staged
        where
            staged.source_urn = {{ raw_alias }}.source
            and staged.event_id = {{ raw_alias }}.event_id
    )
    {%- endif %}
{% endmacro %}
