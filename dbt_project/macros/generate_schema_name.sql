{#-
    Custom schema names are used as they are (staging, intermediate, marts, terminology,
    reference) instead of dbt's default `<target schema>_<custom>`: analysts and the other
    platform steps query `marts.dim_patient`, whatever the target.
-#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
