{#-
    Range check: fails on each row whose value lies outside [min_value, max_value]
    (bounds inclusive; either bound may be omitted; NULL values pass - use not_null for them).
-#}
{% test value_between(model, column_name, min_value=none, max_value=none) %}

select {{ column_name }} as value_out_of_range
from {{ model }}
where {{ column_name }} is not null
  and (
    false
    {%- if min_value is not none %} or {{ column_name }} < {{ min_value }}{% endif %}
    {%- if max_value is not none %} or {{ column_name }} > {{ max_value }}{% endif %}
  )

{% endtest %}
