{#-
    The protocol in force while compiling: the var `protocol` that the build step passes
    (ivig_platform/protocol/tables.py, dbt_vars). Running dbt without it is refused with a
    clear message instead of compiling a project with no vocabulary.
-#}
{% macro protocol() %}
    {%- set value = var('protocol', none) -%}
    {%- if value is none -%}
        {{ exceptions.raise_compiler_error(
            "var 'protocol' is missing: run dbt through ivig (ivig refresh, or "
            ~ "ivig_platform.modeling.build_marts), which writes the protocol in force into "
            ~ "the build file and passes its vars") }}
    {%- endif -%}
    {{ return(value) }}
{% endmacro %}

{#- The codes of a vocabulary, in the protocol's order. -#}
{% macro protocol_codes(vocabulary) %}
    {{ return(protocol()['vocabularies'][vocabulary] | map(attribute='code') | list) }}
{% endmacro %}

{#- The vocabulary (codes with labels) of a contract field 'table.column'. -#}
{% macro protocol_field_vocabulary(field) %}
    {{ return(protocol()['vocabularies'][protocol()['field_vocabularies'][field]]) }}
{% endmacro %}

{#- A SQL string literal. -#}
{% macro sql_string(text) %}
    {{ return("'" ~ (text | replace("'", "''")) ~ "'") }}
{% endmacro %}

{#- A binary characteristic of table 1 (mart_cohort). -#}
{% macro cohort_binary(name, label, expr) %}
    {{ return({'name': name, 'label': label, 'kind': 'binary', 'expr': expr}) }}
{% endmacro %}
