-- Funds leveraged: co-financiers' money in the partnership's IATI activities, per activity × theme
-- × co-financier type × year × currency, beside the partnership's own commitment to the activity.
-- A co-financier's money counts once: its incoming commitments and the incoming funds that pay
-- them are the same money, so what it has secured to date is the larger of the two running totals,
-- and a year's leveraged funds are that figure's increase over the year. Pledges are not binding
-- and never count. Double-counting rules in full: the docs block `fct_funds_leveraged`.
with

co_financing as (

    select * from {{ ref('int_iati__co_financing') }}
    where is_leveraged

),

per_co_financier_year as (

    select
        source_urn,
        iati_identifier,
        theme_code,
        co_financier_key,
        co_financier_type_code,
        currency,
        transaction_year,
        coalesce(sum(value_in_theme) filter (where flow_type = 'incoming_commitment'), 0)
            as incoming_commitments,
        coalesce(sum(value_in_theme) filter (where flow_type = 'incoming_funds'), 0)
            as incoming_funds,
        coalesce(sum(value_in_theme) filter (where flow_type = 'incoming_pledge'), 0)
            as incoming_pledges,
        max(ingested_at) as loaded_at
    from co_financing
    group by all

),

secured as (

    select
        *,
        greatest(
            sum(incoming_commitments) over to_date,
            sum(incoming_funds) over to_date
        ) as secured_to_date
    from per_co_financier_year
    window to_date as (
        partition by source_urn, iati_identifier, theme_code, co_financier_key, currency
        order by transaction_year
        rows between unbounded preceding and current row
    )

),

leveraged as (

    select
        *,
        secured_to_date - coalesce(
            lag(secured_to_date) over (
                partition by source_urn, iati_identifier, theme_code, co_financier_key, currency
                order by transaction_year
            ),
            0
        ) as funds_leveraged
    from secured

),

by_type as (

    select
        source_urn,
        iati_identifier,
        theme_code,
        co_financier_type_code,
        currency,
        transaction_year,
        sum(funds_leveraged) as funds_leveraged,
        sum(incoming_commitments) as incoming_commitments,
        sum(incoming_funds) as incoming_funds,
        sum(incoming_pledges) as incoming_pledges,
        count(distinct co_financier_key) as co_financier_count,
        max(loaded_at) as loaded_at
    from leveraged
    group by all

),

own_commitments as (

    select
        source_urn,
        iati_identifier,
        theme_code,
        currency,
        sum(value_in_theme) as own_commitment
    from {{ ref('int_iati__transactions_by_theme') }}
    where flow_type = 'commitment'
    group by all

),

activities as (

    select distinct
        source_urn,
        iati_identifier,
        partner_code,
        partner_name,
        activity_title,
        city_code
    from co_financing

)

select
    {{ surrogate_key([
        'by_type.source_urn', 'by_type.iati_identifier', 'by_type.theme_code',
        'by_type.co_financier_type_code', 'by_type.transaction_year', 'by_type.currency',
    ]) }}
        as funds_leveraged_key,
    by_type.source_urn as partner_urn,
    activities.partner_code,
    activities.partner_name,
    by_type.iati_identifier as activity_id,
    activities.activity_title,
    by_type.theme_code,
    coalesce(themes.theme_name, 'Unassigned') as theme_name,
    activities.city_code,
    cities.city_name,
    cities.country_iso3,
    by_type.transaction_year,
    by_type.co_financier_type_code,
    coalesce(org_types.org_type_name, 'Unknown') as co_financier_type,
    by_type.currency,
    round(by_type.funds_leveraged, 2) as funds_leveraged,
    round(by_type.incoming_commitments, 2) as incoming_commitments,
    round(by_type.incoming_funds, 2) as incoming_funds,
    round(by_type.incoming_pledges, 2) as incoming_pledges,
    by_type.co_financier_count,
    round(coalesce(own.own_commitment, 0), 2) as own_commitment,
    round(by_type.funds_leveraged / nullif(own.own_commitment, 0), 4) as leverage_ratio,
    by_type.loaded_at
from by_type
inner join activities
    on
        by_type.source_urn = activities.source_urn
        and by_type.iati_identifier = activities.iati_identifier
left join own_commitments as own
    on
        by_type.source_urn = own.source_urn
        and by_type.iati_identifier = own.iati_identifier
        and by_type.theme_code = own.theme_code
        and by_type.currency = own.currency
left join {{ ref('ref_themes') }} as themes
    on by_type.theme_code = themes.theme_code
left join {{ ref('ref_cities') }} as cities
    on activities.city_code = cities.city_code
left join {{ ref('ref_iati_organisation_types') }} as org_types
    on by_type.co_financier_type_code = org_types.org_type_code
