"""Every check result names the measure it is about, and its unit where the value is in it
(issue 14: "CK (U/L): site median 6.04 (n=14) ..."), so a reader of the results table or
Data Docs need not decode the check id."""

from __future__ import annotations

import pytest

from ivig_platform.quality.gate import _sig, measure_prefix
from ivig_platform.quality.registry import checks

BY_ID = {c.check_id: c for c in checks()}

NAMED = [
    ("landed.assessments/value[measure=ck]/site_drift/error", "CK (U/L): "),
    ("landed.assessments/value[measure=mrss]/valid_range/error", "mRSS (points): "),
    ("marts.efficacy_inputs/baseline_ck/valid_range/error", "CK (U/L): "),
    ("landed.patient_windows/change_mrss/plausible_change/warn", "mRSS (points): "),
    # counts and ratios carry the measure, not its unit
    ("landed.patient_windows/has_post_mrc/measure_completeness/warn", "modified MRC: "),
    ("landed.patient_windows/fold_drop_ck/plausible_change/warn", "CK: "),
    ("marts.efficacy_inputs/post_ck_agrees/window_agreement/error", "CK: "),
]


@pytest.mark.parametrize(("check_id", "prefix"), NAMED)
def test_check_of_a_measure_names_it_and_its_unit(check_id: str, prefix: str) -> None:
    assert measure_prefix(BY_ID[check_id]) == prefix


def test_check_of_no_measure_has_no_prefix() -> None:
    unnamed = [c for c in BY_ID.values() if c.suite == "landed.patients"]
    assert unnamed and all(measure_prefix(c) == "" for c in unnamed)
    assert measure_prefix(None) == ""


@pytest.mark.parametrize(("value", "text"), [
    (6.0416666, "6.04"), (268.0, "268"), (1234.5, "1230"), (0.0123456, "0.0123"), (14, "14"),
])
def test_medians_print_to_three_significant_digits(value: float, text: str) -> None:
    assert _sig(value) == text
