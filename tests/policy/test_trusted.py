"""A remembered policy rebuilt without validation is the policy validation gave."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import typing
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pydantic
import pytest

from paracle_guard.policy.loader import builtin_policy_names, validate_policy, validate_policy_file
from paracle_guard.policy.models import DEFAULT_SECRET_PATTERNS, Policy
from paracle_guard.policy.trusted import construct
from paracle_guard.severity import Severity

# Every field of every policy model set, away from its default where it has one.
EVERY_FIELD = """\
metadata: {name: every-field, description: sets every field}
fail_on: error
audit_log: ~/audit.jsonl
sandbox_test: {python: false, python_packages: [numpy, yaml.loader]}
controls:
  user: {allow_root: true, allowed_uids: [1000, 1001], allow_root_group: true,
         allowed_gids: [0, 10]}
  root_filesystem: {read_only: false, writable_paths: [/data]}
  capabilities: {drop_all: false, allowed_add: [NET_BIND_SERVICE, CAP_CHOWN]}
  privileges: {privileged: true, no_new_privileges: false, host_namespaces: true,
               allowed_sysctls: [net.core.somaxconn]}
  packages: {deny: {"netcat*": error, curl: "off"}, max_installed: 40,
             no_install_recommends: false, clean_caches: false}
  base_image: {forbid_latest: false, require_digest: true, allowed_registries: [ghcr.io/acme/]}
  secrets: {env_name_patterns: ["(?i)token"]}
  resources: {memory: null, cpus: 2, pids: 64}
  network: {mode: bridge}
  runtime: {allowed: [runsc], required: true, runtime_classes: {gvisor: runsc}}
  kubernetes: {allowed_volume_types: [emptyDir]}
rules:
  PG101: {severity: info}
  root-user: {}
exceptions:
  - {rule: PG101, target: "legacy/*", reason: moving off root, expires: 2099-01-31}
  - {rule: latest-tag, reason: pinned by the release job}
custom_rules:
  - {code: ACME1, name: no-sudo, severity: error, message: no sudo, instruction: RUN,
     pattern: "\\\\bsudo\\\\b", fix: drop sudo}
  - {code: ACME2, name: no-label, message: no labels, pattern: "x"}
authz:
  allow_copy_into_containers: true
  allow_commit: true
  allow_build_context: true
  volume_drivers: [local, nfs]
  network_drivers: [bridge]
  exemptions:
    - {tls_user: ci-bot, label: "team=ci", reason: the CI runner, expires: 2099-12-31}
    - {label: trusted, reason: labelled}
"""


def _remembered_form(policy: Policy) -> Any:
    """What ``remembered`` stores: only what was set, through JSON."""
    dumped = policy.model_dump(mode="json", by_alias=True, exclude_unset=True)
    return json.loads(json.dumps(dumped))


def _assert_rebuilt(validated: Policy) -> Policy:
    rebuilt = construct(Policy, _remembered_form(validated))
    # What the loader sets beside the file's content, remembered beside it.
    rebuilt.source, rebuilt.sha256 = validated.source, validated.sha256
    rebuilt._origins = dict(validated._origins)
    assert rebuilt == validated
    # The same fields set, at every depth, and the same values with every default in.
    assert (rebuilt.model_dump(exclude_unset=True, by_alias=True)
            == validated.model_dump(exclude_unset=True, by_alias=True))
    assert rebuilt.model_dump(mode="json") == validated.model_dump(mode="json")
    return rebuilt


@pytest.mark.parametrize("name", builtin_policy_names())
def test_every_builtin_policy_rebuilds_to_the_validated_one(name: str) -> None:
    _assert_rebuilt(validate_policy(name))


def test_a_policy_setting_every_field_rebuilds_to_the_validated_one(
        write: Callable[..., Path]) -> None:
    rebuilt = _assert_rebuilt(validate_policy_file(write("every.yaml", EVERY_FIELD)))
    # The types validation gives, not JSON's.
    assert rebuilt.fail_on is Severity.ERROR
    assert rebuilt.custom_rules[1].severity is Severity.WARNING  # the default
    assert rebuilt.exceptions[0].expires == dt.date(2099, 1, 31)
    assert rebuilt.exceptions[1].expires is None
    assert isinstance(rebuilt.controls.resources.cpus, float)
    assert rebuilt.controls.resources.memory is None
    assert rebuilt.rules["root-user"].model_fields_set == set()


def test_a_policy_setting_nothing_rebuilds_with_every_default(
        write: Callable[..., Path]) -> None:
    rebuilt = _assert_rebuilt(validate_policy_file(write("few.yaml", "metadata: {name: few}\n")))
    assert rebuilt.model_fields_set == {"api_version", "kind", "metadata", "extends", "source",
                                        "sha256"}
    assert rebuilt.controls.model_fields_set == set()
    # Defaults are each instance's own, never shared with another policy's.
    other = _assert_rebuilt(validate_policy_file(write("few.yaml", "metadata: {name: few}\n")))
    assert rebuilt.controls.user.allowed_uids is not other.controls.user.allowed_uids
    assert rebuilt.controls.secrets.env_name_patterns == DEFAULT_SECRET_PATTERNS


def _models(model: type[pydantic.BaseModel]) -> Iterator[type[pydantic.BaseModel]]:
    yield model
    for field in model.model_fields.values():
        for kind in _types_in(field.annotation):
            if isinstance(kind, type) and issubclass(kind, pydantic.BaseModel):
                yield from _models(kind)


def _types_in(annotation: Any) -> Iterator[Any]:
    yield annotation
    for argument in typing.get_args(annotation):
        yield from _types_in(argument)


def _set_fields(value: Any, model: type[pydantic.BaseModel], seen: set[tuple[str, str]]) -> None:
    if isinstance(value, pydantic.BaseModel):
        seen.update((type(value).__name__, name) for name in value.model_fields_set)
        for name in value.model_fields_set:
            _set_fields(getattr(value, name), model, seen)
    elif isinstance(value, (list, dict)):
        for item in value.values() if isinstance(value, dict) else value:
            _set_fields(item, model, seen)


def test_the_every_field_policy_still_sets_every_field(write: Callable[..., Path]) -> None:
    """A field added to the models must be added to EVERY_FIELD, so it is rebuilt above."""
    seen: set[tuple[str, str]] = set()
    _set_fields(validate_policy_file(write("every.yaml", EVERY_FIELD)), Policy, seen)
    # source and sha256 are the loader's, never in the file.
    fields = {(model.__name__, name) for model in _models(Policy) for name in model.model_fields
              if (model.__name__, name) not in {("Policy", "source"), ("Policy", "sha256")}}
    assert sorted(fields - seen) == []


@pytest.mark.parametrize("document", [
    {"fail_on": "fatal"},  # not a severity
    {"kind": "Pod"},  # not the literal
    {"controls": {"resources": {"pids": True}}},  # a boolean is no count
    {"controls": {"resources": {"cpus": "2"}}},  # a string is no number
    {"controls": {"user": {"allowed_uids": 1000}}},  # not a list
    {"controls": {"packages": {"deny": ["curl"]}}},  # not a mapping
    {"exceptions": [{"rule": "PG101", "reason": "r", "expires": 20990101}]},  # not a date
    {"exceptions": [{"rule": "PG101", "reason": "r", "expires": "soon"}]},
    {"metadata": "name"},  # not an object
    {"controls": {"usr": {}}},  # no such field
])
def test_what_validation_would_refuse_is_not_rebuilt(document: dict[str, Any]) -> None:
    with pytest.raises((TypeError, ValueError)):
        construct(Policy, document)


def test_a_field_kind_it_does_not_know_is_refused() -> None:
    class Either(pydantic.BaseModel):
        value: int | str = 0

    with pytest.raises(TypeError, match="cannot rebuild"):
        construct(Either, {"value": 1})


def test_a_recalled_policy_builds_no_validator_and_validation_still_works(
        tmp_path: Path) -> None:
    """A warm run never builds the policy validators; code that needs them builds them."""
    code = (
        "import json; from paracle_guard.policy.loader import load_policy, validate_policy\n"
        "from paracle_guard.policy.models import Policy, Controls\n"
        "policy = load_policy('sandbox')\n"
        "built = Policy.__pydantic_complete__ or Controls.__pydantic_complete__\n"
        "schema = Policy.model_json_schema()\n"
        "print(json.dumps([built, sorted(schema['properties']),\n"
        "                  policy == validate_policy('sandbox'),\n"
        "                  policy.model_dump(mode='json')]))\n"
    )
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}
    cold, warm = (json.loads(subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env,
        check=True).stdout) for _ in range(2))
    assert cold[0] is True and warm[0] is False
    assert warm[1] == cold[1] and "controls" in warm[1]
    assert warm[2] is True and warm[3] == cold[3]
