"""Reading a protocol folder into one tree, remembering which file each part came from.

The tree is the definition as written, before validation:

    protocol    protocol.yaml
    contract    delivery (contract/delivery.yaml), tables.<name> (contract/tables/<name>.yaml),
                vocabularies.<name>.codes.<code> (contract/vocabularies.csv, one row a code),
                measures (contract/measures.yaml), rules (contract/rules.csv),
                rejections (contract/rejections.csv), terminology, derived
    privacy     privacy.yaml
    monitoring  monitoring.yaml
    analysis    analysis/<version>.yaml, the primary plan

This is also the shape amendments patch (`amend.py`). `origins` maps a key path of the
tree to the file (and the CSV line) it was read from, so an error deep inside a table
names `protocol/contract/tables/patients.yaml: fields[3]…`.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ivig_platform.protocol.errors import Issue, Loc, Origin

#: Tree key → the protocol file it is read from (folders and CSVs are handled apart).
YAML_PARTS: dict[Loc, str] = {
    ("protocol",): "protocol.yaml",
    ("contract", "delivery"): "contract/delivery.yaml",
    ("contract", "terminology"): "contract/terminology.yaml",
    ("contract", "derived"): "contract/derived.yaml",
    ("privacy",): "privacy.yaml",
    ("monitoring",): "monitoring.yaml",
}
TABLES_DIR = "contract/tables"
MEASURES_FILE = "contract/measures.yaml"
VOCABULARIES_FILE = "contract/vocabularies.csv"
#: CSV files read as a list of rows: tree key → (file, columns).
CSV_LISTS: dict[Loc, tuple[str, tuple[str, ...]]] = {
    ("contract", "rules"): ("contract/rules.csv", ("rule", "applies_to", "description")),
    ("contract", "rejections"): ("contract/rejections.csv", ("code", "description")),
}
VOCABULARY_COLUMNS = ("vocabulary", "code", "label", "spellings")
ANALYSIS_DIR = "analysis"
AMENDMENTS_DIR = "amendments"
#: The separator of several spellings in one cell of vocabularies.csv.
SPELLING_SEPARATOR = "|"


@dataclass
class Source:
    """A protocol folder read into a tree (see the module docstring)."""

    root: Path
    tree: dict[str, Any] = field(default_factory=dict)
    origins: dict[Loc, Origin] = field(default_factory=dict)
    issues: list[Issue] = field(default_factory=list)

    def name(self, relative: str) -> str:
        """How messages name a file: `protocol/contract/measures.yaml`."""
        return f"{self.root.name}/{relative}"

    def put(self, key: Loc, value: Any, origin: Origin) -> None:
        node = self.tree
        for part in key[:-1]:
            node = node.setdefault(part, {})
        node[key[-1]] = value
        self.origins[key] = origin


def read_yaml(path: Path, shown: str, issues: list[Issue]) -> Any:
    """The parsed YAML file, or None with an issue when it is missing or not YAML."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        issues.append(Issue(shown, "", "file missing"))
        return None
    except (OSError, UnicodeDecodeError) as exc:
        issues.append(Issue(shown, "", f"cannot be read ({exc})"))
        return None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        issues.append(Issue(shown, where, f"not valid YAML: {problem}"))
        return None


def read_csv_rows(path: Path, shown: str, columns: tuple[str, ...],
                  issues: list[Issue]) -> list[tuple[int, dict[str, str]]] | None:
    """(line number, row) of a CSV file with exactly `columns`; None when unusable."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        issues.append(Issue(shown, "", "file missing"))
        return None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        records = list(reader)
    except csv.Error as exc:
        issues.append(Issue(shown, "", f"not a CSV file ({exc})"))
        return None
    if not records or tuple(records[0]) != columns:
        found = ",".join(records[0]) if records else "nothing"
        issues.append(Issue(shown, "line 1", f"the header must be {','.join(columns)}; "
                                             f"found {found}"))
        return None
    rows = []
    for line, record in enumerate(records[1:], start=2):
        if not any(cell.strip() for cell in record):
            continue
        if len(record) != len(columns):
            issues.append(Issue(shown, f"line {line}",
                                f"{len(record)} fields, the header has {len(columns)}"))
            continue
        rows.append((line, {c: v.strip() for c, v in zip(columns, record, strict=True)}))
    return rows


def _read_vocabularies(source: Source) -> None:
    shown = source.name(VOCABULARIES_FILE)
    rows = read_csv_rows(source.root / VOCABULARIES_FILE, shown, VOCABULARY_COLUMNS,
                         source.issues)
    vocabularies: dict[str, dict[str, Any]] = {}
    source.put(("contract", "vocabularies"), vocabularies, Origin(shown))
    first_line: dict[tuple[str, str], int] = {}
    for line, row in rows or []:
        name, code = row["vocabulary"], row["code"]
        if not name or not code:
            source.issues.append(Issue(shown, f"line {line}", "vocabulary and code are required"))
            continue
        if (name, code) in first_line:
            source.issues.append(Issue(
                shown, f"line {line}",
                f"code {code} of {name} is defined twice (also line {first_line[(name, code)]})",
            ))
            continue
        first_line[(name, code)] = line
        spellings = [s.strip() for s in row["spellings"].split(SPELLING_SEPARATOR) if s.strip()]
        codes = vocabularies.setdefault(name, {"codes": {}})["codes"]
        codes[code] = {"label": row["label"] or None, "spellings": spellings}
        source.origins[("contract", "vocabularies", name, "codes", code)] = Origin(
            shown, line=line)


def _read_csv_lists(source: Source) -> None:
    for key, (relative, columns) in CSV_LISTS.items():
        shown = source.name(relative)
        rows = read_csv_rows(source.root / relative, shown, columns, source.issues)
        source.put(key, [row for _, row in rows or []], Origin(shown))
        for index, (line, _) in enumerate(rows or []):
            source.origins[(*key, index)] = Origin(shown, line=line)


def _read_tables(source: Source) -> None:
    tables: dict[str, Any] = {}
    source.put(("contract", "tables"), tables, Origin(source.name(TABLES_DIR)))
    folder = source.root / TABLES_DIR
    paths = sorted(folder.glob("*.yaml")) if folder.is_dir() else []
    if not paths:
        source.issues.append(Issue(source.name(TABLES_DIR), "", "no table files (*.yaml)"))
    for path in paths:
        shown = source.name(f"{TABLES_DIR}/{path.name}")
        tables[path.stem] = read_yaml(path, shown, source.issues)
        source.origins[("contract", "tables", path.stem)] = Origin(shown)


def _read_measures(source: Source) -> None:
    shown = source.name(MEASURES_FILE)
    data = read_yaml(source.root / MEASURES_FILE, shown, source.issues)
    if data is not None and (not isinstance(data, dict) or set(data) != {"measures"}):
        source.issues.append(Issue(shown, "", "must hold one key, measures (a list)"))
        data = None
    source.put(("contract", "measures"), (data or {}).get("measures"),
               Origin(shown, ("measures",)))


def _read_primary_plan(source: Source) -> None:
    version = (source.tree.get("protocol") or {}).get("version")
    folder = source.root / ANALYSIS_DIR
    others = sorted(p.name for p in folder.glob("*.yaml")) if folder.is_dir() else []
    if not isinstance(version, str):
        return  # protocol.yaml's own error says why
    relative = f"{ANALYSIS_DIR}/{version}.yaml"
    for name in others:
        if name != f"{version}.yaml":
            source.issues.append(Issue(
                source.name(f"{ANALYSIS_DIR}/{name}"), "",
                f"only the primary plan ({version}.yaml) lives here; an amendment goes in "
                f"{AMENDMENTS_DIR}/ and names its base with `extends`",
            ))
    shown = source.name(relative)
    source.put(("analysis",), read_yaml(source.root / relative, shown, source.issues),
               Origin(shown))


def read_source(root: Path) -> Source:
    """Every file of the protocol folder `root`, read into one tree (not validated)."""
    source = Source(root)
    if not root.is_dir():
        source.issues.append(Issue(str(root), "", "not a protocol folder"))
        return source
    for key, relative in YAML_PARTS.items():
        shown = source.name(relative)
        source.put(key, read_yaml(root / relative, shown, source.issues), Origin(shown))
    _read_tables(source)
    _read_vocabularies(source)
    _read_measures(source)
    _read_csv_lists(source)
    _read_primary_plan(source)
    return source


def amendment_files(root: Path) -> list[Path]:
    """The amendment files in force in the protocol folder (`amendments/*.yaml`)."""
    folder = root / AMENDMENTS_DIR
    return sorted(folder.glob("*.yaml")) if folder.is_dir() else []
