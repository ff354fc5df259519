-- Every row of the patient-level marts comes from its site's ACCEPTED delivery as landing
-- recorded it in quality.site_delivery (protocol §2: the newest accepted delivery replaces a
-- site's earlier data; rejected and superseded deliveries never reach the marts).
-- Fails on each mart row whose (site_id, delivery_id) is not an accepted delivery.

{%- set marts = ['dim_patient', 'fct_ivig_cycle', 'fct_assessment', 'fct_adverse_event'] %}

with

accepted as (

    select site_id, delivery_id
    from {{ ref('stg_quality__site_delivery') }}
    where status = 'accepted'

),

mart_rows as (

    {%- for mart in marts %}
    select '{{ mart }}' as mart, patient_key, site_id, delivery_id
    from {{ ref(mart) }}
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}

)

select mart_rows.*
from mart_rows
left join accepted
    on mart_rows.site_id = accepted.site_id
    and mart_rows.delivery_id = accepted.delivery_id
where accepted.site_id is null
