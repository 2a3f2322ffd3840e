"""Kubernetes-only rules (PG801-PG810), and the image rules on manifests: each fires on
its manifest and not on the hardened Pod, and follows the policy's controls. The per-rule
fixtures with their lines are in tests/sources/k8s_cases (see tests/sources/test_k8s.py);
these tests vary the policy."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from paracle_guard.engine import Plan
from paracle_guard.policy.models import Policy
from paracle_guard.sources.k8s import load_manifests
from paracle_guard.subject import Subject

CASES = Path(__file__).resolve().parents[1] / "sources" / "k8s_cases"


def subject(case: str) -> Subject:
    (only,) = load_manifests([CASES / f"{case}.yaml"])
    return only


def codes(case: str, controls: dict[str, object] | None = None) -> set[str]:
    policy = Policy.model_validate({"controls": controls or {}})
    return {f.rule for f in Plan.compile(policy).evaluate(subject(case)).findings}


K8S_RULES = {"PG801", "PG802", "PG803", "PG804", "PG805", "PG806", "PG808", "PG810",
             "PG811", "PG501", "PG502"}


def test_the_hardened_pod_passes_every_kubernetes_rule_but_the_pids_note() -> None:
    assert codes("hardened") & K8S_RULES == {"PG808"}
    assert codes("hardened", {"resources": {"pids": None}}) & K8S_RULES == set()


@pytest.mark.parametrize(("case", "code"), [
    ("pg801-service-account-token", "PG801"),
    ("pg802-run-as-non-root-not-set", "PG802"),
    ("pg803-unprovable-user", "PG803"),
    ("pg804-seccomp-not-set", "PG804"),
    ("pg805-restricted-volume-type", "PG805"),
    ("pg501-unpinned-image", "PG501"),
    ("pg810-secret-as-env", "PG810"),
    ("pg811-supplemental-groups-merged", "PG811"),
])
def test_each_rule_fires_on_its_case(case: str, code: str) -> None:
    assert code in codes(case)


def test_allowing_root_silences_the_non_root_rules() -> None:
    allow = {"user": {"allow_root": True}}
    assert "PG802" not in codes("pg802-run-as-non-root-not-set", allow)
    assert "PG803" not in codes("pg803-unprovable-user", allow)


def test_host_port_is_pg806_only_when_the_policy_has_a_network() -> None:
    assert codes("pg311-published-port") & {"PG311", "PG806"} == {"PG311"}
    bridge = {"network": {"mode": "bridge"}}
    assert codes("pg311-published-port", bridge) & {"PG311", "PG806"} == {"PG806"}


def test_image_pinning_follows_the_policy() -> None:
    assert "PG501" not in codes("pg501-unpinned-image", {"base_image": {"forbid_latest": False}})
    tagged = {"base_image": {"require_digest": True}}
    assert "PG501" not in codes("hardened", tagged)


def test_untrusted_image_registry() -> None:
    assert "PG502" not in codes("hardened")
    assert "PG502" not in codes("hardened", {"base_image": {
        "allowed_registries": ["registry.example"]}})
    assert "PG502" in codes("hardened", {"base_image": {"allowed_registries": ["ghcr.io"]}})


def test_the_retired_image_codes_still_name_the_rules() -> None:
    # PG807 and PG809 were the manifest-only image rules; policies naming them still work.
    allow_ghcr = {"base_image": {"allowed_registries": ["ghcr.io"]}}
    assert {"PG501", "PG502"} <= codes("pg501-unpinned-image", allow_ghcr)
    policy = Policy.model_validate({
        "rules": {"PG807": {"severity": "off"}, "untrusted-image-registry": {"severity": "off"}},
        "controls": allow_ghcr})
    result = Plan.compile(policy).evaluate(subject("pg501-unpinned-image"))
    assert not {f.rule for f in result.findings} & {"PG501", "PG502"}


def test_pids_note_is_info_and_does_not_fail_the_run() -> None:
    result = Plan.compile(Policy.model_validate({})).evaluate(subject("hardened"))
    notes = [f for f in result.findings if f.rule == "PG808"]
    assert len(notes) == 1 and notes[0].severity.value == "info"


def test_kubernetes_rules_ignore_other_kinds() -> None:
    other = replace(subject("hardened"), kind="compose", kubernetes=None)
    policy = Plan.compile(Policy.model_validate({}))
    assert {f.rule for f in policy.evaluate(other).findings} & K8S_RULES == set()


def test_groups_from_the_image_are_the_policy_s_business() -> None:
    # A policy that allows the root group does not mind what the image adds.
    assert "PG811" not in codes("pg811-supplemental-groups-merged",
                                {"user": {"allow_root_group": True}})
    facts = subject("pg811-supplemental-groups-merged").kubernetes
    assert facts is not None and facts.supplemental_groups_policy is None
    strict = subject("hardened").kubernetes
    assert strict is not None and strict.supplemental_groups_policy == "Strict"


def test_the_allowed_volume_types_are_the_policy_s() -> None:
    # The nfs volume of the case is refused under the built-in list, and admitted by a
    # policy that lists it; a policy that drops emptyDir refuses the hardened pod's.
    assert "PG805" in codes("pg805-restricted-volume-type")
    with_nfs = {"kubernetes": {"allowed_volume_types": [
        "configMap", "emptyDir", "nfs", "projected", "secret"]}}
    assert "PG805" not in codes("pg805-restricted-volume-type", with_nfs)
    assert "PG805" not in codes("hardened")
    no_empty_dir = {"kubernetes": {"allowed_volume_types": ["configMap", "secret"]}}
    assert "PG805" in codes("hardened", no_empty_dir)
