{#-
    SDMX TIME_PERIOD helpers. The contract allows YYYY, YYYY-Sn, YYYY-Qn, YYYY-MM and YYYY-MM-DD.
    Anything else yields null, which the not_null tests on period_start / period_type catch.
-#}

{% macro sdmx_period_type(period) -%}
    case
        when regexp_full_match({{ period }}, '[0-9]{4}') then 'annual'
        when regexp_full_match({{ period }}, '[0-9]{4}-S[12]') then 'semiannual'
        when regexp_full_match({{ period }}, '[0-9]{4}-Q[1-4]') then 'quarterly'
        when regexp_full_match({{ period }}, '[0-9]{4}-[0-9]{2}') then 'monthly'
        when regexp_full_match({{ period }}, '[0-9]{4}-[0-9]{2}-[0-9]{2}') then 'daily'
    end
{%- endmacro %}

{% macro sdmx_period_year(period) -%}
    try_cast(substr({{ period }}, 1, 4) as integer)
{%- endmacro %}

{% macro sdmx_period_start(period) -%}
    case
        when regexp_full_match({{ period }}, '[0-9]{4}')
            then make_date(cast(substr({{ period }}, 1, 4) as integer), 1, 1)
        when regexp_full_match({{ period }}, '[0-9]{4}-S[12]')
            then make_date(
                cast(substr({{ period }}, 1, 4) as integer),
                (cast(substr({{ period }}, 7, 1) as integer) - 1) * 6 + 1,
                1
            )
        when regexp_full_match({{ period }}, '[0-9]{4}-Q[1-4]')
            then make_date(
                cast(substr({{ period }}, 1, 4) as integer),
                (cast(substr({{ period }}, 7, 1) as integer) - 1) * 3 + 1,
                1
            )
        when regexp_full_match({{ period }}, '[0-9]{4}-[0-9]{2}')
            then try_cast({{ period }} || '-01' as date)
        when regexp_full_match({{ period }}, '[0-9]{4}-[0-9]{2}-[0-9]{2}')
            then try_cast({{ period }} as date)
    end
{%- endmacro %}
