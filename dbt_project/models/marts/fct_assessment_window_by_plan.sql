-- The analysis windows of every plan in force, per patient and measure (issue 11): one row
-- per analysis plan × analysed patient × measure the patient was assessed for, with the
-- baseline and post assessment that plan selects (NULL when its window holds none).
-- The rows of the primary plan are fct_assessment's baseline and post rows, side by side.
{{ config(materialized='incremental', incremental_strategy='append',
          pre_hook="{{ delete_rebuilt_sites() }}") }}
-- incremental by site (macros/rebuilt_sites.sql); depends_on: {{ source('quality', 'build_scope') }}

with

windowed as (

    select * from {{ ref('int_assessments_windowed_by_plan') }}
    where index_date is not null

),

final as (

    select
        analysis_plan,
        patient_key,
        site_id,
        measure,
        max(assessment_date) filter (where analysis_timepoint = 'baseline') as baseline_date,
        max(value) filter (where analysis_timepoint = 'baseline') as baseline_value,
        max(assessment_date) filter (where analysis_timepoint = 'post') as post_date,
        max(value) filter (where analysis_timepoint = 'post') as post_value

    from windowed
    group by analysis_plan, patient_key, site_id, measure

)

select * from final
{{ only_rebuilt_sites() }}
order by analysis_plan, patient_key, measure
