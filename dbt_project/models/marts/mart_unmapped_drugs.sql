-- Drugs no terminology entry matched (the unmapped class of the protocol's terminology), per site, for the run report: one
-- row per site x drug key. Each is a candidate row for seeds/terminology/drug_terminology.csv.

with

treatments as (

    select * from {{ ref('int_treatments_ivig_overlap') }}
    where drug_class = {{ sql_string(protocol()['unmapped_class']) }}

),

final as (

    select
        site_id,
        drug_name_key,
        string_agg(distinct drug_as_reported, ' | ' order by drug_as_reported)
            as names_as_reported,
        count(*) as n_treatments,
        count(distinct patient_key) as n_patients,
        count(*) filter (where overlaps_ivig_period) as n_overlapping_ivig_period

    from treatments
    group by site_id, drug_name_key

)

select * from final
order by site_id, drug_name_key
