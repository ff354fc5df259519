-- One row per landed patient (protocol §8). Patients without a landed cycle stay here with
-- n_cycles 0, NULL index date and age, and every therapy flag false (protocol §7); they take
-- part in no analysis (`is_analysed` = false). One flag per code of the overlap and
-- indication vocabularies (overlap_<code>, indication_<code>) and per therapy class of the
-- primary plan (on_<class>), in the protocol's order (var `protocol`).
{{ config(materialized='incremental', incremental_strategy='append',
          pre_hook="{{ delete_rebuilt_sites() }}") }}
-- incremental by site (macros/rebuilt_sites.sql); depends_on: {{ source('quality', 'build_scope') }}

{%- set overlaps = protocol_codes(protocol()['field_vocabularies']['patients.overlap']) %}
{%- set indications = protocol_codes(protocol()['field_vocabularies']['patients.indication']) %}

with

patients as (

    select * from {{ ref('stg_landed__patients') }}

),

periods as (

    select * from {{ ref('int_patient_ivig_periods') }}

),

therapy as (

    select * from {{ ref('int_patient_concomitant_therapy') }}

),

sites as (

    select site_id, hospital, region from {{ ref('site_registry') }}

),

final as (

    select
        patients.patient_key,
        patients.site_id,
        patients.sex,
        case when periods.has_landed_cycle then patients.age_at_index end as age_at_index,
        patients.ssc_subtype,

        {%- for disease in overlaps %}
        coalesce(list_contains(patients.overlap_diseases, '{{ disease }}'), false)
            as overlap_{{ disease }},
        {%- endfor %}

        {%- for indication in indications %}
        coalesce(list_contains(patients.indications, '{{ indication }}'), false)
            as indication_{{ indication }},
        {%- endfor %}

        periods.n_cycles,
        periods.index_date,
        periods.last_cycle_date,
        patients.ivig_stop_reason,

        {%- for drug_class in protocol()['therapy_classes'] %}
        periods.has_landed_cycle and therapy.on_{{ drug_class }} as on_{{ drug_class }},
        {%- endfor %}

        ---------- beyond §8
        periods.has_landed_cycle and therapy.on_other_therapy as on_other_therapy,
        coalesce(len(patients.overlap_diseases), 0) > 0 as has_overlap,
        coalesce(len(patients.indications), 0) as n_indications,
        patients.ivig_stop_reason is not null as ivig_stopped,
        periods.total_dose_g,
        periods.has_landed_cycle as is_analysed,
        sites.hospital,
        sites.region,
        patients.delivery_id

    from patients
    inner join periods on patients.patient_key = periods.patient_key
    inner join therapy on patients.patient_key = therapy.patient_key
    left join sites on patients.site_id = sites.site_id

)

select * from final
{{ only_rebuilt_sites() }}
