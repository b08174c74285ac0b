{#- Refused records by reason for Pipeline health and My feeds: one row per refusing side × topic ×
    publisher × error class × reason × contract × day. `refused_by` is `sink` (a record on Kafka
    its contract refused; the publisher is its CloudEvents `source`, when its payload was a JSON
    object with one) or `api` (a record or request the push API refused before Kafka, attributed
    to the calling partner). -#}
with

dead_letters as (

    select
        'sink' as refused_by,
        kafka_topic,
        raw_table,
        source_urn,
        cast(null as varchar) as caller_slug,
        error_class,
        reason,
        nullif(contract, '') as contract,
        dead_lettered_at
    from {{ ref('stg_ops__sink_dead_letters') }}

    union all

    select
        'api' as refused_by,
        kafka_topic,
        raw_table,
        source_urn,
        partner_slug as caller_slug,
        error_class,
        reason,
        contract,
        rejected_at as dead_lettered_at
    from {{ ref('stg_ops__api_rejections') }}

),

partners as (

    select
        partner_code,
        partner_urn
    from {{ ref('dim_partner') }}
    where is_current

),

attributed as (

    -- the API names its caller; otherwise urn:partner:<slug>[:<feed>] names the partner by its
    -- slug, or by its IATI organisation URN
    select
        dead_letters.refused_by,
        dead_letters.kafka_topic,
        dead_letters.raw_table,
        dead_letters.source_urn,
        dead_letters.error_class,
        dead_letters.reason,
        dead_letters.contract,
        dead_letters.dead_lettered_at,
        case
            when dead_letters.caller_slug is not null
                then dead_letters.caller_slug
            when dead_letters.source_urn like 'urn:partner:%'
                then
                    coalesce(
                        partners.partner_code, split_part(dead_letters.source_urn, ':', 3)
                    )
        end as partner_slug
    from dead_letters
    left join partners
        on 'urn:partner:' || split_part(dead_letters.source_urn, ':', 3) = partners.partner_urn

),

final as (

    select
        {{ surrogate_key([
            'refused_by', 'kafka_topic', 'source_urn', 'error_class', 'reason', 'contract',
            'cast(dead_lettered_at as date)'
        ]) }} as dead_letter_key,
        refused_by,
        kafka_topic,
        raw_table,
        source_urn,
        partner_slug,
        error_class,
        reason,
        contract,
        cast(dead_lettered_at as date) as dead_letter_date,
        count(*) as dead_letter_count,
        min(dead_lettered_at) as first_dead_lettered_at,
        max(dead_lettered_at) as last_dead_lettered_at
    from attributed
    group by all

)

select * from final
