"""Protocol §6 small-count rule of the study report, with secondary suppression.

This is the one place the rule lives. A count of 1-4 is shown as ``<5`` (primary
suppression), and no such count may be recoverable from the other cells of its table — a
row, a column or a total — so where it would be, further cells are hidden (secondary
suppression) and shown as ``§6``. Every count the report displays is a cell of one
``CountSystem``: the sections declare the additive relations that really hold between
their cells (``relations.py``), ``protect`` decides what is hidden, and the sections show
each count through the resulting ``Disclosure`` (``Disclosure.count``) and leave out every
statistic resting on a hidden count (``Disclosure.withheld``): a percentage, a rate, a
mean, a confidence interval, a p-value.

What a reader (the attacker) is assumed to know — the model ``protect`` guarantees
against:

- every displayed cell, exactly, in every table of the report (a count shown in two
  tables is one cell);
- the declared relations: which cells add up to which total (characteristic categories
  within a column, overall = diffuse + limited + not recorded within a row, event
  categories = all events, sites = the study total, a subset within its set...), including
  cells the report never displays (e.g. the patients of no recorded subtype within a
  row), which are unknown whole numbers >= 0;
- that a ``<5`` is 1-4, and that a ``§6`` is at least 1 (a 0 is always shown).

A ``§6`` says nothing more: it hides counts of 5 or more (the partners) and, where no
partner is left, counts of 1-4 too (``<5 = <5 + <5 + <5 + <5`` pins every cell to 1 and the
total to 4 by the bounds alone: the total is shown as ``§6``), so a reader cannot tell
which. Relations the protocol does not make exact are outside the model: a patient may
count in several indications, overlaps or terms, so those do not add up, and bounds such
as "each patient has at least one indication" are not used.

Guarantee: every count shown as ``<5`` or ``§6`` has at least two values consistent with
everything above. ``protect`` first applies the classic rule — a relation with exactly one
hidden cell gets its smallest other non-zero cell hidden too, until stable — which is not
enough on its own (two protected cycles joined by one cell pin that cell; bounds pin sums
of small cells). So each hidden cell is then checked exactly: an integer program over the
relations linked to it asks whether the cell can take a value other than its own. If not,
the remedy is, in order: the smallest cell of the same table whose hiding protects it;
showing a small count of its relations as ``§6`` instead of ``<5``, when that protects it;
a set of cells of the same table; the smallest cell of another table; a set of any linked
cells (a table protects its small counts with its own cells first). A set is pruned so
that no part of it can be shown again, the largest counts offered back first. Then the
check repeats. Hiding a cell,
or widening a ``<5`` to ``§6``, only adds possibilities, so a cell once protected stays
protected and the loop ends (at worst with every cell of the relations hidden).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from ivig_platform.protocol.in_force import protocol_in_force
from ivig_platform.protocol.schema import SmallCells

#: What a count hidden by secondary suppression is displayed as, and every statistic
#: (percentage, rate, mean, CI, p) resting on such a count.
HIDDEN = "§6"
#: Displayed for a value that is missing or cannot be computed.
MISSING = "—"
#: How many candidate partners are tried (each costs two integer programs).
_TRIED = 6
#: How many shown cells in a row a set of partners may reach through.
_REACH = 2


def small_cells() -> SmallCells:
    """Protocol §6's small-cell rule (protocol/privacy.yaml) of the protocol in force:
    counts from 1 to threshold - 1 are small. Read at call time, so a report built under a
    given protocol (`build_html(protocol=...)`) masks by its rule. The docstrings and notes
    say 1-4 and <5: the threshold of v1."""
    return protocol_in_force().privacy.small_cells


def threshold() -> int:
    """The smallest count that is not small (5 in v1)."""
    return small_cells().threshold


def small_range() -> str:
    """How the notes write the small counts: "1–4"."""
    return f"1–{threshold() - 1}"


def mask() -> str:
    """What a count of 1-4 is displayed as."""
    return small_cells().mask


def suppressed() -> str:
    """Displayed instead of a statistic (mean, SD, percentage, plot) of fewer than 5
    patients."""
    return f"n{mask()}"


def hidden_note() -> str:
    return (
        f"{HIDDEN}: not shown, so that no count shown as {mask()} can be worked out from the "
        "other cells of its row, column or total (protocol §6, secondary suppression); "
        "percentages and statistics resting on such a count are not shown either."
    )


def _small(count: int) -> bool:
    return small_cells().is_small(count)


def is_small(count: float | None) -> bool:
    """True for a count of 1 to 4 (0 and counts of 5 or more are not small)."""
    if count is None or (isinstance(count, float) and math.isnan(count)):
        return False
    return _small(int(count))


def mask_count(count: float | None) -> str:
    """A count as displayed in the report: ``<5`` for 1-4, else the number (``1,234``).

    ``None`` (or NaN) is ``—``. A float count must be whole. Counts that take part in
    relations are displayed through ``Disclosure.count`` instead.
    """
    if count is None or (isinstance(count, float) and math.isnan(count)):
        return MISSING
    if count != int(count):
        raise ValueError(f"a count must be a whole number, got {count!r}")
    if is_small(count):
        return mask()
    return f"{int(count):,}"


@dataclass(frozen=True)
class Relation:
    """``total`` = the sum of ``parts`` (cell ids), exactly."""

    total: str
    parts: tuple[str, ...]

    @property
    def cells(self) -> tuple[str, ...]:
        return (self.total, *self.parts)


class DisclosureError(RuntimeError):
    """A small count cannot be protected by hiding cells of the report."""


def _whole(value: float | None, cell: str) -> int:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return 0
    if value != int(value):
        raise ValueError(f"a count must be a whole number, got {value!r} for {cell}")
    return int(value)


@dataclass
class CountSystem:
    """The counts of a report (cell id -> value) and the relations between them.

    ``hidden`` cells are never displayed (unknown to a reader); ``fixed`` cells are
    displayed somewhere the suppression does not reach (e.g. the report header), so they
    are never hidden as partners.
    """

    values: dict[str, int] = field(default_factory=dict)
    hidden: set[str] = field(default_factory=set)
    fixed: set[str] = field(default_factory=set)
    relations: list[Relation] = field(default_factory=list)

    def add(self, cell: str, value: float | None, *, hidden: bool = False) -> str:
        """Declare a count (None and NaN count as 0); the same cell twice must agree."""
        number = _whole(value, cell)
        if cell in self.values and self.values[cell] != number:
            raise ValueError(f"cell {cell} declared twice with different values")
        self.values[cell] = number
        if hidden:
            self.hidden.add(cell)
        return cell

    def relate(self, total: str, parts: Iterable[str], *, remainder: str | None = None) -> bool:
        """Declare ``total`` = sum of ``parts`` (cells already added).

        ``remainder``: the id of a hidden cell that takes the difference (what the parts
        leave out, e.g. patients of no recorded subtype). Without one, the relation is
        declared only when it holds exactly; a relation whose parts exceed the total does
        not hold (its categories overlap) and is not declared. Returns whether it was.
        """
        parts = tuple(parts)
        rest = self.values[total] - sum(self.values[p] for p in parts)
        if rest < 0 or (rest and remainder is None):
            return False
        if remainder is not None:
            self.add(remainder, rest, hidden=True)
            parts = (*parts, remainder)
        self.relations.append(Relation(total, parts))
        return True

    def equal(self, a: str, b: str) -> bool:
        """Declare that two cells are the same count (shown in two places)."""
        return self.relate(a, (b,))


@dataclass(frozen=True)
class Disclosure:
    """What the report may show of each count: the outcome of ``protect``.

    ``primary``: the counts of 1-4; ``hidden``: the counts shown as ``§6`` (partners, and
    the few counts of 1-4 no partner could protect).
    """

    values: Mapping[str, int]
    primary: frozenset[str]
    hidden: frozenset[str]

    def hides(self, *cells: str | None) -> bool:
        """True when any of ``cells`` is not shown as its number; a statistic resting on
        it is not shown either. ``None`` entries are ignored."""
        return any(c is not None and (c in self.primary or c in self.hidden) for c in cells)

    def count(self, cell: str) -> str:
        """The text of a declared count: ``§6``, ``<5`` or the number (``1,234``)."""
        if cell in self.hidden:
            return HIDDEN
        if cell in self.primary:
            return mask()
        return f"{self.values[cell]:,}"

    def withheld(self, *cells: str | None) -> str | None:
        """The text replacing a statistic resting on ``cells``: ``§6`` when one of them is
        hidden, ``n<5`` when one is a count of 1-4; None when it may be shown."""
        if any(c is not None and c in self.hidden for c in cells):
            return HIDDEN
        if self.hides(*cells):
            return suppressed()
        return None


def protect(system: CountSystem) -> Disclosure:
    """Primary and secondary suppression of ``system`` (see the module docstring)."""
    for relation in system.relations:
        missing = [c for c in relation.cells if c not in system.values]
        if missing:
            raise KeyError(f"relation on undeclared cells {missing}")
    primary = {c for c, v in system.values.items() if c not in system.hidden and _small(v)}
    state = _State(system, primary)
    while True:
        state.complete_relations()
        unsafe = state.first_unprotected()
        if unsafe is None:
            break
        state.remedy(unsafe)
    return Disclosure(dict(system.values), frozenset(primary),
                      frozenset(state.secondary | state.widened))


def table_of(cell: str) -> str:
    """The table a cell id belongs to (its first component)."""
    return cell.split("|", 1)[0]


class _State:
    """The suppression in progress over one CountSystem."""

    def __init__(self, system: CountSystem, primary: set[str]) -> None:
        self.system = system
        self.primary = primary
        self.secondary: set[str] = set()  # shown counts hidden as partners
        self.widened: set[str] = set()  # counts of 1-4 shown as §6 instead of <5
        self.protected: set[str] = set()
        self.by_cell: dict[str, list[Relation]] = {}
        for relation in system.relations:
            for cell in relation.cells:
                self.by_cell.setdefault(cell, []).append(relation)
        self._version = 0  # bumped whenever the suppression changes
        self._determined: tuple[int, set[str]] | None = None
        self._programs: tuple[int, dict[str, _Program]] = (-1, {})
        self._unknown: tuple[int, set[str]] = (-1, set())

    def hide(self, cell: str) -> None:
        self.secondary.add(cell)
        self._version += 1

    def widen(self, cell: str) -> None:
        self.widened.add(cell)
        self._version += 1

    # ---------------------------------------------------------------- what a reader knows

    def suppressed(self, cell: str) -> bool:
        return cell in self.primary or cell in self.secondary

    def unknown(self, cell: str) -> bool:
        if self._unknown[0] != self._version:
            determined = self.determined()
            self._unknown = (self._version, self.primary | self.secondary
                             | (self.system.hidden - determined))
        return cell in self._unknown[1]

    def bounds(self, cell: str) -> tuple[float, float]:
        if cell in self.secondary or cell in self.widened:
            return 1.0, math.inf
        if cell in self.primary:
            return 1.0, 4.0
        return 0.0, math.inf

    def determined(self) -> set[str]:
        """Hidden cells a reader can compute from shown cells alone (a relation whose
        other cells are all known); they are constants of the integer programs, which
        keeps each one to the few cells really in play."""
        if self._determined is not None and self._determined[0] == self._version:
            return self._determined[1]
        suppressed = self.primary | self.secondary
        known = {c for c in self.system.values
                 if c not in self.system.hidden and c not in suppressed}
        determined: set[str] = set()
        changed = True
        while changed:
            changed = False
            for relation in self.system.relations:
                open_cells = [c for c in relation.cells if c not in known]
                if len(open_cells) == 1 and open_cells[0] in self.system.hidden:
                    known.add(open_cells[0])
                    determined.add(open_cells[0])
                    changed = True
        self._determined = (self._version, determined)
        return determined

    def candidate(self, cell: str) -> bool:
        """A displayed, non-zero cell that may be hidden as a partner."""
        return (not self.unknown(cell) and cell not in self.system.fixed
                and cell not in self.system.hidden and self.system.values[cell] > 0)

    def smallest(self, cells: Iterable[str]) -> str | None:
        chosen = sorted((c for c in set(cells) if self.candidate(c)),
                        key=lambda c: (self.system.values[c], c))
        return chosen[0] if chosen else None

    # ---------------------------------------------------------------- the passes

    def complete_relations(self) -> None:
        """The classic pass: a relation whose only unknown cell is a suppressed one gets
        its smallest other non-zero cell suppressed too; repeated until stable."""
        changed = True
        while changed:
            changed = False
            for relation in self.system.relations:
                unknown = [c for c in relation.cells if self.unknown(c)]
                if len(unknown) == 1 and self.suppressed(unknown[0]):
                    partner = self.smallest(relation.cells)
                    if partner is not None:
                        self.hide(partner)
                        changed = True

    def first_unprotected(self) -> str | None:
        for cell in sorted(self.primary) + sorted(self.secondary):
            if cell in self.protected:
                continue
            if self.has_two_values(cell):
                self.protected.add(cell)
            else:
                return cell
        return None

    def remedy(self, cell: str) -> None:
        """Protect ``cell`` (see the module docstring for the order of the remedies)."""
        linked = self.linked_candidates(cell)
        same = [c for c in linked if table_of(c) == table_of(cell)]
        other = [c for c in linked if table_of(c) != table_of(cell)]
        for partner in same[:_TRIED]:
            if self.protects(cell, hidden=[partner]):
                self.hide(partner)
                return
        for small in self.small_counts_linked(cell)[:_TRIED]:
            if self.protects(cell, widened=small):
                self.widen(small)
                return
        wider = self.linked_candidates(cell, reach=_REACH)
        if self.hide_set(cell, [c for c in wider if table_of(c) == table_of(cell)]):
            return  # no single cell of the table would do: a few of them
        for partner in other[:_TRIED]:
            if self.protects(cell, hidden=[partner]):
                self.hide(partner)
                return
        if self.hide_set(cell, linked) or self.hide_set(cell, wider) or self.hide_set(
                cell, self.linked_candidates(cell, reach=len(self.system.values))):
            return
        small = next(iter(self.small_counts_linked(cell)), None)
        if small is None:
            raise DisclosureError(
                f"count {cell} cannot be protected: every cell related to it is fixed")
        self.widen(small)

    def hide_set(self, cell: str, pool: list[str]) -> bool:
        chosen = self.smallest_set(cell, pool)
        for partner in chosen:
            self.hide(partner)
        return bool(chosen)

    def smallest_set(self, cell: str, pool: list[str]) -> list[str]:
        """A set of ``pool`` whose hiding protects ``cell``, pruned so that no chunk of it
        can be shown again (largest counts offered back first): [] when even all of
        ``pool`` does not protect it."""
        if not pool or not self.protects(cell, hidden=pool):
            return []
        kept = sorted(pool, key=lambda c: (self.system.values[c], c))
        size = max(1, len(kept) // 2)
        while True:
            for start in range(0, len(kept), size):
                offered = kept[::-1][start:start + size]  # the largest first
                trial = [c for c in kept if c not in offered]
                if offered and trial and self.protects(cell, hidden=trial):
                    kept = trial
            if size == 1:
                return kept
            size = max(1, size // 2)

    def protects(self, cell: str, *, hidden: Iterable[str] = (),
                 widened: str | None = None) -> bool:
        """Would hiding ``hidden`` (or widening ``widened``) give ``cell`` two values?"""
        added = [c for c in hidden if c not in self.secondary]
        self.secondary.update(added)
        if widened is not None:
            self.widened.add(widened)
        self._version += 1
        try:
            return self.has_two_values(cell, trial=True)
        finally:
            self.secondary.difference_update(added)
            if widened is not None:
                self.widened.discard(widened)
            self._version += 1

    def linked_candidates(self, cell: str, *, reach: int = 0) -> list[str]:
        """Hideable cells of the relations linked to ``cell`` through unknown or hidden
        cells, the nearest relations first, each layer by value; with ``reach``, also
        through up to that many shown cells in a row (whose hiding would link further
        relations)."""
        out: list[str] = []
        frontier: dict[str, int] = {cell: 0}  # cell -> shown cells passed to reach it
        seen_relations: set[int] = set()
        best: dict[str, int] = {cell: 0}
        while frontier:
            relations = [(r, hops) for c, hops in frontier.items()
                         for r in self.by_cell.get(c, []) if id(r) not in seen_relations]
            seen_relations |= {id(r) for r, _ in relations}
            layer = sorted({c for r, _ in relations for c in r.cells
                            if self.candidate(c) and c not in out},
                           key=lambda c: (self.system.values[c], c))
            out += layer
            frontier = {}
            for r, hops in relations:
                for c in r.cells:
                    # never-displayed cells link relations too, even those a reader can
                    # compute now: hiding a shown cell next to them makes them unknown
                    free = self.unknown(c) or c in self.system.hidden
                    step = hops if free else hops + 1
                    if (free or (self.candidate(c) and step <= reach)) and (
                            c not in best or best[c] > step):
                        best[c] = frontier[c] = step
        return out

    def small_counts_linked(self, cell: str) -> list[str]:
        """Counts of 1-4 that may be widened to ``§6``: the totals of ``cell``'s relations
        first, then ``cell``, then the others linked to it."""
        relations = self.by_cell.get(cell, [])
        linked, _ = self.component(cell)
        order = [*(r.total for r in relations), cell, *sorted(linked)]
        seen: set[str] = set()
        out = []
        for c in order:
            if (c not in seen and c in self.primary and c not in self.widened
                    and c not in self.system.fixed):
                out.append(c)
            seen.add(c)
        return out

    # ---------------------------------------------------------------- the exact check

    def component(self, cell: str) -> tuple[list[str], list[Relation]]:
        """The unknown cells linked to ``cell`` through relations, and those relations."""
        cells, relations, queue, seen = [cell], [], [cell], {cell}
        seen_relations: set[int] = set()
        while queue:
            current = queue.pop()
            for relation in self.by_cell.get(current, []):
                if id(relation) in seen_relations:
                    continue
                seen_relations.add(id(relation))
                relations.append(relation)
                for other in relation.cells:
                    if other not in seen and self.unknown(other):
                        seen.add(other)
                        cells.append(other)
                        queue.append(other)
        return cells, relations

    def has_two_values(self, cell: str, *, trial: bool = False) -> bool:
        """Whether another whole value of ``cell`` fits everything a reader knows.

        A solution found for it is a proof for every cell it moves too: those are marked
        protected (unless this is a trial of a remedy, whose suppression is undone)."""
        if self.moves_freely(cell):
            return True
        program = self.program(cell)
        t = program.index[cell]
        value = self.system.values[cell]
        solution = None
        if value - 1 >= program.lower[t]:
            solution = program.solution(t, high=value - 1)
        if solution is None:
            solution = program.solution(t, low=value + 1)
        if solution is not None and not trial:
            moved = np.flatnonzero(solution != program.truth)
            self.protected |= {program.cells[i] for i in moved.tolist()}
        return solution is not None

    def program(self, cell: str) -> _Program:
        """The integer program of ``cell``'s component, shared by its cells until the
        suppression changes."""
        if self._programs[0] != self._version:
            self._programs = (self._version, {})
        cached = self._programs[1].get(cell)
        if cached is None:
            cells, relations = self.component(cell)
            cached = _Program(self, cells, relations)
            for c in cells:
                self._programs[1][c] = cached
        return cached

    def moves_freely(self, cell: str) -> bool:
        """A sufficient shortcut of the exact check: ``cell`` can move by one when each of
        its relations has a hidden cell of its own (in no other relation, not computable)
        to take the difference — up always, down only below its true value."""
        value = self.system.values[cell]
        low, high = self.bounds(cell)
        relations = self.by_cell.get(cell, [])
        for step in (-1, 1):
            if not low <= value + step <= high:
                continue
            if all(self._slack(relation, cell, step) for relation in relations):
                return True
        return False

    def _slack(self, relation: Relation, cell: str, step: int) -> bool:
        side = 1 if cell in relation.parts else -1
        for other in relation.cells:
            if (other == cell or other not in self.system.hidden or not self.unknown(other)
                    or len(self.by_cell.get(other, [])) != 1):
                continue
            other_side = 1 if other in relation.parts else -1
            move = -step * side * other_side  # keeps the relation balanced
            if move > 0 or self.system.values[other] + move >= 0:
                return True
        return False


class _Program:
    """The integer program of one component: its unknown cells, their bounds and the
    relations as equations ``a @ x = b`` (known cells moved to the right-hand side)."""

    def __init__(self, state: _State, cells: list[str], relations: list[Relation]) -> None:
        from scipy.sparse import coo_matrix

        self.cells = cells
        self.index = {c: i for i, c in enumerate(cells)}
        bounds = [state.bounds(c) for c in cells]
        self.lower = np.array([lo for lo, _ in bounds])
        self.upper = np.array([hi for _, hi in bounds])
        self.truth = np.array([state.system.values[c] for c in cells], dtype=float)
        rows, columns, signs, rhs = [], [], [], []
        for relation in relations:
            constant, terms = 0.0, {}
            for c, sign in ((relation.total, -1.0), *((p, 1.0) for p in relation.parts)):
                if c in self.index:
                    terms[self.index[c]] = terms.get(self.index[c], 0.0) + sign
                else:
                    constant += sign * state.system.values[c]
            terms = {i: v for i, v in terms.items() if v}
            if terms:
                for i, v in terms.items():
                    rows.append(len(rhs))
                    columns.append(i)
                    signs.append(v)
                rhs.append(-constant)
        self.b = np.array(rhs)
        self.a = coo_matrix((signs, (rows, columns)), shape=(len(rhs), len(cells))).tocsr()

    def _solve(self, objective: np.ndarray, lower: np.ndarray, upper: np.ndarray
               ) -> np.ndarray | None:
        """An integer solution within the bounds, checked exactly; None if there is none."""
        from scipy.optimize import Bounds, LinearConstraint, milp

        if not len(self.b):
            return np.clip(self.truth, lower, upper) if np.all(lower <= upper) else None
        result = milp(objective, integrality=np.ones(len(self.cells)),
                      bounds=Bounds(lower, upper),
                      constraints=LinearConstraint(self.a, self.b, self.b))
        if result.status != 0 or result.x is None:
            return None
        x = np.round(result.x)
        exact = np.all(x >= lower) and np.all(x <= upper) and np.array_equal(self.a @ x, self.b)
        return x if exact else None

    def solution(self, t: int, *, low: float | None = None, high: float | None = None
                 ) -> np.ndarray | None:
        """An integer solution with cell ``t`` in [low, high], or None."""
        lower, upper = self.lower.copy(), self.upper.copy()
        if low is not None:
            lower[t] = max(lower[t], low)
        if high is not None:
            upper[t] = min(upper[t], high)
        if lower[t] > upper[t]:
            return None
        return self._solve(np.zeros(len(self.cells)), lower, upper)
