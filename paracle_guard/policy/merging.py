"""Merging a policy's ``extends`` chain, and where each merged value came from.

Mappings merge key by key and lists replace, except the lists in
``ACCUMULATED``, which add up: a team's waivers must not erase the
organisation's. Every value keeps the file and line it came from, so an error
found after merging (``pydantic_problems``) still names ``file:line``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from paracle_guard.errors import PolicyError
from paracle_guard.policy.problems import Problem, YamlPath, nearest

if TYPE_CHECKING:
    from pydantic import ValidationError

# Lists that add up through `extends` instead of replacing the inherited list:
# a team's waivers must not erase the organisation's.
ACCUMULATED = ("exceptions", "custom_rules")


@dataclass
class Merged:
    """A document merged from several files, and which file and line each value came from."""

    data: dict[str, Any] = field(default_factory=dict)
    origins: dict[YamlPath, tuple[str, int]] = field(default_factory=dict)

    def origin(self, path: YamlPath) -> tuple[str, int] | None:
        return nearest(self.origins, path)


def merge(base: Merged, over: Merged) -> Merged:
    """``over`` applied on ``base``: mappings merge, lists replace, but waivers and
    custom rules add up."""
    data = dict(base.data)
    origins = dict(base.origins)
    for key, value in over.data.items():
        if key in ACCUMULATED and isinstance(value, list):
            data[key] = _accumulate(key, list(data.get(key) or []), value, over, origins)
        else:
            data[key] = _deep_merge(data.get(key), value)
    # Items of accumulated lists were placed (and their origins moved) by _accumulate.
    origins.update(
        (path, origin)
        for path, origin in over.origins.items()
        if len(path) < 2 or path[0] not in ACCUMULATED
    )
    return Merged(data, origins)


def _accumulate(
    key: str,
    items: list[Any],
    added: list[Any],
    over: Merged,
    origins: dict[YamlPath, tuple[str, int]],
) -> list[Any]:
    """Append ``added`` to ``items``, moving each item's origins to its new position."""
    for index, item in enumerate(added):
        if item in items:
            continue  # the same waiver reached twice (diamond extends) is one waiver
        if key == "custom_rules" and isinstance(item, dict):
            _check_rule_clash(item, index, over.origin((key, index)), items, origins)
        position = len(items)
        items.append(item)
        origins.update(
            ((key, position, *path[2:]), origin)
            for path, origin in over.origins.items()
            if path[:2] == (key, index)
        )
    return items


def _check_rule_clash(
    rule: dict[str, Any],
    index: int,
    here: tuple[str, int] | None,
    items: list[Any],
    origins: dict[YamlPath, tuple[str, int]],
) -> None:
    """Two different custom rules with one code or name would make waivers ambiguous."""
    for position, other in enumerate(items):
        if not isinstance(other, dict):
            continue
        for attribute in ("code", "name"):
            value = rule.get(attribute)
            if value is None or other.get(attribute) != value:
                continue
            there = origins.get(("custom_rules", position))
            first = f"{there[0]}:{there[1]}" if there is not None else "an extended policy"
            file, line = here if here is not None else ("policy", None)
            message = f"{attribute} {value!r} is already used by the custom rule at {first}"
            raise PolicyError(str(Problem(file, line, ("custom_rules", index), message)))


def _deep_merge(base: Any, over: Any) -> Any:
    if isinstance(base, dict) and isinstance(over, dict):
        merged = dict(base)
        for key, value in over.items():
            merged[key] = _deep_merge(base.get(key), value)
        return merged
    return over


def pydantic_problems(
    exc: ValidationError, merged: Merged, data: dict[str, Any], display: str
) -> list[Problem]:
    """Pydantic's errors at the file and line each value came from (``display``: the
    policy being loaded, for values no file gave)."""
    problems = []
    for error in exc.errors():
        path = _existing_prefix(tuple(error["loc"]), data)
        origin = merged.origin(path)
        file, line = origin if origin is not None else (display, None)
        message = error["msg"]
        if error["type"] == "value_error":  # a model's own check: its words, not pydantic's
            message = str(error.get("ctx", {}).get("error", message))
        if "input" in error and not isinstance(error["input"], (dict, list)):
            message += f" (got {error['input']!r})"
        problems.append(Problem(file, line, path, message[:1].lower() + message[1:]))
    return problems


def _existing_prefix(loc: tuple[Any, ...], data: Any) -> YamlPath:
    """The part of a pydantic error location that names real keys (not union branch tags)."""
    path: list[str | int] = []
    for part in loc:
        in_mapping = isinstance(data, dict) and part in data
        in_list = isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data)
        if not (in_mapping or in_list):
            break
        data = data[part]
        path.append(part)
    return tuple(path)
