{#-
    Fails for every row whose `column_name` lies outside [min_value, max_value] (bounds inclusive
    unless inclusive=false). Nulls pass: pair with not_null when a value is required.
    A missing bound renders as null, and a comparison with null never fails a row.
-#}
{% test accepted_range(model, column_name, min_value=none, max_value=none, inclusive=true) %}
{%- set lower_bound = 'null' if min_value is none else min_value %}
{%- set upper_bound = 'null' if max_value is none else max_value %}

select *
from {{ model }}
where
    {{ column_name }} is not null
    and (
        {{ column_name }} {{ '<' if inclusive else '<=' }} {{ lower_bound }}
        or {{ column_name }} {{ '>' if inclusive else '>=' }} {{ upper_bound }}
    )

{% endtest %}
