"""Cached gate verdicts are JSON, rebuild everything a verdict is used for, and an
unreadable or old cache file is only a reason to validate again."""

from __future__ import annotations

import dataclasses
import json
import pickle
import re
from pathlib import Path

import polars as pl
import pytest
from quality_samples import landed_site

from ivig_platform.landing.land import delivery_dir
from ivig_platform.quality import build_data_docs, check_results_frame, pool_stats, run_landing_gate
from ivig_platform.quality.cache import CACHE_DIR, read_cached, write_cached
from ivig_platform.quality.gate import GateResult
from ivig_platform.quality.result_json import FORMAT, UnreadableResult, from_json, to_json

DELIVERY = "2026-11-24"
KEY = "0123456789abcdef0123456789abcdef"


@pytest.fixture(scope="module")
def held_back() -> GateResult:
    """A delivery held back (a sex code outside the vocabulary): its own validations kept."""
    sites = {f"h{i:02d}": landed_site(f"h{i:02d}", n_patients=6 + i % 3, seed=i)
             for i in range(1, 7)}
    tables = dict(sites["h01"])
    tables["patients"] = tables["patients"].with_columns(pl.lit("X").alias("sex"))
    result = run_landing_gate("h01", DELIVERY, tables, pool_stats(sites), "run-1")
    assert not result.passed_errors and result.runs
    return result


def _gate_folder(warehouse: Path) -> Path:
    return delivery_dir(warehouse, "h01", DELIVERY) / CACHE_DIR


def test_a_cached_verdict_is_stored_as_json_not_as_a_pickle(tmp_path, held_back):
    write_cached(tmp_path, KEY, held_back)
    (stored,) = _gate_folder(tmp_path).iterdir()
    assert stored.name == f"{KEY}.json"
    record = json.loads(stored.read_text())
    assert record["format"] == FORMAT and record["key"] == KEY
    assert [o["check_id"] for o in record["outcomes"]] == [o.check_id for o in held_back.outcomes]


def test_a_cached_verdict_rebuilds_check_rows_reason_and_gx_results(tmp_path, held_back):
    write_cached(tmp_path, KEY, held_back)
    cached = read_cached(tmp_path, "h01", DELIVERY, KEY, "run-2")
    assert cached is not None and cached.run_id == "run-2"
    assert cached.validated_at == held_back.validated_at  # when the checks really ran
    assert (cached.verdict, cached.reason) == (held_back.verdict, held_back.reason)
    fresh = check_results_frame([held_back]).drop("run_id")
    assert check_results_frame([cached]).drop("run_id").equals(fresh)
    assert [r.suite for r in cached.runs] == [r.suite for r in held_back.runs]
    for before, after in zip(held_back.runs, cached.runs, strict=True):
        assert after.result.to_json_dict() == before.result.to_json_dict(), before.suite
        assert (after.batch_identifier, after.rows) == (before.batch_identifier, before.rows)


# GX gives each collapsible block of a page a random id.
_RANDOM_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _pages(index: Path) -> dict[str, str]:
    root = index.parent
    return {p.relative_to(root).as_posix(): _RANDOM_ID.sub("<id>", p.read_text())
            for p in root.rglob("*.html") if "validations" in p.parts}


def test_data_docs_of_a_cached_verdict_are_those_of_the_validation(tmp_path, held_back):
    failed = dataclasses.replace(held_back, runs=[r for r in held_back.runs
                                                  if r.suite == "landed.patients"])
    cached, _ = from_json(to_json(failed))
    fresh = _pages(build_data_docs([failed], tmp_path / "fresh"))
    again = _pages(build_data_docs([cached], tmp_path / "cached"))
    assert len(fresh) == 1 and again == fresh


def test_an_old_pickle_is_never_read_and_goes_when_the_verdict_is_stored(tmp_path, held_back):
    folder = _gate_folder(tmp_path)
    folder.mkdir(parents=True)
    (folder / f"{KEY}.pickle").write_bytes(pickle.dumps(held_back))
    assert read_cached(tmp_path, "h01", DELIVERY, KEY, "run-2") is None
    write_cached(tmp_path, KEY, held_back)
    assert [p.name for p in folder.iterdir()] == [f"{KEY}.json"]


@pytest.mark.parametrize("damage", ["cut short", "another format", "another key",
                                    "another delivery", "not a record"])
def test_an_unreadable_cache_file_is_removed_and_the_delivery_validated_again(
        tmp_path, held_back, damage):
    write_cached(tmp_path, KEY, held_back)
    path = _gate_folder(tmp_path) / f"{KEY}.json"
    record = json.loads(path.read_text())
    if damage == "cut short":
        path.write_text(path.read_text()[: len(path.read_text()) // 2])
    elif damage == "another format":
        path.write_text(json.dumps({**record, "format": "ivig-gate-result/0"}))
    elif damage == "another key":
        path.write_text(json.dumps({**record, "key": "f" * 32}))
    elif damage == "another delivery":
        path.write_text(json.dumps({**record, "delivery_id": "2026-01-01"}))
    else:
        path.write_text(json.dumps([1, 2, 3]))
    assert read_cached(tmp_path, "h01", DELIVERY, KEY, "run-2") is None
    assert not path.exists()


def test_a_record_whose_gx_result_does_not_rebuild_is_not_a_verdict(held_back):
    record = json.loads(to_json(held_back))
    del record["runs"][0]["result"]["results"]
    with pytest.raises(UnreadableResult):
        from_json(json.dumps(record))
