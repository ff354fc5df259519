"""`ivig protocol show` and `diff` as rich tables that fit 80 columns.

On a terminal the tables are drawn with rich's lines and colours; when the output goes to
a file or a CI log they are plain ASCII at 80 columns, so they stay readable and
greppable.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from rich import box
from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

from ivig_platform.protocol.diff import Change
from ivig_platform.protocol.document import field_rule, field_type, measure_rule
from ivig_platform.protocol.load import Protocol
from ivig_platform.protocol.plan import Condition, Plan
from ivig_platform.protocol.schema import number_text

WIDTH = 80


def console(file=None) -> Console:  # noqa: ANN001 - a text stream
    """A console of at most 80 columns; plain (no colour, ASCII boxes) off a terminal."""
    probe = Console(file=file)
    if probe.is_terminal:
        return Console(file=file, width=min(probe.width, WIDTH))
    return Console(file=file, width=WIDTH, no_color=True, highlight=False,
                   force_terminal=False)


def _table(title: str, columns: Iterable[str], rows: Iterable[Iterable[str]],
           plain: bool, first_width: int | None = None) -> Table:
    """A table; `first_width` keeps the first column that wide (keys that should not wrap)."""
    table = Table(title=Text(title, style="bold"), title_justify="left",
                  box=box.ASCII if plain else box.SIMPLE_HEAD, expand=first_width is not None)
    for i, column in enumerate(columns):
        if first_width is None:
            table.add_column(column, overflow="fold")
        elif i == 0:
            table.add_column(column, overflow="fold", width=first_width)
        else:  # the other columns share what is left
            table.add_column(column, overflow="fold", ratio=1)
    for row in rows:
        table.add_row(*(Text(cell.replace("`", "")) for cell in row))
    return table


def protocol_view(protocol: Protocol, plain: bool) -> Iterator[RenderableType]:
    """The whole protocol in force: header, contract tables, privacy, then each plan."""
    c = protocol.contract
    yield Text(f"{protocol.info.title}, version {protocol.version}", style="bold")
    yield Text(
        f"contract in force: {protocol.contract_version} "
        f"(fingerprint {protocol.contract_fingerprint[:12]}); plans in force: "
        f"{', '.join(p.version for p in protocol.plans)}; folder {protocol.root}"
    )
    for name in c.delivery.tables:
        t = c.table(name)
        rows = [
            (f.name + (" (optional)" if f.column_optional else ""), ", ".join(f.aliases),
             field_type(f), field_rule(c, f))
            for f in t.fields
        ]
        yield _table(f"table {name}: {t.description or ''}", ("column", "also", "type",
                                                              "rule"), rows, plain)
    vocab_rows = [
        (name, code, ", ".join(cat.spellings))
        for name, v in c.all_vocabularies().items() for code, cat in v.codes.items()
    ]
    yield _table("accepted values", ("vocabulary", "code", "also accepted"), vocab_rows, plain)
    measure_rows = [
        (m.name, m.unit, measure_rule(m),
         ", ".join(f"{u} ×{number_text(f)}" for u, f in m.units.factors.items()) if m.units
         else "")
        for m in c.measures
    ]
    yield _table("measures", ("measure", "unit", "value", "units"), measure_rows, plain)
    yield Text("row rules, in reporting order: " + ", ".join(c.rule_order))
    cells = protocol.privacy.small_cells
    fresh = protocol.monitoring.freshness
    yield Text(
        f"privacy: pseudonym {protocol.privacy.pseudonym.algorithm} of "
        f"{', '.join(protocol.privacy.pseudonym.of)}; counts 1–{cells.threshold - 1} shown "
        f"as {cells.mask}" + ("; secondary suppression" if cells.secondary_suppression else "")
        + f". freshness: warn after {fresh.warn_after_days} days, error after "
          f"{fresh.error_after_days}"
    )
    for plan in protocol.plans:
        yield from plan_view(plan, plain)


def _condition(c: Condition | None) -> str:
    return c.text() if c is not None else "all pairs"


def plan_view(plan: Plan, plain: bool) -> Iterator[RenderableType]:
    w = plan.windows
    header = f"plan {plan.version}: {plan.title}"
    if plan.extends:
        header += f" (extends {plan.extends}, effective {plan.effective_date})"
    yield Text(header, style="bold")
    yield _table(f"{plan.version} windows (days)", ("window", "rule"), [
        ("baseline", f"latest from index - {w.baseline_days_before} to index, inclusive"),
        ("post", f"nearest to last cycle + {w.post_target_days}, among {w.post_min_days} to "
                 f"{w.post_max_days} after it, inclusive; on a tie the {w.post_tie}"),
    ], plain)
    rows = [
        (m.name, m.short_label, str(m.decimals),
         f"{m.responder.responder.text()} among {_condition(m.responder.eligible)}"
         if m.responder else "none")
        for m in plan.measures
    ]
    yield _table(f"{plan.version} measures", ("measure", "label", "decimals", "responder"),
                 rows, plain)
    yield _table(f"{plan.version} subgroups", ("subgroup", "values"), [
        (s.name, ", ".join(v.value for v in s.values)) for s in plan.subgroups
    ], plain)
    s = plan.summaries
    wilcoxon = (f"Wilcoxon exact below {s.tests.wilcoxon.exact_below} pairs"
                if s.tests.wilcoxon else "no Wilcoxon test")
    yield Text(
        f"summaries: {s.difference}; SD ddof {s.sd_ddof}; quantiles type {s.quantile_type}; "
        f"{s.ci_method}-based {s.ci_level:.0%} CI; differences rounded to {s.round_decimals} "
        f"decimals; at least {s.min_pairs} pairs; "
        + ("paired t-test, " if s.tests.paired_t else "") + wilcoxon
        + f". concomitant therapy: {', '.join(plan.concomitant_therapy.classes)}"
    )


def diff_view(old: str, new: str, changes: list[Change], plain: bool) -> RenderableType:
    if not changes:
        return Text(f"{new} changes nothing against {old}")
    width = min(max(len(c.key) for c in changes), WIDTH // 2)
    return _table(f"{old} → {new}: {len(changes)} change(s)", ("key", old, new),
                  [(c.key, c.old, c.new) for c in changes], plain, first_width=width)
