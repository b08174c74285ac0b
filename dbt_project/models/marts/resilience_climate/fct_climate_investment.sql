-- Climate and resilience investment: the resilience_climate theme's share of IATI flows
-- (disaster risk reduction, environmental policy, multi-hazard preparedness sectors).
select
    investment_flow_key,
    partner_urn,
    city_code,
    city_name,
    country_iso3,
    transaction_year,
    currency,
    commitments,
    disbursements,
    expenditure,
    activity_count,
    loaded_at
from {{ ref('fct_investment_flows') }}
where theme_code = 'resilience_climate'
