with

source as (

    select * from {{ source('landed', 'ivig_cycles') }}

),

renamed as (

    select

        ---------- ids
        cast(patient_key as varchar) as patient_key,
        cast(site_id as varchar) as site_id,
        cast(cycle_number as integer) as cycle_number,

        ---------- dates
        cast(start_date as date) as start_date,

        ---------- numerics
        cast(dose_g as double) as dose_g,
        cast(weight_kg as double) as weight_kg,

        ---------- provenance
        cast(delivery_id as varchar) as delivery_id,
        cast(source_file as varchar) as source_file,
        cast(source_row as integer) as source_row,
        cast(file_sha256 as varchar) as file_sha256,
        cast(loaded_at as timestamptz) as loaded_at

    from source

)

select * from renamed
