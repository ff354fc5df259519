{#-
    Incremental by site (issue 12). A refresh whose code, protocol and key match the
    published file's builds on a copy of it (ivig_platform/warehouse/changes.py) and lists in
    quality.build_scope the sites whose deliveries changed. The patient-level marts are
    `incremental` models: on such a build they delete those sites' rows (`pre_hook`, so a
    site left without rows loses them too) and append them again from the sites' new rows;
    every other model is a view or table rebuilt whole from them. On a new file (a full
    build) is_incremental() is false and the models are built whole, as plain tables.
    Each model using these names `-- depends_on: {{ source('quality', 'build_scope') }}`:
    dbt parses with is_incremental() false and would not see the source otherwise.
-#}

{% macro rebuilt_sites() -%}
    (select site_id from {{ source('quality', 'build_scope') }})
{%- endmacro %}

{#- A file without quality.build_scope (dbt run by hand on a file the refresh did not
    build) rebuilds every site: never a silent partial update. -#}
{% macro build_scope_known() -%}
    {{- return(load_relation(source('quality', 'build_scope')) is not none) -}}
{%- endmacro %}

{% macro delete_rebuilt_sites() -%}
    {%- if is_incremental() -%}
        delete from {{ this }}
        {%- if build_scope_known() %} where site_id in {{ rebuilt_sites() }}{% endif %}
    {%- endif -%}
{%- endmacro %}

{% macro only_rebuilt_sites() -%}
    {%- if is_incremental() and build_scope_known() -%}
        where site_id in {{ rebuilt_sites() }}
    {%- endif -%}
{%- endmacro %}
