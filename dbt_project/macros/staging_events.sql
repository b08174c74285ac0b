{#-
    The columns every staging model takes from the sink's raw tables (connectors/sink/loader.py
    _RAW_TABLE_DDL): the CloudEvents envelope first, the Kafka coordinates last, so each
    stg_<source>__<entity> only spells out its own payload.
-#}

{% macro cloudevent_envelope_columns() -%}
        -- envelope (CloudEvents)
        event_id,
        source as source_urn,
        type as event_type,
        subject as subject_code,
        specversion as event_specversion,
        dataschema as event_dataschema,
        event_time
{%- endmacro %}

{% macro kafka_lineage_columns() -%}
        -- Kafka coordinates and load time
        message_key,
        kafka_topic,
        kafka_partition,
        kafka_offset,
        kafka_timestamp,
        ingested_at,
        {{ staged_at() }} as staged_at
{%- endmacro %}

{#-
    When this dbt invocation started, stamped on every row a staging model appends: the watermark
    downstream incremental models use to find what is new since their own last run (staging rows
    from one run share it, and every later run's is later).
-#}
{% macro staged_at() -%}
    cast('{{ run_started_at }}' as timestamptz)
{%- endmacro %}

{#- A retried / re-sent event keeps its (source, id): keep the first copy the sink loaded. -#}
{% macro first_copy_per_event(relation) -%}
    select *
    from {{ relation }}
    qualify
        row_number() over (
            partition by source_urn, event_id
            order by kafka_offset asc, kafka_partition asc, ingested_at asc
        ) = 1
{%- endmacro %}

{#-
    A contract's RFC 3339 date-time, read from the event's data as a timestamptz. RFC 3339 allows
    a lowercase `t` and `z`, which DuckDB's cast refuses: one such event would stop the model.
-#}
{% macro payload_timestamp(json_path) -%}
    cast(upper(data ->> '{{ json_path }}') as timestamptz)
{%- endmacro %}
