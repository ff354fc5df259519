"""The proof that an incremental refresh equals a full one (issue 12, point 2).

A hypothesis state machine applies random sequences of deliveries to one small inbox —
a new site, a re-delivery with one cell changed, a broken delivery (landing rejects it),
a held-back one (the gate's CK drift check holds it back, as in the demo), a site's folder
removed, a protocol amendment given with --plan (a plan change, or a contract change
adding a measure) — and after each step refreshes the warehouse W as the nightly run does
(incremental when changes.py allows it) and a copy of the W it started from with a full
rebuild, then checks that both published files hold the same tables with the same rows
(tests/incremental_support.py says what is left out and why).

Both refreshes of a step start from the same published file (W is copied *before* its
refresh): a full refresh started from W's newer file would compare `quality.check_delta`
and the delivery events against another previous run, which is a difference of history,
not of build mode.

Real `ivig refresh` processes, real Prefect, dbt, GX and DuckDB. Bounded (the settings
below) so the test stays within a few minutes of .ci/run on two cores.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import polars as pl
import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    precondition,
    rule,
    run_state_machine_as_test,
)
from incremental_support import (
    BUILD_SCOPE,
    RUN_OR_MOMENT,
    RUN_PLACEHOLDER,
    Inbox,
    Published,
    Site,
    changed_cell,
    ck_site_extract,
    first_difference,
    mislabelled_ck,
    published_tables,
)
from protocol_helpers import HAND_GRIP, V2, amendment_file
from refresh_runs_support import (
    cli_env,
    copy_tree,
    refresh_args,
    run_cli,
    running_prefect_server,
)

from ivig_platform.demo import write_demo_inbox
from ivig_platform.demo.sites import SITES
from ivig_platform.states import ACCEPTED, BY_LANDING, BY_QUALITY_GATE, REJECTED
from ivig_platform.warehouse import changes

# `ivig refresh --full-refresh` rebuilds everything.
FULL_REFRESH = "--full-refresh"

# The background inbox: four demo hospitals (every format variant, a superseded and a
# rejected delivery, quarantined rows; three of them write CK, so a new site's drift
# check is judged against three others).
DEMO_SITES, DEMO_PATIENTS, DEMO_SEED = 4, 12, 20261124
#: Sites the machine may add: registry sites the background inbox does not use.
NEW_SITES = tuple(site_id for site_id, _ in SITES[DEMO_SITES:DEMO_SITES + 3])
DEMO_SITE_IDS = tuple(site_id for site_id, _ in SITES[:DEMO_SITES])
#: Background sites that write CK (and so count in a drift check's pooled reference).
DEMO_CK_SITES = ("hu-la-paz", "hu-12-octubre", "hu-vall-hebron")
DRIFT_MIN_SITES = 3

PLANS = {"v2": V2, "v2-grip": HAND_GRIP}
# An amendment only after this many steps: with so few examples, hypothesis would
# otherwise spend them on the two plan files, the deliveries untried.
AMEND_AFTER = 2

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]

# One example of one step per rule, in an order hypothesis draws: every kind of change is
# tried on every run of the suite (each rule waits until the others have run once), and
# the test stays at 1 + 2 × 6 refreshes (~5 minutes on two quiet cores).
RULES = ("new_site", "redelivery", "broken_delivery", "held_back_delivery", "site_removed",
         "amendment")
SETTINGS = settings(
    max_examples=1,
    stateful_step_count=len(RULES),
    deadline=None,
    derandomize=True,
    database=None,
    # no shrinking: each step is two real refreshes; a failure prints its steps as found
    phases=[Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# ---------------------------------------------------------------- the comparison, in small


def _published(run_id: str, **tables: pl.DataFrame) -> Published:
    return Published({name.replace("__", "."): frame for name, frame in tables.items()},
                     run_id)


def test_equal_files_differ_only_in_run_moment_order_and_last_float_bits() -> None:
    a = _published(
        "run-a",
        quality__refresh_run=pl.DataFrame({"run_id": ["run-a"], "started_at": ["09:00"],
                                           "sites": [3]}),
        marts__mart_efficacy=pl.DataFrame({"measure": ["ck", "mrss"],
                                           "mean_change": [0.1 + 0.2, -4.0]}),
        quality__check_result=pl.DataFrame(
            {"observed_value": ["median 640, fixed in run run-a"]}),
        quality__build_scope=pl.DataFrame({"site_id": ["hu-la-paz"], "build": ["incremental"],
                                           "reason": [None]}))
    b = _published(
        "run-b",
        quality__refresh_run=pl.DataFrame({"run_id": ["run-b"], "started_at": ["09:05"],
                                           "sites": [3]}),
        marts__mart_efficacy=pl.DataFrame({"measure": ["mrss", "ck"],
                                           "mean_change": [-4.0, 0.3]}),
        quality__check_result=pl.DataFrame(
            {"observed_value": ["median 640, fixed in run run-b"]}),
        quality__build_scope=pl.DataFrame({"site_id": ["hu-la-paz", "hu-12-octubre"],
                                           "build": ["full"] * 2,
                                           "reason": ["--full-refresh was given"] * 2}))
    assert {"run_id", "started_at"} <= set(RUN_OR_MOMENT)
    assert first_difference(a, b) is None


# (what the full file has instead, the table named in the message)
DIFFERENCES = [
    ({"marts.mart_efficacy": pl.DataFrame({"measure": ["ck"], "mean_change": [0.31]})},
     "marts.mart_efficacy: rows differ"),
    ({"marts.mart_efficacy": pl.DataFrame({"measure": ["ck", "ck"],
                                           "mean_change": [0.3, 0.3]})},
     "marts.mart_efficacy: rows differ (1 incremental, 2 full)"),
    ({"marts.mart_efficacy": pl.DataFrame({"measure": ["ck"], "n_paired": [4]})},
     "marts.mart_efficacy: columns differ"),
    ({"marts.mart_efficacy": pl.DataFrame({"measure": ["ck"], "mean_change": [0.3]}),
      "marts.extra": pl.DataFrame({"x": [1]})},
     "only in the full one: ['marts.extra']"),
    ({"marts.mart_efficacy": pl.DataFrame({"measure": ["ck"], "mean_change": [0.3]})},
     f"only in the incremental file: ['{BUILD_SCOPE}']"),
]


@pytest.mark.parametrize(("full_tables", "message"), DIFFERENCES)
def test_a_difference_names_the_first_differing_table(full_tables, message) -> None:
    incremental = {"marts.mart_efficacy": pl.DataFrame({"measure": ["ck"],
                                                        "mean_change": [0.3]})}
    incremental[BUILD_SCOPE] = pl.DataFrame({"site_id": ["hu-12-octubre"]})
    if BUILD_SCOPE not in message:  # its rows differ, and are not compared
        full_tables = {**full_tables, BUILD_SCOPE: pl.DataFrame({"site_id": ["hu-la-paz"]})}
    found = first_difference(Published(incremental, "a"), Published(full_tables, "b"))
    assert found is not None and message in found


def test_a_run_id_is_masked_only_where_it_is_the_files_own() -> None:
    a = _published("run-a", quality__delta=pl.DataFrame({"previous_run_id": ["run-0"],
                                                         "note": ["run-a"]}))
    b = _published("run-b", quality__delta=pl.DataFrame({"previous_run_id": ["run-9"],
                                                         "note": ["run-b"]}))
    found = first_difference(a, b)
    assert found is not None and "run-0" in found and RUN_PLACEHOLDER in found


# ------------------------------------------------------------------------- the real runs


@pytest.fixture(scope="module")
def prefect_env(tmp_path_factory) -> Iterator[dict[str, str]]:
    """The children's environment: key A and one Prefect server for the whole test, so
    no refresh pays the temporary server's start."""
    with running_prefect_server(tmp_path_factory.mktemp("prefect-server")) as server:
        yield {**cli_env(), **server}


@pytest.fixture(scope="module")
def background(tmp_path_factory, prefect_env) -> Path:
    """The demo inbox and its published warehouse, built once and copied by each example."""
    root = tmp_path_factory.mktemp("background")
    write_demo_inbox(root / "inbox", n_sites=DEMO_SITES, n_patients=DEMO_PATIENTS,
                     seed=DEMO_SEED)
    refresh(root / "inbox", root / "warehouse", prefect_env)
    return root


def refresh(inbox: Path, warehouse: Path, env: dict[str, str], *extra: str) -> str:
    done = run_cli(refresh_args(inbox, warehouse, *extra), env, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout + done.stderr


def build_of(summary_line: str, warehouse: Path) -> tuple[str, frozenset[str], str | None]:
    """(mode, sites, reason) of the refresh: the mode from its summary line ("built
    incrementally (…)" / "built in full (…)"), the sites and the reason from
    `quality.build_scope` (an incremental build with no changed site writes no row)."""
    mode = ("incremental" if "built incrementally (" in summary_line
            else "full" if "built in full (" in summary_line else "?")
    con = duckdb.connect(str(warehouse / "ivig.duckdb"), read_only=True)
    try:
        frame = con.sql(f"SELECT site_id, reason FROM {BUILD_SCOPE}").pl()
    finally:
        con.close()
    reasons = set(frame["reason"].to_list())
    assert len(reasons) <= 1, reasons
    return mode, frozenset(frame["site_id"].to_list()), next(iter(reasons), None)


def delivery_status(warehouse: Path, site_id: str, delivery_id: str) -> tuple[str, str | None]:
    con = duckdb.connect(str(warehouse / "ivig.duckdb"), read_only=True)
    try:
        return con.execute("SELECT status, rejected_by FROM quality.site_delivery "
                           "WHERE site_id = ? AND delivery_id = ?",
                           [site_id, delivery_id]).fetchone()
    finally:
        con.close()


class IncrementalEqualsFull(RuleBasedStateMachine):
    """Each rule changes the inbox (or the plans in force), then `refreshed_alike`
    refreshes W and a copy of it in full, and compares the two published files."""

    def __init__(self, background: Path, env: dict[str, str], root: Path) -> None:
        super().__init__()
        self.env = env
        self.root = root
        self.inbox = Inbox(root)
        copy_tree(background / "inbox", self.inbox.path)
        self.warehouse = copy_tree(background / "warehouse", root / "W")
        self.sites: dict[str, Site] = {}
        self.demo_present = set(DEMO_SITE_IDS)
        self.plans: list[Path] = []
        self.plans_built: list[Path] = []
        self.cells_changed = 0
        self.steps = 0
        self.done: set[str] = set()

    # --- rules -----------------------------------------------------------------------

    @precondition(lambda self: self._turn("new_site") and len(self.sites) < len(NEW_SITES))
    @rule(data=st.data())
    def new_site(self, data) -> None:
        self.done.add("new_site")
        site_id = data.draw(st.sampled_from([s for s in NEW_SITES if s not in self.sites]))
        self.sites[site_id] = Site(site_id, ck_site_extract())
        delivery = self.inbox.deliver(site_id, self.sites[site_id].extract)
        self.refreshed_alike({site_id}, (site_id, delivery, (ACCEPTED, None)))

    @precondition(lambda self: self._turn("redelivery") and self._present())
    @rule(data=st.data())
    def redelivery(self, data) -> None:
        """A new delivery id with one cell changed: the site's rows are replaced."""
        self.done.add("redelivery")
        site = data.draw(st.sampled_from(self._present()))
        self.cells_changed += 1
        site.extract = changed_cell(site.extract, self.cells_changed)
        delivery = self.inbox.deliver(site.site_id, site.extract)
        self.refreshed_alike({site.site_id}, (site.site_id, delivery, (ACCEPTED, None)))

    @precondition(lambda self: self._turn("broken_delivery") and self._present())
    @rule(data=st.data())
    def broken_delivery(self, data) -> None:
        """A delivery without its assessments file: landing rejects it (missing_table),
        the one before it stays in force, so no site's rows change."""
        self.done.add("broken_delivery")
        site = data.draw(st.sampled_from(self._present()))
        delivery = self.inbox.deliver(site.site_id, site.extract, without="assessments")
        self.refreshed_alike(set(), (site.site_id, delivery, (REJECTED, BY_LANDING)))

    @precondition(lambda self: self._turn("held_back_delivery") and self._held_back_judged())
    @rule(data=st.data())
    def held_back_delivery(self, data) -> None:
        """CK in µkat/L labelled U/L: landing accepts it, the gate holds it back."""
        self.done.add("held_back_delivery")
        site = data.draw(st.sampled_from(self._held_back_judged()))
        delivery = self.inbox.deliver(site.site_id, mislabelled_ck(site.extract))
        self.refreshed_alike(set(), (site.site_id, delivery, (REJECTED, BY_QUALITY_GATE)))

    @precondition(lambda self: self._turn("site_removed") and self._removable())
    @rule(data=st.data())
    def site_removed(self, data) -> None:
        """A site's folder leaves the inbox; the warehouse is the record, so its landed
        data stays and no site's rows change (changes.py: a site on one side only counts
        as changed; here it is on both, the published file's and this run's). Only sites
        the other rules do not need: a new site while another one stays, or a demo site
        without CK (the held-back rule needs three others with CK)."""
        self.done.add("site_removed")
        choices = self._removable()
        site_id = data.draw(st.sampled_from(choices))
        self.inbox.remove(site_id)
        if site_id in self.sites:
            self.sites[site_id].present = False
        self.demo_present.discard(site_id)
        self.refreshed_alike(set(), None)

    @precondition(lambda self: self._turn("amendment") and len(self.plans) < len(PLANS)
                  and self.steps >= AMEND_AFTER)
    @rule(data=st.data())
    def amendment(self, data) -> None:
        """A --plan file comes into force: v2 (other §7 windows) or v2-grip (a contract
        change: a new measure with its range and units); every later refresh passes it.
        A plan change makes the build full; the next step is incremental again."""
        self.done.add("amendment")
        names = [n for n in PLANS if self.root / "plans" / f"{n}.yaml" not in self.plans]
        name = data.draw(st.sampled_from(names))
        self.plans.append(amendment_file(self.root / "plans", f"{name}.yaml", PLANS[name]))
        self.refreshed_alike(set(), None)

    # --- after each rule ------------------------------------------------------------

    def refreshed_alike(self, changed: set[str],
                        delivery: tuple[str, str, tuple[str, str | None]] | None) -> None:
        """Refresh W (incrementally where changes.py allows) and a copy of the W it
        starts from with a full rebuild; the two published files must be equal, and the
        step's delivery in the state its rule made."""
        self.steps += 1
        full = copy_tree(self.warehouse, self.root / f"W_full-{self.steps}")
        plan_args = [a for p in self.plans for a in ("--plan", str(p))]
        line = refresh(self.inbox.path, self.warehouse, self.env, *plan_args)
        full_line = refresh(self.inbox.path, full, self.env, FULL_REFRESH, *plan_args)
        difference = first_difference(Published(*published_tables(self.warehouse)),
                                      Published(*published_tables(full)))
        assert difference is None, f"step {self.steps}: {difference}"
        if delivery is not None:
            site_id, delivery_id, status = delivery
            assert delivery_status(self.warehouse, site_id, delivery_id) == status
        self._check_build_modes(line, full_line, full, frozenset(changed))
        self.plans_built = list(self.plans)
        shutil.rmtree(full)

    def _check_build_modes(self, line: str, full_line: str, full: Path,
                           changed: frozenset[str]) -> None:
        """As changes.py promises: incremental over the changed sites, unless the plans
        changed (then full, saying why); the --full-refresh copy always full."""
        mode, sites, reason = build_of(line, self.warehouse)
        if self.plans != self.plans_built:
            assert mode == "full" and reason and reason.startswith(
                "the published warehouse was built differently"), (mode, reason)
        else:
            assert (mode, sites, reason) == ("incremental", changed, None)
        full_mode, _, full_reason = build_of(full_line, full)
        assert (full_mode, full_reason) == ("full", changes.FULL_REQUESTED)

    # --- helpers --------------------------------------------------------------------

    def _turn(self, kind: str) -> bool:
        """Each rule once before any runs twice (RULES, SETTINGS)."""
        return kind not in self.done or self.done >= set(RULES)

    def _removable(self) -> list[str]:
        present = [s.site_id for s in self._present()]
        spare = present if len(present) > 1 else []
        return sorted(spare + [s for s in self.demo_present if s not in DEMO_CK_SITES])

    def teardown(self) -> None:
        """The bounded run must still have tried every kind of change."""
        assert self.done == set(RULES), f"rules not run: {sorted(set(RULES) - self.done)}"

    def _present(self) -> list[Site]:
        return [s for s in self.sites.values() if s.present]

    def _held_back_judged(self) -> list[Site]:
        """Present sites whose drift check is judged: at least DRIFT_MIN_SITES other
        sites with CK still in the inbox (removed ones stay established in the file, but
        the rule does not lean on that)."""
        present = self._present()
        others = len(self.demo_present & set(DEMO_CK_SITES)) + len(present) - 1
        return present if others >= DRIFT_MIN_SITES else []


def test_an_incremental_refresh_publishes_what_a_full_one_does(background, prefect_env,
                                                                tmp_path_factory) -> None:
    started = time.monotonic()
    run_state_machine_as_test(
        lambda: IncrementalEqualsFull(background, prefect_env,
                                      tmp_path_factory.mktemp("machine")),
        settings=SETTINGS)
    print(f"incremental = full: {time.monotonic() - started:.0f} s")
