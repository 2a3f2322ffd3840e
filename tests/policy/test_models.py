"""The pydantic models: defaults, constraints, and the behaviour other layers rely on."""

from __future__ import annotations

import datetime as dt

import pydantic
import pytest

from paracle_guard.policy.models import (
    CapabilitiesControl,
    CustomRule,
    NetworkControl,
    Policy,
    ResourcesControl,
    RootFilesystemControl,
    RuleOverride,
    SecretsControl,
    UserControl,
    Waiver,
)
from paracle_guard.severity import Severity


def test_an_empty_policy_has_the_hardened_defaults() -> None:
    policy = Policy()
    assert policy.api_version == "paracle-guard/v1"
    assert policy.fail_on is Severity.WARNING
    assert policy.controls.user.allow_root is False
    assert policy.controls.root_filesystem.read_only is True
    assert policy.controls.root_filesystem.writable_paths == ["/workspace", "/tmp"]
    assert policy.controls.capabilities.drop_all is True
    assert policy.controls.privileges.no_new_privileges is True
    assert policy.controls.network.mode == "none"
    assert policy.source is None
    assert policy.sha256 == ""


def test_defaults_are_not_shared_between_instances() -> None:
    first, second = Policy(), Policy()
    first.controls.root_filesystem.writable_paths.append("/var")
    first.controls.secrets.env_name_patterns.clear()
    assert second.controls.root_filesystem.writable_paths == ["/workspace", "/tmp"]
    assert second.controls.secrets.env_name_patterns


def test_api_version_by_alias_or_name() -> None:
    assert Policy.model_validate({"apiVersion": "paracle-guard/v1"}).api_version
    assert Policy(api_version="paracle-guard/v1").model_dump(by_alias=True)["apiVersion"]
    with pytest.raises(pydantic.ValidationError):
        Policy.model_validate({"apiVersion": "v2"})


def test_loader_fields_are_not_part_of_the_document() -> None:
    policy = Policy(source="team.yaml", sha256="abc")
    dumped = policy.model_dump(by_alias=True)
    assert "source" not in dumped
    assert "sha256" not in dumped


@pytest.mark.parametrize(
    "section",
    [
        {"controls": {"user": {"allow_rot": True}}},
        {"controls": {"dns": {}}},
        {"exceptions": [{"rule": "PG101", "reason": "r", "owner": "me"}]},
        {"bogus": 1},
    ],
)
def test_unknown_keys_are_refused_at_every_level(section: dict[str, object]) -> None:
    with pytest.raises(pydantic.ValidationError, match="Extra inputs are not permitted"):
        Policy.model_validate(section)


def test_waiver_expires_after_its_last_day() -> None:
    waiver = Waiver(rule="PG101", reason="migrating", expires=dt.date(2027, 6, 30))
    assert waiver.target == "*"
    assert not waiver.expired(dt.date(2027, 6, 30))
    assert waiver.expired(dt.date(2027, 7, 1))
    assert not Waiver(rule="PG101", reason="forever").expired(dt.date(9999, 1, 1))


def test_waiver_date_from_text() -> None:
    waiver = Waiver.model_validate({"rule": "PG101", "reason": "r", "expires": "2027-06-30"})
    assert waiver.expires == dt.date(2027, 6, 30)


@pytest.mark.parametrize("reason", ["", "   ", "\n"])
def test_waiver_needs_a_reason(reason: str) -> None:
    with pytest.raises(pydantic.ValidationError):
        Waiver(rule="PG101", reason=reason)


@pytest.mark.parametrize("rule", ["PG101", "pg101", "denied-package"])
def test_waiver_rule_by_code_or_name(rule: str) -> None:
    assert Waiver(rule=rule, reason="r").rule == rule


def test_secret_patterns_must_compile() -> None:
    with pytest.raises(pydantic.ValidationError, match="invalid regular expression"):
        SecretsControl(env_name_patterns=["(unclosed"])


def test_custom_rule_constraints() -> None:
    rule = CustomRule(
        code="ACME101", name="no-apt-upgrade", message="m", pattern=r"upgrade", instruction="RUN"
    )
    assert rule.severity is Severity.WARNING
    for bad in (
        {"code": "acme101"},
        {"name": "No Upgrade"},
        {"pattern": "["},
        {"instruction": "run"},
        {"message": " "},
    ):
        fields = {"code": "ACME101", "name": "n", "message": "m", "pattern": "x", **bad}
        with pytest.raises(pydantic.ValidationError):
            CustomRule.model_validate(fields)


def test_rule_override_severity_includes_off() -> None:
    assert RuleOverride(severity="off").severity == "off"
    assert RuleOverride().severity is None
    with pytest.raises(pydantic.ValidationError):
        RuleOverride.model_validate({"severity": "fatal"})


@pytest.mark.parametrize("memory", ["512m", "2G", "1024", "64k", "1b", None])
def test_memory_sizes_docker_accepts(memory: str | None) -> None:
    assert ResourcesControl(memory=memory).memory == memory


@pytest.mark.parametrize("memory", ["1.5g", "512 m", "512mb", "lots", ""])
def test_memory_sizes_refused(memory: str) -> None:
    with pytest.raises(pydantic.ValidationError):
        ResourcesControl(memory=memory)


def test_limits_must_be_positive() -> None:
    for bad in ({"cpus": 0}, {"cpus": -1.0}, {"pids": 0}):
        with pytest.raises(pydantic.ValidationError):
            ResourcesControl.model_validate(bad)
    assert ResourcesControl(cpus=None, pids=None).cpus is None


@pytest.mark.parametrize("mode", ["none", "bridge", "host", "my_net.1"])
def test_network_modes(mode: str) -> None:
    assert NetworkControl(mode=mode).mode == mode


@pytest.mark.parametrize("mode", ["container:db", "", "-x"])
def test_network_modes_refused(mode: str) -> None:
    with pytest.raises(pydantic.ValidationError):
        NetworkControl(mode=mode)


def test_uids_capabilities_and_paths() -> None:
    assert UserControl(allowed_uids=[0, 1000]).allowed_uids == [0, 1000]
    assert CapabilitiesControl(allowed_add=["NET_BIND_SERVICE", "CAP_NET_RAW"]).allowed_add
    for bad_uid in (-1, 2**32 - 1):
        with pytest.raises(pydantic.ValidationError):
            UserControl(allowed_uids=[bad_uid])
    with pytest.raises(pydantic.ValidationError):
        CapabilitiesControl(allowed_add=["net_admin"])
    with pytest.raises(pydantic.ValidationError):
        RootFilesystemControl(writable_paths=["tmp"])


def test_package_deny_keys_and_severities() -> None:
    policy = Policy.model_validate(
        {"controls": {"packages": {"deny": {"netcat*": "warning", "curl": "off"}}}}
    )
    assert policy.controls.packages.deny == {"netcat*": "warning", "curl": "off"}
    with pytest.raises(pydantic.ValidationError):
        Policy.model_validate({"controls": {"packages": {"deny": {"vim tiny": "error"}}}})
