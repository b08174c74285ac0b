-- IATI transactions split across plan themes: one row per transaction × DAC sector, the amount
-- multiplied by the sector's share. A transaction's own sectors win over its activity's (IATI
-- allows sectors at either level, not both). Amounts stay in their own currency: no FX.
with

transactions as (

    -- An activity re-sent with a newer last-updated re-sends its transactions; a changed one is a
    -- new event, so keep the latest per position in the activity.
    select * from {{ ref('stg_iati__transactions') }}
    qualify
        row_number() over (
            partition by source_urn, iati_identifier, transaction_index
            order by last_updated desc nulls last, event_time desc, kafka_offset desc
        ) = 1

),

transaction_sectors as (

    {{ iati_sector_shares('transactions', ['source_urn', 'iati_identifier', 'transaction_index']) }}

),

activity_sectors as (

    select * from {{ ref('int_iati__activity_sectors') }}

),

sector_themes as (

    select * from {{ ref('ref_iati_sector_themes') }}

),

own_sectors as (

    select
        transaction_sectors.source_urn,
        transaction_sectors.iati_identifier,
        transaction_sectors.transaction_index,
        transaction_sectors.sector_code,
        transaction_sectors.sector_share,
        coalesce(sector_themes.theme_code, 'unassigned') as theme_code,
        'transaction' as sector_level
    from transaction_sectors
    left join sector_themes
        on transaction_sectors.sector_code = sector_themes.sector_code

),

inherited_sectors as (

    select
        transactions.source_urn,
        transactions.iati_identifier,
        transactions.transaction_index,
        activity_sectors.sector_code,
        coalesce(activity_sectors.sector_share, 1.0) as sector_share,
        coalesce(activity_sectors.theme_code, 'unassigned') as theme_code,
        'activity' as sector_level
    from transactions
    left join activity_sectors
        on
            transactions.source_urn = activity_sectors.source_urn
            and transactions.iati_identifier = activity_sectors.iati_identifier
    where
        not exists (
            select 1 as found
            from own_sectors
            where
                own_sectors.source_urn = transactions.source_urn
                and own_sectors.iati_identifier = transactions.iati_identifier
                and own_sectors.transaction_index = transactions.transaction_index
        )

),

split as (

    select * from own_sectors
    union all
    select * from inherited_sectors

),

final as (

    select
        transactions.source_urn,
        transactions.iati_identifier,
        transactions.transaction_index,
        split.sector_code,
        split.sector_level,
        split.sector_share,
        split.theme_code,
        transactions.transaction_type_code,
        case transactions.transaction_type_code
            when '2' then 'commitment'
            when '3' then 'disbursement'
            when '4' then 'expenditure'
            when '1' then 'incoming_funds'
            when '11' then 'incoming_commitment'
            when '13' then 'incoming_pledge'
            else 'other'
        end as flow_type,
        transactions.transaction_date,
        year(transactions.transaction_date) as transaction_year,
        transactions.city_code,
        transactions.currency,
        transactions.value as transaction_value,
        transactions.value * split.sector_share as value_in_theme,
        transactions.provider_org_ref,
        transactions.provider_org_name,
        transactions.provider_org_type,
        transactions.receiver_org_ref,
        transactions.event_id,
        transactions.ingested_at
    from transactions
    inner join split
        on
            transactions.source_urn = split.source_urn
            and transactions.iati_identifier = split.iati_identifier
            and transactions.transaction_index = split.transaction_index

)

select * from final
