-- Each landed assessment with the analysis timepoint it fills under the primary plan of the
-- protocol (int_assessments_windowed_by_plan, where the windows are defined): what
-- fct_assessment and mart_efficacy use.

with

windowed as (

    select * exclude (analysis_plan, is_primary)
    from {{ ref('int_assessments_windowed_by_plan') }}
    where is_primary

)

select * from windowed
