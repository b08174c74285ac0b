-- IATI money by partner × theme × city × year × currency: commitments (transaction type 2),
-- disbursements (3) and expenditure (4), each transaction split across themes by sector share.
-- Currencies are never mixed or converted: chart one currency at a time. Amounts are rounded to
-- cents, so the sum of split shares does not depend on the order the rows were added in.
with

flows as (

    select * from {{ ref('int_iati__transactions_by_theme') }}
    where flow_type in ('commitment', 'disbursement', 'expenditure')

),

aggregated as (

    select
        source_urn as partner_urn,
        theme_code,
        city_code,
        transaction_year,
        currency,
        sum(value_in_theme) filter (where flow_type = 'commitment') as commitments,
        sum(value_in_theme) filter (where flow_type = 'disbursement') as disbursements,
        sum(value_in_theme) filter (where flow_type = 'expenditure') as expenditure,
        count(distinct iati_identifier) as activity_count,
        max(ingested_at) as loaded_at
    from flows
    group by all

)

select
    {{ surrogate_key([
        'aggregated.partner_urn', 'aggregated.theme_code', 'aggregated.city_code',
        'aggregated.transaction_year', 'aggregated.currency',
    ]) }}
        as investment_flow_key,
    aggregated.partner_urn,
    aggregated.theme_code,
    coalesce(themes.theme_name, 'Unassigned') as theme_name,
    aggregated.city_code,
    cities.city_name,
    cities.country_iso3,
    aggregated.transaction_year,
    aggregated.currency,
    round(coalesce(aggregated.commitments, 0), 2) as commitments,
    round(coalesce(aggregated.disbursements, 0), 2) as disbursements,
    round(coalesce(aggregated.expenditure, 0), 2) as expenditure,
    aggregated.activity_count,
    aggregated.loaded_at
from aggregated
left join {{ ref('ref_themes') }} as themes
    on aggregated.theme_code = themes.theme_code
left join {{ ref('ref_cities') }} as cities
    on aggregated.city_code = cities.city_code
