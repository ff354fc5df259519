{#-
    ref() and source() render relations without the database (catalog) name.

    dbt-duckdb names the catalog after the DuckDB file (`build_2026_11_24.duckdb` ->
    "build_2026_11_24"). The build file is later published under another name, and a view whose
    SQL says "build_2026_11_24".staging.x no longer binds there. Without the catalog, a view
    resolves its references inside the file that holds it, whatever that file is called or
    whichever alias it is attached under. Pattern from dbt's `builtins` documentation.
-#}
{% macro ref() %}
    {%- set version = kwargs.get('version') or kwargs.get('v') -%}
    {%- if (varargs | length) == 1 -%}
        {%- set rel = builtins.ref(varargs[0], version=version) -%}
    {%- else -%}
        {%- set rel = builtins.ref(varargs[0], varargs[1], version=version) -%}
    {%- endif -%}
    {{ return(_without_database(rel)) }}
{% endmacro %}

{% macro source(source_name, table_name) %}
    {{ return(_without_database(builtins.source(source_name, table_name))) }}
{% endmacro %}

{% macro _without_database(rel) %}
    {#- unit-test fixtures hand back plain CTE names: leave those alone -#}
    {%- if rel is not string and rel.include is defined -%}
        {{ return(rel.include(database=false)) }}
    {%- endif -%}
    {{ return(rel) }}
{% endmacro %}
