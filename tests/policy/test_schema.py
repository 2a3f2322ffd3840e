"""The published JSON Schema and the pydantic models describe one format.

The schema is written by hand (it carries titles, descriptions and editor
messages); these tests walk it beside the models so that neither can drift:
same keys, types, enums, constraints and defaults, everywhere.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import typing
from pathlib import Path
from typing import Any

import pydantic
import pytest
from jsonschema import Draft202012Validator  # type: ignore[import-untyped,unused-ignore]
from pydantic_core import to_jsonable_python

from paracle_guard.policy.loader import SCHEMA_FILE, builtin_policy_names
from paracle_guard.policy.models import Policy
from paracle_guard.policy.yaml_lines import load_located

REPO = Path(__file__).resolve().parents[2]
SCHEMA: dict[str, Any] = json.loads((REPO / "schemas" / "policy.schema.json").read_text())

# Filled in by the loader, never read from a file.
LOADER_FIELDS = {"source", "sha256"}
# A file must say these; in code, Policy() may leave them to their defaults.
REQUIRED_IN_FILE = {("apiVersion",), ("kind",)}
# The loader's default (the file's name) is not the model's ("unnamed").
LOADER_DEFAULTS = {("metadata", "name")}
# Keywords that change what validates; titles, descriptions and messages do not.
CONSTRAINTS = (
    "format",
    "pattern",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "minLength",
)


def _shape(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """What a schema node accepts, in one normal form for both schemas."""
    while "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[-1]]
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    if "anyOf" in node and all(set(branch) == {"required"} for branch in node["anyOf"]):
        # "at least one of these keys" (an authz exemption names a tls_user or a label).
        alternatives = sorted(sorted(branch["required"]) for branch in node["anyOf"])
        shape = _shape({k: v for k, v in node.items() if k != "anyOf"}, defs)
        return {**shape, "anyOfRequired": alternatives}
    if "anyOf" in node:
        # pydantic writes `X | None` as anyOf [X, null]; the hand schema as a type list.
        branches = [_shape(branch, defs) for branch in node["anyOf"]]
        merged: dict[str, Any] = {"type": sorted({t for b in branches for t in b["type"]})}
        for branch in branches:
            merged.update({k: v for k, v in branch.items() if k != "type"})
        if "null" in merged["type"] and "enum" in merged:
            merged["enum"] = sorted({*merged["enum"], None}, key=repr)
        return merged
    if "patternProperties" in node:
        # pydantic writes dict[Constrained, V] as patternProperties {pattern: V}; the
        # hand schema as propertyNames + additionalProperties, which also refuses
        # keys that do not match.
        ((pattern, value),) = node["patternProperties"].items()
        node = {**node, "propertyNames": {"pattern": pattern}, "additionalProperties": value}
        del node["patternProperties"]
    types = node.get("type", [])
    out: dict[str, Any] = {"type": sorted([types] if isinstance(types, str) else types)}
    if "const" in node:
        out["enum"] = [node["const"]]
    if "enum" in node:
        out["enum"] = sorted(node["enum"], key=repr)
    out.update({k: node[k] for k in CONSTRAINTS if k in node})
    if "properties" in node:
        out["properties"] = {k: _shape(v, defs) for k, v in node["properties"].items()}
        out["required"] = sorted(node.get("required", []))
    if "items" in node:
        out["items"] = _shape(node["items"], defs)
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        out["additionalProperties"] = _shape(extra, defs)
    elif extra is False:
        out["additionalProperties"] = False
    if "propertyNames" in node:
        out["propertyNames"] = _shape(node["propertyNames"], defs)
    return out


def _model_shape() -> dict[str, Any]:
    generated = Policy.model_json_schema(mode="validation")
    for name in LOADER_FIELDS:
        del generated["properties"][name]
    return _shape(generated, generated.get("$defs", {}))


def _hand_shape() -> dict[str, Any]:
    shape = _shape(copy.deepcopy(SCHEMA), SCHEMA.get("$defs", {}))
    assert shape["required"] == sorted(path[0] for path in REQUIRED_IN_FILE)
    shape["required"] = []
    return shape


def test_schema_is_valid_draft_2020_12() -> None:
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert SCHEMA["$id"]
    Draft202012Validator.check_schema(SCHEMA)


def test_packaged_schema_is_the_published_one() -> None:
    assert SCHEMA_FILE.read_bytes() == (REPO / "schemas" / "policy.schema.json").read_bytes()


def test_schema_and_models_accept_the_same_shape() -> None:
    assert _hand_shape() == _model_shape()


def _walk_hand(node: dict[str, Any], path: tuple[str, ...]) -> list[tuple[tuple[str, ...], str]]:
    """Every place in the hand schema missing a title or description, or an open object."""
    missing = []
    for key in ("title", "description"):
        if not node.get(key):
            missing.append((path, key))
    if node.get("type") == "object" and "properties" in node:
        if node.get("additionalProperties") is not False:
            missing.append((path, "additionalProperties: false"))
        for name, child in node["properties"].items():
            missing.extend(_walk_hand(child, (*path, name)))
    for keyword in ("items", "additionalProperties"):
        child = node.get(keyword)
        if isinstance(child, dict):
            missing.extend(_walk_hand(child, (*path, f"<{keyword}>")))
    return missing


def test_every_key_has_a_title_and_description_and_is_closed() -> None:
    assert _walk_hand(SCHEMA, ()) == []


def _nested_models(annotation: Any) -> list[type[pydantic.BaseModel]]:
    found = []
    for arg in typing.get_args(annotation):
        if isinstance(arg, type) and issubclass(arg, pydantic.BaseModel):
            found.append(arg)
    return found


def _default_mismatches(
    model: type[pydantic.BaseModel], node: dict[str, Any], path: tuple[str, ...]
) -> list[str]:
    problems = []
    fields = {
        (info.alias or name): info
        for name, info in model.model_fields.items()
        if name not in LOADER_FIELDS
    }
    properties = node["properties"]
    if set(fields) != set(properties):
        problems.append(f"{'.'.join(path) or '<top>'}: {sorted(fields)} != {sorted(properties)}")
    for key, info in fields.items():
        here = (*path, key)
        child = properties.get(key, {})
        default = None if info.is_required() else info.get_default(call_default_factory=True)
        if isinstance(default, pydantic.BaseModel):
            if "default" in child:
                problems.append(f"{'.'.join(here)}: a section gives no default of its own")
            problems.extend(_default_mismatches(type(default), child, here))
        elif info.is_required() or here in REQUIRED_IN_FILE or here in LOADER_DEFAULTS:
            if "default" in child:
                problems.append(f"{'.'.join(here)}: has a default in the schema only")
        elif child.get("default", "<missing>") != to_jsonable_python(default):
            problems.append(
                f"{'.'.join(here)}: schema default {child.get('default', '<missing>')!r} "
                f"!= model default {to_jsonable_python(default)!r}"
            )
        for inner in _nested_models(info.annotation):
            container = child.get("items") or child.get("additionalProperties")
            problems.extend(_default_mismatches(inner, container, (*here, "*")))
    return problems


def test_schema_and_models_have_the_same_defaults() -> None:
    assert _default_mismatches(Policy, SCHEMA, ()) == []


@pytest.mark.parametrize("name", builtin_policy_names())
def test_builtin_policies_validate(name: str) -> None:
    path = REPO / "policies" / f"{name}.yaml"
    document = load_located(path.read_text(encoding="utf-8"), str(path)).data
    validator = Draft202012Validator(SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER)
    assert list(validator.iter_errors(document)) == []
    Policy.model_validate(document)


MINIMAL = {"apiVersion": "paracle-guard/v1", "kind": "Policy"}

BAD_POLICIES: list[dict[str, Any]] = [
    {"apiVersion": "paracle-guard/v2", "kind": "Policy"},
    {"apiVersion": "paracle-guard/v1", "kind": "Rule"},
    {**MINIMAL, "unknown": 1},
    {**MINIMAL, "metadata": {"name": ""}},
    {**MINIMAL, "metadata": {"owner": "me"}},
    {**MINIMAL, "extends": [""]},
    {**MINIMAL, "extends": "sandbox"},
    {**MINIMAL, "fail_on": "off"},
    {**MINIMAL, "controls": {"user": {"allowed_uids": ["abc"]}}},
    {**MINIMAL, "controls": {"user": {"allowed_uids": [-1]}}},
    {**MINIMAL, "controls": {"user": {"allow_rot": True}}},
    {**MINIMAL, "controls": {"root_filesystem": {"writable_paths": ["tmp"]}}},
    {**MINIMAL, "controls": {"capabilities": {"allowed_add": ["net_admin"]}}},
    {**MINIMAL, "controls": {"packages": {"deny": {"vim": "fatal"}}}},
    {**MINIMAL, "controls": {"packages": {"deny": {"vim tiny": "error"}}}},
    {**MINIMAL, "controls": {"packages": {"max_installed": -1}}},
    {**MINIMAL, "controls": {"base_image": {"allowed_registries": ["docker io"]}}},
    {**MINIMAL, "controls": {"secrets": {"env_name_patterns": ["("]}}},
    {**MINIMAL, "controls": {"resources": {"memory": "1.5 GB"}}},
    {**MINIMAL, "controls": {"resources": {"cpus": 0}}},
    {**MINIMAL, "controls": {"resources": {"pids": 0}}},
    {**MINIMAL, "controls": {"network": {"mode": "container:db"}}},
    {**MINIMAL, "rules": {"PG 101": {"severity": "off"}}},
    {**MINIMAL, "rules": {"PG101": {"severity": "fatal"}}},
    {**MINIMAL, "rules": {"PG101": {"level": "error"}}},
    {**MINIMAL, "exceptions": [{"rule": "PG101"}]},
    {**MINIMAL, "exceptions": [{"rule": "PG101", "reason": " "}]},
    {**MINIMAL, "exceptions": [{"rule": "PG101", "reason": "r", "expires": "2027-02-30"}]},
    {**MINIMAL, "exceptions": [{"rule": "PG101", "reason": "r", "target": ""}]},
    {**MINIMAL, "custom_rules": [{"code": "x1", "name": "x", "message": "m", "pattern": "a"}]},
    {**MINIMAL, "custom_rules": [{"code": "X1", "name": "Bad", "message": "m", "pattern": "a"}]},
    {**MINIMAL, "custom_rules": [{"code": "X1", "name": "x", "message": "m", "pattern": "["}]},
    {**MINIMAL, "custom_rules": [{"code": "X1", "name": "x", "message": "", "pattern": "a"}]},
    {
        **MINIMAL,
        "custom_rules": [
            {"code": "X1", "name": "x", "message": "m", "pattern": "a", "instruction": "RNU"}
        ],
    },
]


@pytest.mark.parametrize("document", BAD_POLICIES, ids=lambda d: json.dumps(d)[55:110])
def test_bad_policies_fail_schema_and_models(document: dict[str, Any]) -> None:
    validator = Draft202012Validator(SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER)
    assert list(validator.iter_errors(document)), "the schema accepted it"
    with pytest.raises(pydantic.ValidationError):
        Policy.model_validate(document)


GOOD_POLICIES: list[dict[str, Any]] = [
    MINIMAL,
    {**MINIMAL, "rules": {"PG503": {"severity": "off"}, "missing-healthcheck": {}}},
    {**MINIMAL, "controls": {"resources": {"memory": None, "cpus": 0.5, "pids": None}}},
    {**MINIMAL, "controls": {"capabilities": {"allowed_add": ["CAP_NET_RAW", "NET_ADMIN"]}}},
    {**MINIMAL, "controls": {"packages": {"deny": {"netcat*": "warning", "curl": "off"}}}},
    {**MINIMAL, "exceptions": [{"rule": "PG101", "reason": "r", "expires": "2027-06-30"}]},
    {
        **MINIMAL,
        "custom_rules": [
            {
                "code": "ACME101",
                "name": "no-apt-upgrade",
                "message": "m",
                "pattern": "upgrade",
                "instruction": "RUN",
                "severity": "error",
                "fix": None,
            }
        ],
    },
]


@pytest.mark.parametrize("document", GOOD_POLICIES, ids=lambda d: json.dumps(d)[55:110])
def test_good_policies_pass_schema_and_models(document: dict[str, Any]) -> None:
    validator = Draft202012Validator(SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER)
    assert list(validator.iter_errors(document)) == []
    policy = Policy.model_validate(document)
    if "exceptions" in document:
        assert policy.exceptions[0].expires == dt.date(2027, 6, 30)


def test_missing_api_version_is_the_one_schema_only_rule() -> None:
    # In code a Policy() needs nothing; a file must say what format it is written in.
    validator = Draft202012Validator(SCHEMA)
    assert [e.message for e in validator.iter_errors({"kind": "Policy"})] == [
        "'apiVersion' is a required property"
    ]
    assert Policy.model_validate({"kind": "Policy"}).api_version == "paracle-guard/v1"
