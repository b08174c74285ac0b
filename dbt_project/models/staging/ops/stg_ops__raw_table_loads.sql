{#- Load statistics per raw table the sink fills (one per Kafka topic): every table of every source
    declared with `meta: {sink_topic_tables: true}`, read from the graph, so a source added to the
    staging layer is measured here (and in fct_source_health) without editing either model.
    Aggregated here, unlike other staging models, so an empty raw table still gets its row.

    The graph is only filled when dbt executes, so dbt's lineage does not record these raw tables
    as parents: `dbt build -s source:<table>+` does not select this view (it need not: a view reads
    the tables when queried) nor fct_source_health, which `urbanflow refresh` therefore selects
    through the sink's bookkeeping (`source:sink+`), moved by every load. -#}
{%- set raw_tables = [] -%}
{%- if execute -%}
    {%- for node in graph.sources.values() | sort(attribute='unique_id') -%}
        {%- if node.meta.get('sink_topic_tables') -%}
            {%- do raw_tables.append((node.source_name, node.name)) -%}
        {%- endif -%}
    {%- endfor -%}
{%- endif -%}

with

loads as (

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
    {%- else %}
        -- rendered when dbt parses (no graph yet) or if no source is flagged: same columns, no rows
        select
            cast(null as varchar) as source_name,
            cast(null as varchar) as raw_table,
            cast(null as bigint) as row_count,
            cast(null as bigint) as publisher_count,
            cast(null as bigint) as rows_last_24h,
            cast(null as bigint) as late_row_count,
            cast(null as timestamptz) as first_ingested_at,
            cast(null as timestamptz) as last_ingested_at,
            cast(null as timestamptz) as last_event_time
        where false
    {%- endfor %}

)

select * from loads
