{#-
    Tests whose accepted values and ranges are the protocol's, read at run time from the
    `protocol` tables of the build file (never written in this project).

    in_protocol_vocabulary(field)       values are codes of the vocabulary of contract field
                                        'table.column' (NULL passes)
    list_in_protocol_vocabulary(field)  every item of a list is such a code, and a field
                                        that requires a value has at least one item
    within_protocol_range(field)        the field's range (minimum or exclusive minimum,
                                        inclusive maximum; NULL passes)
    within_measure_range(measure_column) each value lies in its measure's valid range and,
                                        for an integer measure, is whole
-#}

{% macro _protocol_field(field) %}
    {%- set parts = field.split('.') -%}
    (select * from {{ source('protocol', 'fields') }}
     where table_name = {{ sql_string(parts[0]) }} and column_name = {{ sql_string(parts[1]) }})
{% endmacro %}

{% macro _protocol_codes_of(field) %}
    (select list(vocabularies.code)
     from {{ source('protocol', 'vocabularies') }} as vocabularies
     inner join {{ _protocol_field(field) }} as f on f.vocabulary = vocabularies.vocabulary)
{% endmacro %}

{% test in_protocol_vocabulary(model, column_name, field) %}

select {{ column_name }} as value_outside_the_vocabulary
from {{ model }}
where {{ column_name }} is not null
  and not coalesce(list_contains({{ _protocol_codes_of(field) }}, {{ column_name }}), false)

{% endtest %}

{% test list_in_protocol_vocabulary(model, column_name, field) %}

select {{ column_name }} as list_outside_the_vocabulary
from {{ model }}
where not coalesce(list_has_all({{ _protocol_codes_of(field) }}, {{ column_name }}), false)
   or (coalesce(len({{ column_name }}), 0) = 0
       and coalesce((select required_value from {{ _protocol_field(field) }}), false))

{% endtest %}

{% test within_protocol_range(model, column_name, field) %}

select {{ column_name }} as value_out_of_range
from {{ model }}
cross join {{ _protocol_field(field) }} as bounds
where {{ column_name }} is not null
  and (
    (bounds.valid_min is not null and ({{ column_name }} < bounds.valid_min
        or (not bounds.valid_min_inclusive and {{ column_name }} = bounds.valid_min)))
    or (bounds.valid_max is not null and {{ column_name }} > bounds.valid_max)
  )

{% endtest %}

{% test within_measure_range(model, column_name, measure_column='measure') %}

select checked.{{ measure_column }}, checked.{{ column_name }} as value_out_of_range
from {{ model }} as checked
inner join {{ source('protocol', 'measures') }} as measures
    on checked.{{ measure_column }} = measures.measure
where checked.{{ column_name }} is not null
  and (
    (measures.valid_min is not null and (checked.{{ column_name }} < measures.valid_min
        or (not measures.valid_min_inclusive and checked.{{ column_name }} = measures.valid_min)))
    or (measures.valid_max is not null and checked.{{ column_name }} > measures.valid_max)
    or (measures.value_type = 'integer'
        and checked.{{ column_name }} <> round(checked.{{ column_name }}))
  )

{% endtest %}

{#- dim_patient's flags, one column per code or class of the protocol in force (overlap_<code>,
    indication_<code>, on_<class>), are there and never NULL. -#}
{% test protocol_flags_not_null(model) %}

{%- set columns = [] %}
{%- for field in ['overlap', 'indication'] %}
    {%- for code in protocol_codes(protocol()['field_vocabularies']['patients.' ~ field]) %}
        {%- do columns.append(field ~ '_' ~ code) %}
    {%- endfor %}
{%- endfor %}
{%- for drug_class in protocol()['therapy_classes'] %}
    {%- do columns.append('on_' ~ drug_class) %}
{%- endfor %}

select patient_key
from {{ model }}
where false
{%- for column in columns %}
    or {{ column }} is null
{%- endfor %}

{% endtest %}

{#- A dose per kg no valid dose and weight can make: outside [smallest dose / largest weight,
    largest dose / smallest weight] of the contract's ranges (NULL passes). -#}
{% test dose_per_kg_within_the_contract(model, column_name) %}

select {{ column_name }} as dose_per_kg_out_of_range
from {{ model }}
cross join (
    select
        coalesce(dose.valid_min, 0) / weight.valid_max as lowest,
        dose.valid_max / weight.valid_min as highest
    from {{ _protocol_field('ivig_cycles.dose_g') }} as dose
    cross join {{ _protocol_field('ivig_cycles.weight_kg') }} as weight
) as bounds
where {{ column_name }} is not null
  and ({{ column_name }} < bounds.lowest or {{ column_name }} > bounds.highest)

{% endtest %}
