-- Table 1 of the study: characteristics of the analysed cohort (patients with at least one
-- landed IVIG cycle, protocol §7), overall and by SSc subtype. Long format: one row per
-- subgroup x characteristic. Counts come with a percent of the subgroup's patients;
-- continuous characteristics with mean, SD (n - 1), median and quartiles (linear
-- interpolation, R type 7 = DuckDB quantile_cont). Small counts are NOT suppressed here: the
-- study report applies the `<5` rule of protocol §6.

{#- The characteristics of table 1, in display order. kind:
      count      - n is a count of distinct values (patients, sites); no percent
      binary     - n patients for whom `expr` is true, percent of the subgroup
      continuous - summary statistics of `expr` over the subgroup's patients -#}
{%- set characteristics = [
    {'name': 'patients', 'label': 'Patients', 'kind': 'count', 'expr': 'patient_key'},
    {'name': 'sites', 'label': 'Hospitals', 'kind': 'count', 'expr': 'site_id'},
    {'name': 'sex_female', 'label': 'Women', 'kind': 'binary', 'expr': "sex = 'F'"},
    {'name': 'sex_male', 'label': 'Men', 'kind': 'binary', 'expr': "sex = 'M'"},
    {'name': 'sex_unknown', 'label': 'Sex not recorded', 'kind': 'binary', 'expr': 'sex is null'},
    {'name': 'age_at_index', 'label': 'Age at first IVIG cycle (years)', 'kind': 'continuous', 'expr': 'age_at_index'},
    {'name': 'ssc_subtype_diffuse', 'label': 'Diffuse cutaneous SSc', 'kind': 'binary', 'expr': "ssc_subtype = 'diffuse'"},
    {'name': 'ssc_subtype_limited', 'label': 'Limited cutaneous SSc', 'kind': 'binary', 'expr': "ssc_subtype = 'limited'"},
    {'name': 'ssc_subtype_unknown', 'label': 'SSc subtype not recorded', 'kind': 'binary', 'expr': 'ssc_subtype is null'},
    {'name': 'overlap_any', 'label': 'Overlap connective tissue disease', 'kind': 'binary', 'expr': 'has_overlap'},
    {'name': 'overlap_iim', 'label': 'Overlap: idiopathic inflammatory myopathy', 'kind': 'binary', 'expr': 'overlap_iim'},
    {'name': 'overlap_sjogren', 'label': "Overlap: Sjögren's syndrome", 'kind': 'binary', 'expr': 'overlap_sjogren'},
    {'name': 'overlap_sle', 'label': 'Overlap: systemic lupus erythematosus', 'kind': 'binary', 'expr': 'overlap_sle'},
    {'name': 'overlap_ra', 'label': 'Overlap: rheumatoid arthritis', 'kind': 'binary', 'expr': 'overlap_ra'},
    {'name': 'overlap_other', 'label': 'Overlap: other', 'kind': 'binary', 'expr': 'overlap_other'},
    {'name': 'indication_myositis', 'label': 'IVIG indication: myositis', 'kind': 'binary', 'expr': 'indication_myositis'},
    {'name': 'indication_gastrointestinal', 'label': 'IVIG indication: gastrointestinal', 'kind': 'binary', 'expr': 'indication_gastrointestinal'},
    {'name': 'indication_skin', 'label': 'IVIG indication: skin', 'kind': 'binary', 'expr': 'indication_skin'},
    {'name': 'indication_other', 'label': 'IVIG indication: other', 'kind': 'binary', 'expr': 'indication_other'},
    {'name': 'indication_more_than_one', 'label': 'More than one IVIG indication', 'kind': 'binary', 'expr': 'n_indications > 1'},
    {'name': 'n_cycles', 'label': 'IVIG cycles per patient', 'kind': 'continuous', 'expr': 'n_cycles'},
    {'name': 'on_corticosteroid', 'label': 'Concomitant corticosteroids', 'kind': 'binary', 'expr': 'on_corticosteroid'},
    {'name': 'on_immunosuppressant', 'label': 'Concomitant immunosuppressants', 'kind': 'binary', 'expr': 'on_immunosuppressant'},
    {'name': 'on_biologic', 'label': 'Concomitant biologics', 'kind': 'binary', 'expr': 'on_biologic'},
    {'name': 'ivig_stopped', 'label': 'IVIG stopped', 'kind': 'binary', 'expr': 'ivig_stopped'},
    {'name': 'ivig_stop_adverse_event', 'label': 'IVIG stopped: adverse event', 'kind': 'binary', 'expr': "ivig_stop_reason = 'adverse_event'"},
    {'name': 'ivig_stop_inefficacy', 'label': 'IVIG stopped: inefficacy', 'kind': 'binary', 'expr': "ivig_stop_reason = 'inefficacy'"},
    {'name': 'ivig_stop_other', 'label': 'IVIG stopped: other reason', 'kind': 'binary', 'expr': "ivig_stop_reason = 'other'"},
] -%}
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
            ('all', 'all', 1),
            ('ssc_subtype', 'diffuse', 2),
            ('ssc_subtype', 'limited', 3)
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

-- patients on each drug (generic name) of the three protocol classes during the IVIG period,
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
        and treatments.drug_class in ('corticosteroid', 'immunosuppressant', 'biologic')

),

drug_rows as (

    select
        drug_members.subgroup,
        drug_members.subgroup_value,
        drug_members.subgroup_order,
        case drug_members.drug_class
            when 'corticosteroid' then {{ names.index('on_corticosteroid') * 10 + 10 }}
            when 'immunosuppressant' then {{ names.index('on_immunosuppressant') * 10 + 10 }}
            else {{ names.index('on_biologic') * 10 + 10 }}
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
