with

source as (

    select * from {{ source('landed', 'assessments') }}

),

renamed as (

    select

        ---------- ids
        {{ surrogate_key(['patient_key', 'measure', 'assessment_date']) }} as assessment_id,
        cast(patient_key as varchar) as patient_key,
        cast(site_id as varchar) as site_id,

        ---------- attributes
        cast(measure as varchar) as measure,
        cast(assessment_date as date) as assessment_date,
        -- landing already converted to the canonical unit (seed `measures`)
        cast(value as double) as value,
        cast(value_as_reported as varchar) as value_as_reported,
        cast(unit_as_reported as varchar) as unit_as_reported,

        ---------- provenance
        cast(delivery_id as varchar) as delivery_id,
        cast(source_file as varchar) as source_file,
        cast(source_row as integer) as source_row,
        cast(file_sha256 as varchar) as file_sha256,
        cast(loaded_at as timestamptz) as loaded_at

    from source

)

select * from renamed
