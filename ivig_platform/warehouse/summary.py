"""What a refresh did, in numbers fit for a Prefect artifact or a terminal.

Deliveries are counted by their final state (ivig_platform/states.py): a delivery the
quality gate held back is counted once, as held back, not also as rejected.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ivig_platform.landing.land import Manifest
from ivig_platform.states import ACCEPTED, HELD_BACK, REJECTED, SUPERSEDED, state_column
from ivig_platform.warehouse.build import BuildScope, delivery_status


def build_words(build: dict) -> str:
    """How a file was built (`BuildScope.as_dict`): the sites an incremental build rebuilt,
    or why it was built in full. The CLI's last line and the summary artifact both say it."""
    if build.get("mode") == "incremental":
        count = len(build["sites"])
        return f"built incrementally ({count} changed site{'s' * (count != 1)})"
    return f"built in full ({build.get('reason') or 'reason not recorded'})"


@dataclass
class RefreshSummary:
    run_id: str
    published: str
    deliveries: list[dict] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    waiting: list[str] = field(default_factory=list)
    deferred: list[str] = field(default_factory=list)
    checks: dict[str, dict[str, int]] = field(default_factory=dict)
    inbox_issues: list[dict[str, str]] = field(default_factory=list)  # folder, reason
    retired: list[str] = field(default_factory=list)  # re-keying: superseded, no inbox files
    relanded: list[str] = field(default_factory=list)  # re-keying: landed with the new key
    build: dict = field(default_factory=dict)  # BuildScope.as_dict: full or incremental, why

    def count(self, state: str) -> int:
        return sum(1 for d in self.deliveries if d["state"] == state)

    @property
    def rows_landed(self) -> int:
        return sum(d["rows_landed"] for d in self.deliveries if d["state"] == ACCEPTED)

    @property
    def rows_quarantined(self) -> int:
        return sum(d["rows_quarantined"] for d in self.deliveries if d["state"] == ACCEPTED)

    def delivery_rows(self) -> list[dict]:
        return [
            {k: d[k] for k in ("site_id", "delivery_id", "state", "reason", "rows_landed",
                               "rows_quarantined", "source_rows")}
            for d in self.deliveries
        ]

    def markdown(self) -> str:
        lines = [
            f"# Refresh {self.run_id}",
            "",
            f"Published `{self.published}`.",
            "",
            *([f"The file was {build_words(self.build)}.", ""] if self.build else []),
            "| deliveries | accepted | superseded | held_back | rejected "
            "| rows landed (accepted) | rows quarantined (accepted) |",
            "|---:|---:|---:|---:|---:|---:|---:|",
            f"| {len(self.deliveries)} | {self.count(ACCEPTED)} | {self.count(SUPERSEDED)} "
            f"| {self.count(HELD_BACK)} | {self.count(REJECTED)} | {self.rows_landed} "
            f"| {self.rows_quarantined} |",
            "",
            "| quality checks | run | failed |",
            "|---|---:|---:|",
            *(f"| {severity} | {c['run']} | {c['failed']} |"
              for severity, c in self.checks.items()),
            "",
            "| stage | seconds |",
            "|---|---:|",
            *(f"| {k} | {v:.2f} |" for k, v in self.timings.items()),
        ]
        if self.waiting or self.deferred:
            lines += ["", "## Not taken this run", ""]
            lines += [f"- `{label}`: still being written" for label in self.waiting]
            lines += [f"- `{label}`: transient error after retries" for label in self.deferred]
        unused = [d for d in self.deliveries if d["state"] in (HELD_BACK, REJECTED)]
        if unused:
            lines += ["", "## Deliveries held back or rejected", ""]
            lines += [f"- `{d['site_id']}/{d['delivery_id']}` {d['state']}: {d['reason']}"
                      for d in unused]
        if self.inbox_issues:
            lines += ["", "## Inbox folders that are not sites (not read)", ""]
            lines += [f"- `{i['folder']}`: {i['reason']}" for i in self.inbox_issues]
        if self.relanded or self.retired:
            lines += ["", "## Re-keying", "",
                      f"{len(self.relanded)} deliveries landed again with the new key."]
            lines += [f"- `{label}`: superseded and without inbox files, moved out of the "
                      "landing to `retired/` (not re-keyed)" for label in self.retired]
        return "\n".join(lines)

    def as_dict(self) -> dict:
        return {
            "run_id": self.run_id,
            "published": self.published,
            "accepted": self.count(ACCEPTED),
            "superseded": self.count(SUPERSEDED),
            "rejected": self.count(REJECTED),  # by landing; held back ones are `held_back`
            "rows_landed": self.rows_landed,
            "rows_quarantined": self.rows_quarantined,
            "timings": self.timings,
            "held_back": self.count(HELD_BACK),
            "checks": self.checks,
            "waiting": self.waiting,
            "deferred": self.deferred,
            "deliveries": self.delivery_rows(),
            "inbox_issues": self.inbox_issues,
            "retired": self.retired,
            "relanded": self.relanded,
            "build": self.build,
        }


def summarise(run_id: str, manifests: list[Manifest], published: Path | str,
              timings: dict[str, float], waiting: list[str] | None = None,
              deferred: list[str] | None = None,
              held_back: dict[tuple[str, str], str] | None = None,
              gates: list | None = None, inbox_issues: list[tuple[str, str]] | None = None,
              retired: list[str] | None = None,
              relanded: list[str] | None = None,
              scope: BuildScope | None = None) -> RefreshSummary:
    status = delivery_status(manifests, held_back)
    checks = {"error": [0, 0], "warn": [0, 0]}
    for gate in gates or []:
        for severity in checks:
            checks[severity][0] += gate.counts[severity]["checks"]
            checks[severity][1] += gate.counts[severity]["failed"]
    return RefreshSummary(
        run_id=run_id,
        published=str(published),
        deliveries=status.with_columns(state_column(status))
        .drop("landed_at", "delivery_date").to_dicts(),
        timings={k: round(v, 3) for k, v in timings.items()},
        waiting=waiting or [],
        deferred=deferred or [],
        checks={k: {"run": v[0], "failed": v[1]} for k, v in checks.items()},
        inbox_issues=[{"folder": f, "reason": r} for f, r in inbox_issues or []],
        retired=retired or [],
        relanded=relanded or [],
        build=scope.as_dict() if scope is not None else {},
    )
