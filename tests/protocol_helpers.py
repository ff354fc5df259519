"""Amended protocols for tests: the repository's protocol with amendment files in force."""

from __future__ import annotations

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
