"""Checking one policy document against the published JSON Schema.

jsonschema costs more to import than the rest of a lint run, so it is imported
here, on first use, and only the loader's validation path reaches this module
for policies that are not already known to be valid.

Each jsonschema error becomes a ``Problem`` (file, line, YAML path, one-line
message) worded for a person editing YAML rather than for a schema author.
"""

from __future__ import annotations

import difflib
import functools
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from paracle_guard.policy.problems import Problem, YamlPath
from paracle_guard.policy.yaml_lines import LocatedDocument

if TYPE_CHECKING:
    # jsonschema ships no type hints; the ignore stays quiet once types-jsonschema is installed.
    from jsonschema import ValidationError  # type: ignore[import-untyped,unused-ignore]
    from jsonschema.protocols import Validator  # type: ignore[import-untyped,unused-ignore]


def schema_problems(document: LocatedDocument, filename: str, schema_file: Path) -> list[Problem]:
    """Every way ``document`` breaks the schema, sorted by line; empty when it is valid."""
    validator = _validator(schema_file)
    errors = list(validator.iter_errors(document.data))
    # A value of the wrong type also fails its enum or pattern; saying so is noise.
    mistyped = {tuple(e.absolute_path) for e in errors if e.validator == "type"}
    problems: set[Problem] = set()
    for error in errors:
        if error.validator != "type" and tuple(error.absolute_path) in mistyped:
            continue
        problems.update(_problems(error, document, filename))
    return sorted(problems, key=lambda p: (p.line or 0, p.path_text, p.message))


@functools.lru_cache(maxsize=4)
def _validator(schema_file: Path) -> Validator:
    from jsonschema import Draft202012Validator  # type: ignore[import-untyped,unused-ignore]

    schema = json.loads(schema_file.read_text(encoding="utf-8"))
    # Formats are only annotations unless a checker is given: "date" and "regex"
    # must be enforced, or a bad expiry or pattern would reach pydantic unlocated.
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def _problems(error: ValidationError, document: LocatedDocument, filename: str) -> list[Problem]:
    path: YamlPath = tuple(error.absolute_path)
    kind = error.validator
    instance: Any = error.instance

    def at(where: YamlPath, message: str) -> Problem:
        return Problem(filename, document.line_of(where), where, message)

    if kind == "additionalProperties" and isinstance(instance, dict):
        known = list(error.schema.get("properties", {}))
        return [at((*path, key), _unknown_key(key, known)) for key in instance if key not in known]
    if kind == "required" and isinstance(instance, dict):
        return [
            at(path, f"missing required key {key!r}")
            for key in error.validator_value
            if key not in instance
        ]
    if "propertyNames" in error.absolute_schema_path:
        # The failing instance is the key itself; point at the key's own line.
        return [at((*path, instance), _describe(error))]
    return [at(path, _describe(error))]


def _describe(error: ValidationError) -> str:
    kind = error.validator
    instance: Any = error.instance
    if kind == "type":
        expected = error.validator_value
        names = [expected] if isinstance(expected, str) else expected
        return f"{_shown(instance)} is not of type {', '.join(repr(n) for n in names)}"
    if kind == "const":
        return f"expected {error.validator_value!r}, got {_shown(instance)}"
    if kind == "enum":
        choices = ", ".join(_shown(choice) for choice in error.validator_value)
        return f"{_shown(instance)} is not one of {choices}"
    if kind == "pattern":
        explained = error.schema.get("patternErrorMessage")
        if isinstance(explained, str):
            return f"{instance!r}: {explained[0].lower()}{explained[1:].rstrip('.')}"
    if kind == "format" and error.validator_value == "regex":
        try:
            re.compile(instance)
        except re.error as exc:
            return f"{instance!r} is not a valid regular expression: {exc}"
    if kind == "format" and error.validator_value == "date":
        return f"{instance!r} is not a date (expected YYYY-MM-DD)"
    return str(error.message)


def _shown(value: Any) -> str:
    """A value as the YAML author wrote it: null and true, not None and True."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


def _unknown_key(key: str, known: list[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1)
    if close:
        return f"unknown key {key!r} (did you mean {close[0]!r}?)"
    if known:
        return f"unknown key {key!r} (expected one of: {', '.join(known)})"
    return f"unknown key {key!r}"
