{#- Dead letters by reason for Pipeline health and My feeds: one row per topic × publisher ×
    error class × reason × contract × day. The publisher is the refused record's CloudEvents
    `source`, when its payload was a JSON object with one (the sink records it). -#}
with

dead_letters as (

    select
        kafka_topic,
        raw_table,
        source_urn,
        error_class,
        reason,
        nullif(contract, '') as contract,
        dead_lettered_at
    from {{ ref('stg_ops__sink_dead_letters') }}

),

partners as (

    select
        partner_code,
        partner_urn
    from {{ ref('dim_partner') }}
    where is_current

),

attributed as (

    -- urn:partner:<slug>[:<feed>] names the partner by its slug, or by its IATI organisation URN
    select
        dead_letters.*,
        case
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
            'kafka_topic', 'source_urn', 'error_class', 'reason', 'contract',
            'cast(dead_lettered_at as date)'
        ]) }} as dead_letter_key,
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
