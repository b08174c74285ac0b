with

source as (

    select * from {{ source('sink', '_sink_dead_letters') }}

),

renamed as (

    select
        kafka_topic,
        -- the raw table the record would have landed in (dots become underscores, as in the sink)
        replace(kafka_topic, '.', '_') as raw_table,
        source as source_urn,
        kafka_partition,
        kafka_offset,
        kafka_timestamp,
        error_class,
        reason,
        contract,
        dead_lettered_at

    from source

)

select * from renamed
