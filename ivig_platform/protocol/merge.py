"""Deep merge of an amendment into the definition it amends.

Semantics (the README's "Amending the protocol" says the same to authors):

- a mapping merges key by key: keys the amendment names are merged (or added), the
  others are inherited;
- a list of items that have a name (`KEYED_LISTS`: a table's fields, the measures, the
  rules, a plan's measures and subgroups) merges item by item, matched by that name: a
  named item is merged into the item of that name, a new name is appended; items are
  never removed, and the order of the inherited ones stays;
- every other list, and every scalar, is replaced as a whole (so a new alias is added by
  writing the full list of aliases).

The merge records, for every key path the amendment set, where in the amendment it was
written, so a validation error of the merged definition points into the amendment.
"""

from __future__ import annotations

import copy
from typing import Any

from ivig_platform.protocol.errors import Issue, Loc, Origin

#: Lists merged by the name of their items (`*` matches any one key).
KEYED_LISTS: dict[tuple[str, ...], str] = {
    ("contract", "tables", "*", "fields"): "name",
    ("contract", "measures"): "name",
    ("contract", "rules"): "rule",
    ("contract", "rejections"): "code",
    ("analysis", "measures"): "name",
    ("analysis", "subgroups"): "name",
}


def list_key(path: Loc) -> str | None:
    """The name key of the items of the list at `path`, if its items are merged by name."""
    for pattern, key in KEYED_LISTS.items():
        if len(pattern) == len(path) and all(p in ("*", q) for p, q in zip(pattern, path,
                                                                          strict=True)):
            return key
    return None


def merge(base: Any, patch: Any, path: Loc, origins: dict[Loc, Origin], file: str,
          issues: list[Issue], patch_path: Loc | None = None) -> Any:
    """`base` with `patch` merged in (neither is changed); records origins and issues.

    `path` is the key path of `base` in the whole definition; `patch_path` the key path of
    `patch` in the amendment file (the same by default).
    """
    patch_path = path if patch_path is None else patch_path
    if isinstance(base, dict) and isinstance(patch, dict):
        merged = dict(base)
        for key, value in patch.items():
            if key in base:
                merged[key] = merge(base[key], value, (*path, key), origins, file, issues,
                                    (*patch_path, key))
            else:
                merged[key] = copy.deepcopy(value)
                origins[(*path, key)] = Origin(file, (*patch_path, key))
        return merged
    key = list_key(path)
    if key is not None and isinstance(base, list) and isinstance(patch, list):
        return _merge_named(base, patch, key, path, origins, file, issues, patch_path)
    origins[path] = Origin(file, patch_path)
    return copy.deepcopy(patch)


def _merge_named(base: list[Any], patch: list[Any], key: str, path: Loc,
                 origins: dict[Loc, Origin], file: str, issues: list[Issue],
                 patch_path: Loc) -> list[Any]:
    merged = list(base)
    position = {item.get(key): i for i, item in enumerate(base) if isinstance(item, dict)}
    for j, item in enumerate(patch):
        name = item.get(key) if isinstance(item, dict) else None
        if not isinstance(name, str):
            issues.append(Issue(file, Origin(file, (*patch_path, j)).where(),
                                f"an item of this list must name its {key} (items are "
                                f"matched by {key})"))
            continue
        if name in position:
            i = position[name]
            merged[i] = merge(base[i], item, (*path, i), origins, file, issues,
                              (*patch_path, j))
        else:
            position[name] = len(merged)
            origins[(*path, len(merged))] = Origin(file, (*patch_path, j))
            merged.append(copy.deepcopy(item))
    return merged
