"""`ivig explain`'s guard and table names (provenance/explain.py). Its answers are tested
end to end on a multi-site inbox in tests/test_provenance_refreshes.py."""

from __future__ import annotations

import pytest

from ivig_platform.provenance.explain import ExplainError, check_condition, resolve_table


@pytest.mark.parametrize("condition", [
    "measure = 'ck'",
    "value > 100 AND (measure = 'ck' OR measure = 'mrc')",
    "term = 'a; b' OR term = 'x -- y'",  # inside quotes anything goes
    'lower("measure") = \'ck\'',
])
def test_a_single_expression_is_accepted(condition):
    assert check_condition(condition) == condition


@pytest.mark.parametrize(("condition", "why"), [
    ("true; DROP TABLE marts.dim_patient", "single expression"),
    ("true) UNION SELECT * FROM landed.patients WHERE (true", "did not open"),
    ("true --", "comment"),
    ("true /* x */", "comment"),
    ("(true", "parenthesis open"),
    ("measure = 'ck", "quote open"),
    ("   ", "empty"),
])
def test_anything_but_a_single_expression_is_refused(condition, why):
    with pytest.raises(ExplainError, match=why):
        check_condition(condition)


@pytest.mark.parametrize(("name", "full"), [
    ("fct_assessment", "marts.fct_assessment"), ("marts.dim_patient", "marts.dim_patient"),
    ("MART_EFFICACY", "marts.mart_efficacy"), ("landed.assessments", "landed.assessments"),
    ("assessments", "landed.assessments"),
])
def test_table_names_with_or_without_their_schema(name, full):
    assert resolve_table(name) == full


def test_an_unsupported_table_says_what_can_be_explained():
    with pytest.raises(ExplainError, match="explain knows marts.fct_assessment"):
        resolve_table("mart_cohort")


def test_no_published_file_is_a_clear_error(tmp_path):
    from ivig_platform import explain

    with pytest.raises(ExplainError, match="no published warehouse"):
        explain(tmp_path, "fct_assessment", "true")
