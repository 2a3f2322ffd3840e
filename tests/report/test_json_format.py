from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, get_args

import jsonschema
import pytest
from pydantic import BaseModel

from paracle_guard.location import Location
from paracle_guard.report.json_format import dumps, render_json
from paracle_guard.report.models import (
    SUPPRESSION_KINDS,
    Finding,
    PolicyRef,
    Report,
    Result,
    Summary,
    SuppressionInfo,
    ToolInfo,
    finding_fingerprint,
)
from paracle_guard.severity import Severity
from paracle_guard.subject import SubjectKind

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "report.schema.json"


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return loaded


@pytest.fixture(scope="module")
def validator(schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _errors(validator: jsonschema.Draft202012Validator, document: Any) -> list[str]:
    return [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in validator.iter_errors(document)
    ]


def test_follows_the_published_shape(report: Report) -> None:
    document = json.loads(render_json(report))
    assert list(document) == ["tool", "policy", "fail_on", "results", "summary"]
    assert document["tool"] == {"name": "paracle-guard", "version": "0.1.0"}
    assert document["policy"] == {"name": "sandbox", "sha256": "0" * 64}
    assert document["fail_on"] == "warning"
    assert document["summary"] == {"error": 3, "warning": 2, "info": 1}
    first = document["results"][0]
    assert (first["target"], first["kind"]) == ("docker/Dockerfile.sandbox", "dockerfile")
    assert first["findings"][0] == {
        "rule": "PG101",
        "name": "root-user",
        "severity": "error",
        "message": "the final stage runs as root",
        "location": {
            "path": "docker/Dockerfile.sandbox",
            "line": 12,
            "end_line": None,
            "layer": None,
        },
        "fix": "Add USER 1000 to the final stage",
        "suppression": None,
        "target": None,
        "fingerprint": finding_fingerprint("PG101", "docker/Dockerfile.sandbox",
                                           "docker/Dockerfile.sandbox",
                                           "the final stage runs as root"),
    }
    assert first["metadata"] == {"stage": "final", "stages": ["builder", "final"]}
    assert (first["label"], first["parts"]) == (None, {})


def test_suppressed_findings_say_how_and_why(report: Report) -> None:
    suppressed = json.loads(render_json(report))["results"][0]["suppressed"]
    assert [(f["rule"], f["suppression"]) for f in suppressed] == [
        ("PG403", {"kind": "inline", "reason": "editor for debugging"}),
        ("PG501", {"kind": "waiver", "reason": "digest pinned by renovate"}),
        ("PG503", {"kind": "cli", "reason": "--ignore on the command line"}),
    ]


def test_image_locations_keep_the_layer_and_no_line(report: Report) -> None:
    image = json.loads(render_json(report))["results"][3]
    assert image["kind"] == "image"
    assert image["findings"][0]["location"] == {
        "path": "/usr/bin/sudo",
        "line": None,
        "end_line": None,
        "layer": "sha256:" + "ab" * 32,
    }


def test_rule_metadata_stays_out(report: Report) -> None:
    assert "rules" not in json.loads(render_json(report))


def test_rendered_reports_validate_against_the_schema(
    validator: jsonschema.Draft202012Validator,
    report: Report,
    empty_report: Report,
    make_report: Callable[..., Report],
) -> None:
    only_suppressed = make_report(fail_on=Severity.INFO)
    only_suppressed.add(
        Result(
            target="Dockerfile",
            kind="dockerfile",
            suppressed=[
                Finding(
                    rule="PG101",
                    name="root-user",
                    severity=Severity.ERROR,
                    message="root",
                    location=Location(path="Dockerfile", line=3, end_line=4),
                    suppression=SuppressionInfo(kind="inline"),  # no reason given
                )
            ],
        )
    )
    for case in (report, empty_report, only_suppressed):
        assert _errors(validator, json.loads(render_json(case))) == []


def test_the_schema_rejects_what_a_report_never_is(
    validator: jsonschema.Draft202012Validator, report: Report
) -> None:
    # Proof the schema constrains something: each mutation must be caught.
    def mutated(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(render_json(report))
        change(document)
        return document

    def drop_line(d: dict[str, Any]) -> None:
        del d["results"][0]["findings"][0]["location"]["line"]

    def suppress_a_counted_finding(d: dict[str, Any]) -> None:
        d["results"][0]["findings"][0]["suppression"] = {"kind": "cli", "reason": None}

    def unsuppress_a_suppressed_one(d: dict[str, Any]) -> None:
        d["results"][0]["suppressed"][0]["suppression"] = None

    def unknown_severity(d: dict[str, Any]) -> None:
        d["results"][0]["findings"][0]["severity"] = "critical"

    def extra_key(d: dict[str, Any]) -> None:
        d["results"][0]["findings"][0]["cvss"] = 9.8

    for change in (
        drop_line,
        suppress_a_counted_finding,
        unsuppress_a_suppressed_one,
        unknown_severity,
        extra_key,
    ):
        assert _errors(validator, mutated(change)), change.__name__


# Where each model's JSON lives in the schema ("" is the root object).
_SCHEMA_OBJECTS: dict[str, type[BaseModel]] = {
    "": Report,
    "properties/tool": ToolInfo,
    "properties/policy": PolicyRef,
    "properties/summary": Summary,
    "$defs/result": Result,
    "$defs/finding": Finding,
    "$defs/location": Location,
    "$defs/suppression": SuppressionInfo,
}


@pytest.mark.parametrize("where", list(_SCHEMA_OBJECTS))
def test_schema_keys_agree_with_the_models(schema: dict[str, Any], where: str) -> None:
    model = _SCHEMA_OBJECTS[where]
    node = schema
    for part in filter(None, where.split("/")):
        node = node[part]
    # The keys the model serialises: fields, minus excluded ones, plus computed ones.
    dumped = set(model.model_json_schema(mode="serialization")["properties"])
    assert set(node["properties"]) == dumped
    # Every key is always written, so every key is required.
    assert set(node["required"]) == dumped
    assert node["additionalProperties"] is False
    for key, prop in node["properties"].items():
        assert prop.get("description"), f"{where}/{key} has no description"


def test_schema_enums_agree_with_the_code(schema: dict[str, Any]) -> None:
    defs = schema["$defs"]
    assert defs["severity"]["enum"] == [severity.value for severity in Severity]
    assert defs["suppression"]["properties"]["kind"]["enum"] == list(SUPPRESSION_KINDS)
    assert defs["result"]["properties"]["kind"]["enum"] == list(get_args(SubjectKind))


def test_undecodable_input_still_makes_valid_utf8_json(
    make_report: Callable[..., Report],
) -> None:
    report = make_report()
    message = "bad byte \udcff and café"
    report.add(
        Result(
            target="Dockerfile",
            kind="dockerfile",
            findings=[
                Finding(
                    rule="PG901",
                    name="parse-error",
                    severity=Severity.ERROR,
                    message=message,
                    location=Location(path="Dockerfile", line=1),
                )
            ],
        )
    )
    rendered = render_json(report)
    rendered.encode("utf-8")
    assert "café" in rendered  # readable, not \u-escaped
    assert json.loads(rendered)["results"][0]["findings"][0]["message"] == message


def test_both_serialisers_write_the_same_text(report: Report) -> None:
    # render_json falls back from pydantic's serialiser to json's only for lone
    # surrogates; the fallback must not change the output otherwise.
    report.results[0].findings[0].message = "tab\there, esc \x1b, del \x7f, café, 日本, \u2028"
    assert render_json(report) == dumps(report.model_dump(mode="json"))
