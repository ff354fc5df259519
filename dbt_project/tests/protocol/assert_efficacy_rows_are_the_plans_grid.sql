-- Every plan's efficacy has exactly one row per subgroup value × measure of the plan
-- (protocol.plan_subgroups × protocol.plan_measures), even when nobody is paired. Fails on
-- each missing or extra row.

with

expected as (

    select subgroups.analysis_plan, subgroups.subgroup, subgroups.subgroup_value, measures.measure
    from {{ source('protocol', 'plan_subgroups') }} as subgroups
    inner join {{ source('protocol', 'plan_measures') }} as measures
        on subgroups.analysis_plan = measures.analysis_plan

),

actual as (

    select analysis_plan, subgroup, subgroup_value, measure
    from {{ ref('mart_efficacy_by_plan') }}

)

(select 'missing' as problem, * from expected except select 'missing', * from actual)
union all
(select 'extra' as problem, * from actual except select 'extra', * from expected)
