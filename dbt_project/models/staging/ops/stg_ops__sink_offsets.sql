with

source as (

    select * from {{ source('sink', '_sink_offsets') }}

),

renamed as (

    select
        kafka_topic,
        -- the raw table the topic loads into (dots become underscores, as in the sink)
        replace(kafka_topic, '.', '_') as raw_table,
        kafka_partition,
        next_offset,
        updated_at

    from source

)

select * from renamed
