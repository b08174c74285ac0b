-- Percentages outside [0, 100] are a publisher or scaling (UNIT_MULT) error.
-- Returns the offending rows; null values (missing observations) are allowed.
select
    city_indicator_key,
    city_code,
    series_code,
    period,
    sex,
    value
from {{ ref('fct_city_indicator') }}
where
    unit = 'percent'
    and value is not null
    and (value < {{ var('percent_min') }} or value > {{ var('percent_max') }})
