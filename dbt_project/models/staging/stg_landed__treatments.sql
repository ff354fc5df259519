with

source as (

    select * from {{ source('landed', 'treatments') }}

),

renamed as (

    select

        ---------- ids
        -- treatments have no natural key: a row is identified by where it came from
        {{ surrogate_key(['site_id', 'delivery_id', 'source_file', 'source_row']) }} as treatment_id,
        cast(patient_key as varchar) as patient_key,
        cast(site_id as varchar) as site_id,

        ---------- attributes
        cast(drug as varchar) as drug_as_reported,

        ---------- dates (either may be NULL: see int_treatments_ivig_overlap)
        cast(start_date as date) as start_date,
        cast(end_date as date) as end_date,

        ---------- provenance
        cast(delivery_id as varchar) as delivery_id,
        cast(source_file as varchar) as source_file,
        cast(source_row as integer) as source_row,
        cast(file_sha256 as varchar) as file_sha256,
        cast(loaded_at as timestamptz) as loaded_at

    from source

)

select * from renamed
