-- Protocol §3: each value lies in its measure's valid range (seed measures, inclusive), and CK
-- is moreover > 0. Landing enforces this; the test guards the marts. Fails on each bad value.

select
    assessments.patient_key,
    assessments.measure,
    assessments.assessment_date,
    assessments.value

from {{ ref('fct_assessment') }} as assessments
inner join {{ ref('measures') }} as measures
    on assessments.measure = measures.measure

where assessments.value < measures.valid_min
    or assessments.value > measures.valid_max
    or (assessments.measure = 'ck' and assessments.value <= 0)
    or (assessments.measure = 'mrss' and assessments.value <> round(assessments.value))
