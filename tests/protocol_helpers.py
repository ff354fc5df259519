"""Amended protocols for tests: the repository's protocol with amendment files in force."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

from ivig_platform.protocol.load import Protocol, load_protocol


def amendment_file(folder: Path, name: str, text: str) -> Path:
    """Write an amendment (YAML, dedented) to `folder/name` and return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def amended(folder: Path, text: str, name: str = "amendment.yaml") -> Protocol:
    """The repository protocol with one amendment (written to `folder`) in force."""
    return load_protocol().with_amendments([amendment_file(folder, name, text)])


#: The analysis-plan amendment of issue 11, word for word: the post value at six months.
V2 = """\
    version: v2
    extends: v1
    effective_date: 2026-12-01
    rationale: post-treatment value at six months instead of three
    analysis:
      windows:
        baseline_days_before: 60
        post_target_days: 180
        post_min_days: 120
        post_max_days: 240
"""

#: A contract amendment adding a measure with its range and units (issue 11: "a new measure
#: with its range and unit"), and a plan that analyses it beside the primary measures.
HAND_GRIP = """\
    version: v2-grip
    extends: v1
    effective_date: 2026-12-01
    rationale: hand grip strength added to the assessments
    contract:
      measures:
        - name: hand_grip
          title: Hand grip strength
          description: Dynamometer, dominant hand, best of three
          spellings: [fuerza_prension]
          unit: kg
          higher_is_better: true
          value: {type: number, minimum: 0, maximum: 90}
          units:
            required: true
            factors: {kg: 1, lb: 0.45359237}
    analysis:
      measures:
        - name: hand_grip
          label: Hand grip strength
          short_label: Grip ({unit})
          axis_title: Grip, {unit}
          decimals: 1
          plot: from_zero
"""


#: A protocol whose every kind of number differs from the repository's (issue 11, point 2):
#: (file under protocol/, text as written, text in the modified protocol). Each replacement
#: must hit exactly once, so a reworded protocol file fails loudly instead of silently
#: leaving a number unchanged.
ALL_DIFFER: tuple[tuple[str, str, str], ...] = (
    # a measure range and a dose limit
    ("contract/measures.yaml", "value: {type: number, minimum: 0, maximum: 2.83}",
     "value: {type: number, minimum: 0, maximum: 3.5}"),
    ("contract/tables/ivig_cycles.yaml", "exclusiveMinimum: 0, maximum: 400}",
     "exclusiveMinimum: 0, maximum: 300}"),
    # a spelling: "efecto_adverso" dropped, "reaccion_adversa" accepted instead
    ("contract/vocabularies.csv", "ivig_stop_reason,adverse_event,adverse event,efecto_adverso",
     "ivig_stop_reason,adverse_event,adverse event,reaccion_adversa"),
    # the §7 windows and target
    ("analysis/v1.yaml", "baseline_days_before: 90", "baseline_days_before: 45"),
    ("analysis/v1.yaml", "post_target_days: 90", "post_target_days: 150"),
    ("analysis/v1.yaml", "post_min_days: 30", "post_min_days: 120"),
    ("analysis/v1.yaml", "post_max_days: 180", "post_max_days: 240"),
    # the mRSS responder threshold
    ("analysis/v1.yaml", 'responder: {quantity: decrease, op: ">=", value: 5}',
     'responder: {quantity: decrease, op: ">=", value: 3}'),
    ("analysis/v1.yaml", '"baseline - post >= 5 points (mRSS MCID); denominator: n_paired"',
     '"baseline - post >= 3 points; denominator: n_paired"'),
    # the §6 small-cell threshold
    ("privacy.yaml", "threshold: 5", "threshold: 3"),
)


def protocol_copy(target: Path, changes: tuple[tuple[str, str, str], ...] = ALL_DIFFER
                  ) -> Path:
    """A copy of the repository's protocol folder at `target` with `changes` applied."""
    from ivig_platform.protocol.load import REPOSITORY_ROOT

    shutil.copytree(REPOSITORY_ROOT, target)
    for relative, before, after in changes:
        path = target / relative
        text = path.read_text(encoding="utf-8")
        assert text.count(before) == 1, f"{relative}: {before!r} is not there exactly once"
        path.write_text(text.replace(before, after), encoding="utf-8")
    return target
