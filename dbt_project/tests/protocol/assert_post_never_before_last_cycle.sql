-- Protocol §7: a post value is post_min_days..post_max_days after the start of the patient's
-- LAST cycle (the primary plan's window, protocol.analysis_plans): never before the last
-- cycle, never outside the window. Fails on each post row that breaks this.

select
    assessments.patient_key,
    assessments.measure,
    assessments.assessment_date,
    patients.last_cycle_date

from {{ ref('fct_assessment') }} as assessments
left join {{ ref('dim_patient') }} as patients
    on assessments.patient_key = patients.patient_key
cross join (
    select post_min_days::integer as post_min_days, post_max_days::integer as post_max_days
    from {{ source('protocol', 'analysis_plans') }}
    where is_primary
) as plan

where assessments.analysis_timepoint = 'post'
    and (
        patients.last_cycle_date is null
        or assessments.assessment_date < patients.last_cycle_date + plan.post_min_days
        or assessments.assessment_date > patients.last_cycle_date + plan.post_max_days
    )
