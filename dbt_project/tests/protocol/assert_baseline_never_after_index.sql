-- Protocol §7: a baseline value is dated from index - baseline_days_before up to the index
-- date (the primary plan's window, protocol.analysis_plans): never after the first cycle
-- started. Fails on each baseline row that breaks this.

select
    assessments.patient_key,
    assessments.measure,
    assessments.assessment_date,
    patients.index_date

from {{ ref('fct_assessment') }} as assessments
left join {{ ref('dim_patient') }} as patients
    on assessments.patient_key = patients.patient_key
cross join (
    select baseline_days_before::integer as baseline_days_before from {{ source('protocol', 'analysis_plans') }} where is_primary
) as plan

where assessments.analysis_timepoint = 'baseline'
    and (
        patients.index_date is null
        or assessments.assessment_date > patients.index_date
        or assessments.assessment_date < patients.index_date - plan.baseline_days_before
    )
