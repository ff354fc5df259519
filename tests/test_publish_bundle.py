"""The file, the report and the docs are published together, or not at all (issue 10, 3).

A failure at any swap puts back what was already replaced; a `kill -9` in the middle of
the swaps (a real one, in a child process) leaves a journal that the next start plays
back; a rollback brings back a version's report and docs with its file.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from ivig_platform.warehouse.publish import (
    JOURNAL,
    Bundle,
    build_path,
    publish_bundle,
    published_path,
    recover_interrupted_publish,
)
from ivig_platform.warehouse.rollback import list_versions, roll_back

pytestmark = pytest.mark.timeout(60)


def build_run(warehouse: Path, mark: str) -> Bundle:
    """A run's three products in its build folder, each saying which run made it."""
    built = build_path(warehouse, mark)
    built.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(built))
    con.execute("CREATE TABLE refresh_mark AS SELECT ? AS mark", [mark])
    con.close()
    report = built.parent / "report.html"
    report.write_text(f"<p>report of {mark}</p>")
    docs = built.parent / "docs"
    (docs / "dbt").mkdir(parents=True)
    (docs / "dbt" / "index.html").write_text(f"dbt docs of {mark}")
    (docs / "data-docs").mkdir()
    (docs / "data-docs" / "index.html").write_text(f"data docs of {mark}")
    return Bundle(built, report, docs)


def live(warehouse: Path) -> tuple[str, str, str, str]:
    """Which run each published thing belongs to."""
    con = duckdb.connect(str(published_path(warehouse)), read_only=True)
    try:
        mark = con.execute("SELECT mark FROM refresh_mark").fetchone()[0]
    finally:
        con.close()
    return (mark, (warehouse / "report.html").read_text().split()[-1].removesuffix("</p>"),
            (warehouse / "docs" / "dbt" / "index.html").read_text().split()[-1],
            (warehouse / "docs" / "data-docs" / "index.html").read_text().split()[-1])


@pytest.fixture
def published(tmp_path: Path) -> Path:
    warehouse = tmp_path / "warehouse"
    publish_bundle(build_run(warehouse, "old"), warehouse)
    return warehouse


def test_the_three_are_swapped_in_together(published: Path):
    assert live(published) == ("old",) * 4
    publish_bundle(build_run(published, "new"), published)
    assert live(published) == ("new",) * 4
    assert not list((published / ".build").glob(f"*/{JOURNAL}"))


@pytest.mark.parametrize("failing", ["ivig.duckdb", "report.html", "docs"])
def test_a_failing_swap_puts_back_what_was_replaced(published: Path, failing: str,
                                                    monkeypatch: pytest.MonkeyPatch):
    versions_before = list_versions(published)
    real_replace, real_rename = os.replace, Path.rename
    failed = []

    def fails(target) -> bool:  # the first swap into place of `failing`, once
        if Path(target).name == failing and ".build" not in str(target) and not failed:
            failed.append(target)
            return True
        return False

    def replace(source, target, *args, **kwargs):
        if fails(target):
            raise OSError(28, "No space left on device", str(target))
        return real_replace(source, target, *args, **kwargs)

    def rename(self, target):
        if fails(target):
            raise OSError(28, "No space left on device", str(target))
        return real_rename(self, target)

    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(Path, "rename", rename)
    with pytest.raises(OSError, match="No space left"):
        publish_bundle(build_run(published, "new"), published)
    monkeypatch.undo()
    assert live(published) == ("old",) * 4
    assert list_versions(published) == versions_before  # the new version link is gone too
    assert not list((published / ".build").glob(f"*/{JOURNAL}"))


def test_a_failure_preparing_the_publish_changes_nothing(published: Path,
                                                         monkeypatch: pytest.MonkeyPatch):
    real_link = os.link
    calls = []

    def link(source, target, *args, **kwargs):
        calls.append(target)
        if len(calls) == 3:  # after the version links, at the first undo link
            raise OSError(28, "No space left on device", str(target))
        return real_link(source, target, *args, **kwargs)

    versions_before = list_versions(published)
    monkeypatch.setattr(os, "link", link)
    with pytest.raises(OSError):
        publish_bundle(build_run(published, "new"), published)
    monkeypatch.undo()
    assert live(published) == ("old",) * 4
    assert list_versions(published) == versions_before


KILLED_MID_PUBLISH = r"""
import os, signal, sys
from pathlib import Path
sys.path.insert(0, sys.argv[2])
from test_publish_bundle import build_run
from ivig_platform.warehouse.publish import publish_bundle

warehouse = Path(sys.argv[1])
bundle = build_run(warehouse, "new")
call, after = sys.argv[3].split(":")
real = getattr(os, call)

def then_die(source, target, *args, **kwargs):
    real(source, target, *args, **kwargs)
    if Path(target).name.startswith(after):
        os.kill(os.getpid(), signal.SIGKILL)  # kill -9 right after this step

setattr(os, call, then_die)
publish_bundle(bundle, warehouse)
"""


@pytest.mark.parametrize("killed_after", ["link:ivig-", "replace:ivig.duckdb",
                                          "replace:report.html"],
                         ids=["after-the-version-link", "after-the-file", "after-the-report"])
def test_a_publish_killed_half_way_is_played_back_at_the_next_start(published: Path,
                                                                     killed_after: str):
    child = subprocess.run([sys.executable, "-c", KILLED_MID_PUBLISH, str(published),
                            str(Path(__file__).parent), killed_after])
    assert child.returncode == -9
    assert list((published / ".build").glob(f"*/{JOURNAL}")), "the journal stays behind"
    assert recover_interrupted_publish(published) == ["new"]
    assert live(published) == ("old",) * 4  # the next start puts all back
    assert len(list_versions(published)) == 1  # the killed run's version link is gone


def test_rollback_brings_back_the_versions_report_and_docs(published: Path):
    publish_bundle(build_run(published, "new"), published)
    done = roll_back(published)
    assert done.with_report_and_docs
    assert live(published) == ("old",) * 4
    roll_back(published, to=list_versions(published)[-1].stem)
    assert live(published) == ("new",) * 4


def test_rollback_to_a_version_without_report_and_docs_says_so(published: Path):
    from ivig_platform.warehouse.publish import publish

    built = build_run(published, "bare").database
    publish(built, published)  # the file only, as before report and docs were kept
    publish_bundle(build_run(published, "new"), published)
    done = roll_back(published)
    assert not done.with_report_and_docs
    assert live(published)[0] == "bare"
