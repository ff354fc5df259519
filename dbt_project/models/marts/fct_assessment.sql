-- One row per landed measurement (protocol §8), with its place in the analysis windows of
-- protocol §7 (int_assessments_windowed).
{{ config(materialized='incremental', incremental_strategy='append',
          pre_hook="{{ delete_rebuilt_sites() }}") }}
-- incremental by site (macros/rebuilt_sites.sql); depends_on: {{ source('quality', 'build_scope') }}

with

assessments as (

    select * from {{ ref('int_assessments_windowed') }}

),

measures as (

    select measure, unit as canonical_unit from {{ source('protocol', 'measures') }}

),

final as (

    select
        assessments.patient_key,
        assessments.site_id,
        assessments.measure,
        assessments.assessment_date,
        assessments.value,
        assessments.days_from_index,
        assessments.analysis_timepoint,

        ---------- beyond §8
        assessments.assessment_id,
        assessments.days_from_last_cycle,
        measures.canonical_unit as unit,
        assessments.value_as_reported,
        assessments.unit_as_reported,
        assessments.delivery_id

    from assessments
    left join measures on assessments.measure = measures.measure

)

select * from final
{{ only_rebuilt_sites() }}
