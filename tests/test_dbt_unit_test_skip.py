"""dbt unit tests run once per dbt-project fingerprint, and a failing one still fails the build.

A unit test's result depends only on the project's code (its fixtures are inline), so a
build whose parse-cache key already saw them pass excludes them; a changed project (a new
key) runs them again. Real dbt builds of the fixture build file, on a copy of the project.
"""

from __future__ import annotations

from pathlib import Path

from dbt_fixtures import build_fixture_database

from ivig_platform.modeling import build_marts

# the freshness mart, its parents, and its unit tests: a small but real selection
SELECT = ["+mart_site_freshness"]
BROKEN_TEST = "test_freshness_counts_from_the_delivery_date_not_the_landing"


def build(root: Path, run: str, cache: Path):
    (root / run).mkdir()
    fixture = build_fixture_database(root / run / "ivig_build.duckdb")
    return build_marts(
        fixture.path,
        target_dir=root / run / "dbt",
        docs_dir=None,
        select=SELECT,
        parse_cache_dir=cache,
        check_source_freshness=False,
    )


def unit_tests_run(outcome) -> set[str]:
    return {uid for uid in outcome.node_timings if uid.startswith("unit_test.")}


def test_unchanged_project_skips_unit_tests_on_the_second_build(project_copy, tmp_path):
    cache = tmp_path / "parse-cache"
    first = build(tmp_path, "run-1", cache)
    second = build(tmp_path, "run-2", cache)

    assert first.success and second.success, (first.summary(), second.summary())
    assert not first.unit_tests_skipped
    assert any(BROKEN_TEST in uid for uid in unit_tests_run(first))
    assert second.unit_tests_skipped
    assert unit_tests_run(second) == set()
    assert "unit tests not run" in second.summary()
    # the models and data tests still run in full
    assert "model.ivig.mart_site_freshness" in second.node_timings
    assert {u for u in second.node_timings if u.startswith("test.")} == {
        u for u in first.node_timings if u.startswith("test.")
    }


def test_changed_project_runs_unit_tests_again_and_a_broken_one_fails(project_copy, tmp_path):
    cache = tmp_path / "parse-cache"
    first = build(tmp_path, "run-1", cache)
    assert first.success and not first.unit_tests_skipped, first.summary()

    models = project_copy / "models/marts/_marts__models.yml"
    text = models.read_text()
    assert text.count("days_since_accepted_delivery: 139") == 1
    models.write_text(text.replace("days_since_accepted_delivery: 139",
                                   "days_since_accepted_delivery: 138"))

    for run in ("run-2", "run-3"):  # a failed run records nothing: the next one runs them too
        broken = build(tmp_path, run, cache)
        assert not broken.success and not broken.unit_tests_skipped, run
        failed = {(f.resource_type, f.name) for f in broken.failures}
        assert ("unit_test", BROKEN_TEST) in failed, broken.summary()
        assert "model.ivig.mart_site_freshness" in broken.skipped
