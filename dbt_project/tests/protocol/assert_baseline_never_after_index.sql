-- Protocol §7: a baseline value is dated from index - 90 days (var baseline_days_before) up to
-- the index date: never after the first cycle started. Fails on each baseline row that breaks
-- this.

select
    assessments.patient_key,
    assessments.measure,
    assessments.assessment_date,
    patients.index_date

from {{ ref('fct_assessment') }} as assessments
left join {{ ref('dim_patient') }} as patients
    on assessments.patient_key = patients.patient_key

where assessments.analysis_timepoint = 'baseline'
    and (
        patients.index_date is null
        or assessments.assessment_date > patients.index_date
        or assessments.assessment_date < patients.index_date - {{ var('baseline_days_before') }}
    )
