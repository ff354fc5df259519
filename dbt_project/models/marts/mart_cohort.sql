-- Table 1 of the study: characteristics of the analysed cohort (patients with at least one
-- landed IVIG cycle, protocol §7), overall and by SSc subtype. Long format: one row per
-- subgroup x characteristic. Counts come with a percent of the subgroup's patients;
-- continuous characteristics with mean, SD (n - 1), median and quartiles (linear
-- interpolation, R type 7 = DuckDB quantile_cont). Small counts are NOT suppressed here: the
-- study report applies the `<5` rule of protocol §6.

{#- The characteristics of table 1, in display order, made from the protocol's vocabularies
    (var `protocol`): one row per code of sex, SSc subtype, overlap, indication and stop
    reason, and per therapy class of the primary plan. kind:
      count      - n is a count of distinct values (patients, sites); no percent
      binary     - n patients for whom `expr` is true, percent of the subgroup
      continuous - summary statistics of `expr` over the subgroup's patients -#}
{%- set characteristics = [
    {'name': 'patients', 'label': 'Patients', 'kind': 'count', 'expr': 'patient_key'},
    {'name': 'sites', 'label': 'Hospitals', 'kind': 'count', 'expr': 'site_id'},
] -%}
{%- for c in protocol_field_vocabulary('patients.sex') -%}
    {%- do characteristics.append(cohort_binary('sex_' ~ (c.label | lower | replace(' ', '_')),
                                         c.label[:1] | upper ~ c.label[1:],
                                         'sex = ' ~ sql_string(c.code))) -%}
{%- endfor -%}
{%- do characteristics.append(cohort_binary('sex_unknown', 'Sex not recorded', 'sex is null')) -%}
{%- do characteristics.append({'name': 'age_at_index', 'label': 'Age at first IVIG cycle (years)',
                               'kind': 'continuous', 'expr': 'age_at_index'}) -%}
{%- for c in protocol_field_vocabulary('patients.ssc_subtype') -%}
    {%- do characteristics.append(cohort_binary('ssc_subtype_' ~ c.code, c.label,
                                         'ssc_subtype = ' ~ sql_string(c.code))) -%}
{%- endfor -%}
{%- do characteristics.append(cohort_binary('ssc_subtype_unknown', 'SSc subtype not recorded',
                                     'ssc_subtype is null')) -%}
{%- do characteristics.append(cohort_binary('overlap_any', 'Overlap connective tissue disease',
                                     'has_overlap')) -%}
{%- for c in protocol_field_vocabulary('patients.overlap') -%}
    {%- do characteristics.append(cohort_binary('overlap_' ~ c.code, 'Overlap: ' ~ c.label,
                                         'overlap_' ~ c.code)) -%}
{%- endfor -%}
{%- for c in protocol_field_vocabulary('patients.indication') -%}
    {%- do characteristics.append(cohort_binary('indication_' ~ c.code, 'IVIG indication: ' ~ c.label,
                                         'indication_' ~ c.code)) -%}
{%- endfor -%}
{%- do characteristics.append(cohort_binary('indication_more_than_one', 'More than one IVIG indication',
                                     'n_indications > 1')) -%}
{%- do characteristics.append({'name': 'n_cycles', 'label': 'IVIG cycles per patient',
                               'kind': 'continuous', 'expr': 'n_cycles'}) -%}
{%- for drug_class in protocol()['therapy_classes'] -%}
    {%- do characteristics.append(cohort_binary('on_' ~ drug_class, 'Concomitant ' ~ drug_class ~ 's',
                                         'on_' ~ drug_class)) -%}
{%- endfor -%}
{%- do characteristics.append(cohort_binary('ivig_stopped', 'IVIG stopped', 'ivig_stopped')) -%}
{%- for c in protocol_field_vocabulary('patients.ivig_stop_reason') -%}
    {%- do characteristics.append(cohort_binary('ivig_stop_' ~ c.code, 'IVIG stopped: ' ~ c.label,
                                         'ivig_stop_reason = ' ~ sql_string(c.code))) -%}
{%- endfor -%}
{%- set subtypes = protocol_codes(protocol()['field_vocabularies']['patients.ssc_subtype']) %}
{%- set therapy_classes = protocol()['therapy_classes'] %}
{%- set names = characteristics | map(attribute='name') | list %}

with

patients as (

    select * from {{ ref('dim_patient') }}

),

treatments as (

    select * from {{ ref('int_treatments_ivig_overlap') }}

),

subgroups as (

    select * from (
        values
            ('all', 'all', 1)
            {%- for code in subtypes %},
            ('ssc_subtype', {{ sql_string(code) }}, {{ loop.index + 1 }})
            {%- endfor %}
    ) as subgroups (subgroup, subgroup_value, subgroup_order)

),

-- every subgroup keeps a row even when empty (group_n 0), hence the left join
members as (

    select subgroups.*, patients.*
    from subgroups
    left join patients
        on patients.is_analysed
        and (subgroups.subgroup = 'all' or patients.ssc_subtype = subgroups.subgroup_value)

),

group_sizes as (

    select subgroup, subgroup_value, subgroup_order, count(patient_key) as group_n
    from members
    group by subgroup, subgroup_value, subgroup_order

),

characteristic_rows as (

    {%- for c in characteristics %}

    select
        subgroup,
        subgroup_value,
        subgroup_order,
        {{ loop.index * 10 }} as characteristic_order,
        '{{ c.name }}' as characteristic,
        '{{ c.label | replace("'", "''") }}' as label,
        '{{ c.kind }}' as statistic_type,
        count(patient_key) as group_n,
        {%- if c.kind == 'count' %}
        count(distinct {{ c.expr }}) as n,
        cast(null as double) as percent,
        {%- elif c.kind == 'binary' %}
        count(patient_key) filter (where {{ c.expr }}) as n,
        100.0 * count(patient_key) filter (where {{ c.expr }})
            / nullif(count(patient_key), 0) as percent,
        {%- else %}
        count({{ c.expr }}) as n,
        cast(null as double) as percent,
        {%- endif %}
        {%- if c.kind == 'continuous' %}
        avg({{ c.expr }}) as mean,
        stddev_samp({{ c.expr }}) as sd,
        quantile_cont(cast({{ c.expr }} as double), 0.5) as median,
        quantile_cont(cast({{ c.expr }} as double), 0.25) as q1,
        quantile_cont(cast({{ c.expr }} as double), 0.75) as q3,
        cast(min({{ c.expr }}) as double) as min,
        cast(max({{ c.expr }}) as double) as max,
        count(patient_key) - count({{ c.expr }}) as n_missing
        {%- else %}
        cast(null as double) as mean,
        cast(null as double) as sd,
        cast(null as double) as median,
        cast(null as double) as q1,
        cast(null as double) as q3,
        cast(null as double) as min,
        cast(null as double) as max,
        cast(null as bigint) as n_missing
        {%- endif %}

    from members
    group by subgroup, subgroup_value, subgroup_order

    {% if not loop.last %}union all{% endif %}
    {%- endfor %}

),

-- patients on each drug (generic name) of the plan's therapy classes during the IVIG period,
-- after their class row: shows which drug drives a class (e.g. mycophenolate)
drug_members as (

    select distinct
        members.subgroup,
        members.subgroup_value,
        members.subgroup_order,
        treatments.drug_class,
        treatments.generic_name,
        members.patient_key

    from members
    inner join treatments
        on members.patient_key = treatments.patient_key
        and treatments.overlaps_ivig_period
        and treatments.drug_class in (
            {%- for drug_class in therapy_classes %}{{ sql_string(drug_class) }}{{ ", " if not loop.last }}{%- endfor %})

),

drug_rows as (

    select
        drug_members.subgroup,
        drug_members.subgroup_value,
        drug_members.subgroup_order,
        case drug_members.drug_class
            {%- for drug_class in therapy_classes %}
            when {{ sql_string(drug_class) }} then {{ names.index('on_' ~ drug_class) * 10 + 10 }}
            {%- endfor %}
        end + 1 as characteristic_order,
        'on_drug_' || replace(drug_members.generic_name, ' ', '_') as characteristic,
        drug_members.generic_name as label,
        'binary' as statistic_type,
        group_sizes.group_n,
        count(*) as n,
        100.0 * count(*) / nullif(group_sizes.group_n, 0) as percent,
        cast(null as double) as mean,
        cast(null as double) as sd,
        cast(null as double) as median,
        cast(null as double) as q1,
        cast(null as double) as q3,
        cast(null as double) as min,
        cast(null as double) as max,
        cast(null as bigint) as n_missing

    from drug_members
    inner join group_sizes
        on drug_members.subgroup = group_sizes.subgroup
        and drug_members.subgroup_value = group_sizes.subgroup_value
    group by
        drug_members.subgroup,
        drug_members.subgroup_value,
        drug_members.subgroup_order,
        drug_members.drug_class,
        drug_members.generic_name,
        group_sizes.group_n

),

-- landed patients left out of the analysis (no landed cycle): not in any count above
excluded_rows as (

    select
        subgroups.subgroup,
        subgroups.subgroup_value,
        subgroups.subgroup_order,
        9990 as characteristic_order,
        'excluded_no_landed_cycle' as characteristic,
        'Excluded: no landed IVIG cycle (not in the rows above)' as label,
        'count' as statistic_type,
        group_sizes.group_n,
        count(patients.patient_key) as n,
        cast(null as double) as percent,
        cast(null as double) as mean,
        cast(null as double) as sd,
        cast(null as double) as median,
        cast(null as double) as q1,
        cast(null as double) as q3,
        cast(null as double) as min,
        cast(null as double) as max,
        cast(null as bigint) as n_missing

    from subgroups
    inner join group_sizes
        on subgroups.subgroup = group_sizes.subgroup
        and subgroups.subgroup_value = group_sizes.subgroup_value
    left join patients
        on not patients.is_analysed
        and (subgroups.subgroup = 'all' or patients.ssc_subtype = subgroups.subgroup_value)
    group by
        subgroups.subgroup,
        subgroups.subgroup_value,
        subgroups.subgroup_order,
        group_sizes.group_n

),

unioned as (

    select * from characteristic_rows
    union all by name
    select * from drug_rows
    union all by name
    select * from excluded_rows

),

final as (

    select
        subgroup,
        subgroup_value,
        characteristic,
        label,
        statistic_type,
        group_n,
        n,
        percent,
        mean,
        sd,
        median,
        q1,
        q3,
        min,
        max,
        n_missing,
        subgroup_order,
        characteristic_order

    from unioned

)

select * from final
order by subgroup_order, characteristic_order, characteristic
