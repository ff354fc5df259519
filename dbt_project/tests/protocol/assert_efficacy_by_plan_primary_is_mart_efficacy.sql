-- The primary plan's rows of mart_efficacy_by_plan are mart_efficacy, cell for cell (same
-- rows, equal values or both NULL): the two paths to the pairs (fct_assessment's labels and
-- fct_assessment_window_by_plan) must agree. Fails on each row that differs.

with

primary_rows as (

    select * exclude (analysis_plan)
    from {{ ref('mart_efficacy_by_plan') }}
    where analysis_plan = (
        select analysis_plan from {{ source('protocol', 'analysis_plans') }} where is_primary
    )

),

differ as (

    (select * from primary_rows except all select * from {{ ref('mart_efficacy') }})
    union all
    (select * from {{ ref('mart_efficacy') }} except all select * from primary_rows)

)

select * from differ
