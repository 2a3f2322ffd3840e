"""The Agent Sandbox CRDs' own OpenAPI v3 schemas, as the API server applies them.

Read from ``../shared/data/agent-sandbox/`` (kubernetes-sigs/agent-sandbox,
Apache-2.0; not copied into this repository). The API server validates a custom
resource against the schema of its version, and with strict field validation
(kubectl's default) refuses a field the schema does not name: every object
schema that lists its properties is closed here, so a misspelt or misplaced
field fails as it would on a cluster.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.conftest import IN_CI

CRDS = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "agent-sandbox"
FILES = {
    "Sandbox": "agents.x-k8s.io_sandboxes.yaml",
    "SandboxTemplate": "extensions.agents.x-k8s.io_sandboxtemplates.yaml",
    "SandboxWarmPool": "extensions.agents.x-k8s.io_sandboxwarmpools.yaml",
    "SandboxClaim": "extensions.agents.x-k8s.io_sandboxclaims.yaml",
}


def crd(kind: str) -> dict[str, Any]:
    path = CRDS / FILES[kind]
    if not path.is_file():
        message = f"the Agent Sandbox CRDs are not at {CRDS.resolve()}"
        if IN_CI:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return _load(path)


@functools.cache
def _load(path: Path) -> dict[str, Any]:
    # libyaml when present: the two pod-template CRDs are 8,000 lines each.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    loaded: dict[str, Any] = yaml.load(path.read_text(), Loader=loader)
    return loaded


def _closed(schema: Any) -> Any:
    """``schema`` with every object that names its properties closed to others."""
    if isinstance(schema, list):
        return [_closed(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    closed = {key: _closed(value) for key, value in schema.items()}
    if ("properties" in schema and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")):
        closed["additionalProperties"] = False
    return closed


def validator(kind: str, version: str) -> jsonschema.Draft7Validator:
    return _validator(kind, version, str(CRDS / FILES[kind]) if crd(kind) else "")


@functools.cache
def _validator(kind: str, version: str, path: str) -> jsonschema.Draft7Validator:
    for served in _load(Path(path))["spec"]["versions"]:
        if served["name"] == version and served["served"]:
            return jsonschema.Draft7Validator(_closed(served["schema"]["openAPIV3Schema"]))
    raise AssertionError(f"{kind} {version} is not a served version of the CRD")


def validate(item: dict[str, Any]) -> None:
    """Raise jsonschema.ValidationError unless ``item`` is valid for its kind and version."""
    version = item["apiVersion"].rpartition("/")[2]
    validator(item["kind"], version).validate(item)


def served_versions(kind: str) -> tuple[str, ...]:
    return tuple(sorted(v["name"] for v in crd(kind)["spec"]["versions"] if v["served"]))
