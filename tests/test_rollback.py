"""Rolling the published warehouse back (and forward) among the kept versions."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pytest

from ivig_platform.warehouse.publish import KEEP_VERSIONS, build_path, publish, published_path
from ivig_platform.warehouse.rollback import (
    RollbackError,
    current_version,
    list_versions,
    rollback,
)


def publish_marked(warehouse: Path, mark: int) -> Path:
    """Build a tiny warehouse file whose only row says `mark`, and publish it."""
    built = build_path(warehouse, f"test-{mark}")
    built.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(built))
    con.execute("CREATE TABLE refresh_mark AS SELECT ? AS mark", [mark])
    con.execute("CHECKPOINT")
    con.close()
    return publish(built, warehouse)


def published_mark(warehouse: Path) -> int:
    con = duckdb.connect(str(published_path(warehouse)), read_only=True)
    try:
        return con.execute("SELECT mark FROM refresh_mark").fetchone()[0]
    finally:
        con.close()


@pytest.fixture
def three_published(tmp_path: Path) -> Path:
    warehouse = tmp_path / "warehouse"
    for mark in (1, 2, 3):
        publish_marked(warehouse, mark)
    return warehouse


def test_list_versions_oldest_first_and_current_is_newest(three_published: Path):
    versions = list_versions(three_published)
    assert len(versions) == 3
    assert versions == sorted(versions)
    assert current_version(three_published) == versions[-1]


def test_rollback_steps_back_one_version_at_a_time(three_published: Path):
    v1, v2, v3 = list_versions(three_published)
    assert rollback(three_published) == published_path(three_published)
    assert published_mark(three_published) == 2
    assert current_version(three_published) == v2
    assert list_versions(three_published) == [v1, v2, v3]  # the replaced one is kept
    rollback(three_published)
    assert published_mark(three_published) == 1


def test_rollback_past_the_oldest_version_is_a_clear_error(three_published: Path):
    rollback(three_published)
    rollback(three_published)
    with pytest.raises(RollbackError, match="oldest kept version"):
        rollback(three_published)
    assert published_mark(three_published) == 1  # nothing changed


def test_rollback_to_a_named_version_also_rolls_forward(three_published: Path):
    v1, _, v3 = list_versions(three_published)
    rollback(three_published, to=v1.stem)
    assert published_mark(three_published) == 1
    rollback(three_published, to=v3.name)
    assert published_mark(three_published) == 3


def test_rollback_to_unknown_or_current_names_the_kept_versions(three_published: Path):
    v3 = list_versions(three_published)[-1]
    with pytest.raises(RollbackError, match=r"no kept version named 'ivig-nope'.*kept: ivig-"):
        rollback(three_published, to="ivig-nope")
    with pytest.raises(RollbackError, match="already the published version"):
        rollback(three_published, to=v3.stem)


def test_nothing_to_roll_back_to(tmp_path: Path):
    with pytest.raises(RollbackError, match="nothing to roll back to"):
        rollback(tmp_path / "empty")
    warehouse = tmp_path / "once"
    publish_marked(warehouse, 1)
    with pytest.raises(RollbackError, match="nothing older"):
        rollback(warehouse)


def test_rollback_leaves_no_scratch_file_and_keeps_old_readers(three_published: Path):
    reader = duckdb.connect(str(published_path(three_published)), read_only=True)
    try:
        rollback(three_published)
        assert reader.execute("SELECT mark FROM refresh_mark").fetchone()[0] == 3
    finally:
        reader.close()
    assert published_mark(three_published) == 2
    assert list((three_published / ".build").glob("rollback-*")) == []


def test_publish_after_rollback_keeps_pruning(three_published: Path):
    rollback(three_published)
    publish_marked(three_published, 4)
    versions = list_versions(three_published)
    assert len(versions) == KEEP_VERSIONS
    assert published_mark(three_published) == 4
    assert current_version(three_published) == versions[-1]


def test_a_published_file_outside_versions_is_kept_when_replaced(three_published: Path):
    target = published_path(three_published)
    foreign = three_published / "foreign.duckdb"
    con = duckdb.connect(str(foreign))
    con.execute("CREATE TABLE refresh_mark AS SELECT 99 AS mark")
    con.close()
    os.replace(foreign, target)  # e.g. copied in by hand
    assert current_version(three_published) is None
    rollback(three_published)
    assert published_mark(three_published) == 3  # the newest kept version
    assert len(list_versions(three_published)) == 4  # the foreign file is kept too


def test_after_a_rollback_the_next_refresh_is_not_nothing_changed(three_published: Path,
                                                                  tmp_path: Path):
    """The no-change state speaks of the file it was computed for (issue 10, point 9)."""
    from ivig_platform.warehouse.state import current_state, is_unchanged, write_state

    inbox = tmp_path / "inbox"
    (inbox / "hu-test" / "2026-11-01").mkdir(parents=True)
    state = current_state(inbox, "fingerprint", 0)
    write_state(three_published, state)  # what the refresh of version 3 recorded
    assert is_unchanged(three_published, state)
    rollback(three_published)
    assert not is_unchanged(three_published, state)  # version 2 is not what it was built from
    rollback(three_published, to=list_versions(three_published)[-1].stem)
    assert is_unchanged(three_published, state)  # version 3 again: the same file
