-- Each landed treatment with the class of its drug (protocol §3). The name as written and the
-- terminology names are reduced to the same key (macro drug_name_key: case, accents, a
-- trailing dose or form ignored) and joined on it. A drug that maps to nothing is kept, with
-- class 'unmapped', and listed per site in mart_unmapped_drugs for the run report.

with

treatments as (

    select * from {{ ref('stg_landed__treatments') }}

),

-- names that differ only by accents or case (bosentan / bosentán) share a key: one row each
terminology as (

    select distinct
        {{ drug_name_key('drug_name') }} as drug_name_key,
        generic_name,
        drug_class,
        atc_code

    from {{ ref('drug_terminology') }}

),

keyed as (

    select
        *,
        {{ drug_name_key('drug_as_reported') }} as drug_name_key

    from treatments

),

classified as (

    select
        keyed.treatment_id,
        keyed.patient_key,
        keyed.site_id,
        keyed.drug_as_reported,
        keyed.drug_name_key,
        terminology.generic_name,
        terminology.atc_code,
        coalesce(terminology.drug_class, {{ sql_string(protocol()['unmapped_class']) }}) as drug_class,
        keyed.start_date,
        keyed.end_date,
        keyed.delivery_id

    from keyed
    left join terminology on keyed.drug_name_key = terminology.drug_name_key

)

select * from classified
