"""mart_efficacy_by_plan: mart_efficacy under every analysis plan in force, side by side.

One block of rows per plan (a leading `analysis_plan` column: v1 for the protocol's own
plan, then each amendment in order), the other columns those of mart_efficacy. Each plan's
pairs are the baseline and post values its own windows select
(fct_assessment_window_by_plan); its rows v1 equal mart_efficacy.
"""

from ivig_platform.stats.dbt_models import efficacy_by_plan


def model(dbt, session):
    dbt.config(materialized="table")
    # The patient-level marts are incremental by site (macros/rebuilt_sites.sql): their row
    # order depends on which sites the last builds rebuilt. Sorted here, the figures are the
    # same to the last bit however the file was built (sums depend on their order).
    # one literal dbt.source call per table: dbt finds a Python model's sources by
    # reading these calls, so a name in a variable would not be a dependency
    protocol_tables = {
        "protocol_info": dbt.source("protocol", "protocol_info").pl(),
        "analysis_plans": dbt.source("protocol", "analysis_plans").pl(),
        "plan_measures": dbt.source("protocol", "plan_measures").pl(),
        "plan_subgroups": dbt.source("protocol", "plan_subgroups").pl(),
    }
    return efficacy_by_plan(
        windows=dbt.ref("fct_assessment_window_by_plan").order("all").pl(),
        patients=dbt.ref("dim_patient").order("all").pl(),
        protocol=protocol_tables,
    )
