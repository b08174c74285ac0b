{#- What the partner API refused (connectors/api/rejections.py): one row per refused record, or per
    request refused once its partner was known. Read from the API's rejection log, JSON lines in
    `api/rejections/` beside the warehouse file (`$UF_VAR_DIR/api/rejections/` by default), not
    from a raw table: a refused record never reaches Kafka. A view, so each build reads the files
    as they are; empty, with the same columns, until the API first refuses something (and when
    dbt only parses). A line cut short by a crash is skipped. -#}
{%- set found = false -%}
{%- if execute -%}
    {%- set warehouse = run_query(
        "select path from duckdb_databases() where database_name = current_database()"
    ).columns[0].values()[0] -%}
    {%- set pattern = warehouse.rsplit('/', 1)[0] ~ '/api/rejections/*.jsonl' -%}
    {%- set found = run_query(
        "select count(*) from glob('" ~ pattern ~ "')"
    ).columns[0].values()[0] > 0 -%}
{%- endif -%}
with

source as (

    {% if found -%}
        select *
        from read_json(
                '{{ pattern }}',
                format = 'newline_delimited',
                ignore_errors = true,
                columns = {
                    'rejected_at': 'timestamptz',
                    'partner_slug': 'varchar',
                    'source_urn': 'varchar',
                    'kafka_topic': 'varchar',
                    'event_id': 'varchar',
                    'error_class': 'varchar',
                    'reason': 'varchar',
                    'contract': 'varchar',
                    'http_status': 'integer',
                    'endpoint': 'varchar',
                    'file_row': 'bigint'
                }
            )
    {%- else -%}
        -- the same columns, no rows
        select
            cast(null as timestamptz) as rejected_at,
            cast(null as varchar) as partner_slug,
            cast(null as varchar) as source_urn,
            cast(null as varchar) as kafka_topic,
            cast(null as varchar) as event_id,
            cast(null as varchar) as error_class,
            cast(null as varchar) as reason,
            cast(null as varchar) as contract,
            cast(null as integer) as http_status,
            cast(null as varchar) as endpoint,
            cast(null as bigint) as file_row
        where false
    {%- endif %}

),

renamed as (

    select
        rejected_at,
        partner_slug,
        source_urn,
        kafka_topic,
        -- the raw table the record was meant for (dots become underscores, as in the sink)
        replace(kafka_topic, '.', '_') as raw_table,
        event_id,
        error_class,
        reason,
        nullif(contract, '') as contract,
        http_status,
        endpoint,
        file_row

    from source
    where partner_slug is not null and rejected_at is not null

)

select * from renamed
