"""An independent audit of the report's secondary suppression (protocol §6).

It reads what the report *displays* — every table cell that shows counts, parsed back from
its text (``12``, ``12 (15.4%)``, ``<5``, ``§6``, ``3/20``, ``rule <5; rule 7``) — takes the
relations the report declares (``report_counts``), and asks, as a reader would, which
values each hidden count can take: integer bounds by ``scipy.optimize.linprog`` with
integrality (minimum and maximum of the cell over every table consistent with what is
shown), or exhaustive enumeration for small systems. A count shown as ``<5`` or ``§6``
passes when it has at least two feasible values. It also checks that no percentage or
statistic is shown beside a hidden count.

Nothing here calls ``privacy.protect``'s machinery: the suppression is judged from the
rendered tables.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linprog

from ivig_platform.report.model import Section
from ivig_platform.report.privacy import CountSystem

TOKEN = re.compile(r"<5|§6|\d[\d,]*")
SMALL, HIDDEN = "<5", "§6"


def displayed(sections: Iterable[Section]) -> dict[str, str]:
    """Each count key -> its displayed token (``<5``, ``§6`` or the number's text).

    A key shown in several tables must be shown the same way everywhere."""
    shown: dict[str, str] = {}
    for section in sections:
        for table in section.tables:
            for row in table.rows:
                for cell in row.cells:
                    if not cell.keys:
                        continue
                    text = re.sub(r"\([^)]*\)", "", cell.text)  # drop "(15.4%)"
                    tokens = TOKEN.findall(text)
                    assert len(tokens) == len(cell.keys), (cell.text, cell.keys)
                    for key, token in zip(cell.keys, tokens, strict=True):
                        assert shown.setdefault(key, token) == token, (key, token, shown[key])
    return shown


@dataclass
class Reader:
    """What a reader knows: the shown values, the bounds of hidden ones, the relations."""

    known: dict[str, int]
    bounds: dict[str, tuple[int, float]]  # unknown cell -> (low, high)
    relations: list[tuple[str, tuple[str, ...]]]

    @classmethod
    def of(cls, system: CountSystem, shown: dict[str, str]) -> Reader:
        known, bounds = {}, {}
        for cell in system.values:
            token = shown.get(cell)
            if token == SMALL:
                bounds[cell] = (1, 4)
            elif token == HIDDEN:
                bounds[cell] = (1, math.inf)
            elif token is None:  # never displayed: any whole number
                bounds[cell] = (0, math.inf)
            else:
                known[cell] = int(token.replace(",", ""))
        reader = cls(known, bounds, [(r.total, r.parts) for r in system.relations])
        reader.solve_the_obvious()
        return reader

    def solve_the_obvious(self) -> None:
        """A relation with one unknown cell gives its value; repeated until stable."""
        changed = True
        while changed:
            changed = False
            for total, parts in self.relations:
                unknown = [c for c in (total, *parts) if c in self.bounds]
                if len(unknown) == 1:
                    (cell,) = unknown
                    value = (sum(self.known[p] for p in parts if p != cell)
                             if cell == total else self.known[total] - sum(
                                 self.known[p] for p in parts if p != cell))
                    self.known[cell] = value
                    del self.bounds[cell]
                    changed = True
        self._components: dict[str, list[str]] = {}
        parent = {c: c for c in self.bounds}

        def root(c: str) -> str:
            while parent[c] != c:
                parent[c] = parent[parent[c]]
                c = parent[c]
            return c

        for total, parts in self.relations:
            unknown = [c for c in (total, *parts) if c in self.bounds]
            for other in unknown[1:]:
                parent[root(other)] = root(unknown[0])
        for c in self.bounds:
            self._components.setdefault(root(c), []).append(c)
        self._root = {c: root(c) for c in self.bounds}

    def equations(self, cells: list[str]) -> tuple[np.ndarray, np.ndarray]:
        index = {c: i for i, c in enumerate(cells)}
        rows, rhs = [], []
        for total, parts in self.relations:
            members = (total, *parts)
            if not any(c in index for c in members):
                continue
            row, constant = np.zeros(len(cells)), 0.0
            for c, sign in ((total, -1.0), *((p, 1.0) for p in parts)):
                if c in index:
                    row[index[c]] += sign
                else:
                    constant += sign * self.known[c]
            rows.append(row)
            rhs.append(-constant)
        return np.array(rows).reshape(len(rows), len(cells)), np.array(rhs)

    def component(self, cell: str) -> list[str]:
        return sorted(self._components[self._root[cell]])

    def range_by_linprog(self, cell: str, truth: int) -> tuple[float, float]:
        """Integer bounds of ``cell`` (inf when unbounded): its minimum, and its maximum
        unless the minimum already differs from ``truth``."""
        if cell not in self.bounds:  # worked out by one relation: a single value
            return self.known[cell], self.known[cell]
        cells = self.component(cell)
        a, b = self.equations(cells)
        bounds = [(lo, None if hi == math.inf else hi) for lo, hi in
                  (self.bounds[c] for c in cells)]
        objective = np.zeros(len(cells))
        objective[cells.index(cell)] = 1.0
        out = []
        for sign in (1.0, -1.0):
            # the LP relaxation first: an integral optimum of it is the integer optimum
            for integrality in (None, np.ones(len(cells))):
                result = linprog(sign * objective, A_eq=a if len(b) else None,
                                 b_eq=b if len(b) else None, bounds=bounds,
                                 integrality=integrality, method="highs")
                if result.status != 0 or np.allclose(result.x, np.round(result.x), atol=1e-9):
                    break
            if result.status == 3:  # unbounded
                out.append(math.inf)
                continue
            assert result.status == 0, (cell, result.message)
            out.append(round(sign * result.fun))
            if out[0] < truth:
                return out[0], truth
        return out[0], out[1]

    def values_by_enumeration(self, cell: str, limit: int = 60) -> set[int]:
        """Every feasible value of ``cell``, each unknown tried from its low bound to
        ``limit`` (for small tables only)."""
        if cell not in self.bounds:
            return {self.known[cell]}
        cells = self.component(cell)
        a, b = self.equations(cells)
        ranges = [range(int(lo), int(min(hi, limit)) + 1) for lo, hi in
                  (self.bounds[c] for c in cells)]
        found = set()
        for combination in itertools.product(*ranges):
            x = np.array(combination, dtype=float)
            if not len(b) or np.array_equal(a @ x, b):
                found.add(combination[cells.index(cell)])
        return found


def audit(system: CountSystem, sections: list[Section], *, enumerate_small: bool = False
          ) -> dict[str, tuple[float, float]]:
    """Check every hidden count of ``sections`` against ``system``'s relations.

    Returns each hidden count's feasible range; raises AssertionError on a count with a
    single feasible value, a displayed value that contradicts the truth, a relation that
    does not hold, or a statistic shown beside a hidden count.
    """
    values = system.values
    for r in system.relations:
        assert values[r.total] == sum(values[p] for p in r.parts), r
    shown = displayed(sections)
    for key, token in shown.items():
        truth = values[key]
        if token == SMALL:
            assert 1 <= truth <= 4, (key, truth)
        elif token == HIDDEN:
            assert truth >= 1, (key, truth)
        else:
            assert int(token.replace(",", "")) == truth, (key, token, truth)
    no_statistic_beside_hidden(sections, shown)
    reader = Reader.of(system, shown)
    ranges = {}
    for key, token in sorted(shown.items()):
        if token not in (SMALL, HIDDEN):
            continue
        if enumerate_small:
            feasible = reader.values_by_enumeration(key)
            assert values[key] in feasible, (key, feasible)
            assert len(feasible) >= 2, f"{key} can only be {feasible}"
            ranges[key] = (min(feasible), max(feasible))
        else:
            low, high = reader.range_by_linprog(key, values[key])
            assert low <= values[key] <= high, (key, low, high)
            assert high > low, f"{key} is recoverable: it can only be {low}"
            ranges[key] = (low, high)
    return ranges


def no_statistic_beside_hidden(sections: Iterable[Section], shown: dict[str, str]) -> None:
    """A cell showing a hidden count shows no percentage, and the statistics of a row
    whose first count is hidden (n paired, events) are not shown as numbers."""
    for section in sections:
        for table in section.tables:
            for row in table.rows:
                counts = [c for c in row.cells if c.keys]
                for cell in counts:
                    if any(shown[k] in (SMALL, HIDDEN) for k in cell.keys):
                        assert "%" not in cell.text, (table.id, cell.text)
                if table.id in ("efficacy-table", "safety-table") and counts:
                    first = counts[0].keys[0]
                    if shown[first] in (SMALL, HIDDEN):
                        stats = [c.text for c in row.cells if c.kind == "num"]
                        assert set(stats) <= {"n<5", HIDDEN, "—"}, (table.id, stats)
