with

source as (

    select * from {{ source('landed', 'patients') }}

),

renamed as (

    select

        ---------- ids
        cast(patient_key as varchar) as patient_key,
        cast(site_id as varchar) as site_id,

        ---------- attributes
        cast(sex as varchar) as sex,
        cast(age_at_index as double) as age_at_index,
        cast(ssc_subtype as varchar) as ssc_subtype,
        -- lists stay lists here; dim_patient spreads them into one flag per value
        cast(overlap as varchar[]) as overlap_diseases,
        cast(indication as varchar[]) as indications,
        cast(ivig_stop_reason as varchar) as ivig_stop_reason,

        ---------- provenance
        cast(delivery_id as varchar) as delivery_id,
        cast(source_file as varchar) as source_file,
        cast(source_row as integer) as source_row,
        cast(file_sha256 as varchar) as file_sha256,
        cast(loaded_at as timestamptz) as loaded_at

    from source

)

select * from renamed
