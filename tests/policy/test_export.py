"""The policy exported for the cluster: PSA labels, NetworkPolicy, ValidatingAdmissionPolicy.

The CEL validations are compiled and evaluated here with cel-python, the way
the API server evaluates them against a Pod: ``object`` is the Pod,
``variables.containers`` the policy's variable. Kubernetes' ``quantity()``
library is supplied from the Kubernetes source's own quantity parser. The
compliant Pods (the hardened fixture and the launcher's own Pod) are admitted;
each violating fixture of ``tests/sources/k8s_cases`` is rejected, with
messages that name the same rules ``paracle-guard k8s`` reports.

Every exported object also validates against the Kubernetes OpenAPI schemas
shipped by kubernetes-validate, for two minor versions.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import celpy
import kubernetes_validate
import pytest
import yaml
from celpy import celtypes
from typer.testing import CliRunner

from paracle_guard.cli import app
from paracle_guard.policy.export import (
    CONTAINERS,
    Validation,
    export_kubernetes,
    pss_level,
    validations,
)
from paracle_guard.policy.loader import load_policy
from paracle_guard.policy.models import Policy
from paracle_guard.sources.k8s import parse_quantity
from tests.sources.test_k8s import EXPECTED, SPLIT

# Each case and the rules the lint finds in it, wherever in the file they point.
LINT_EXPECTED = {**{case: rules for case, (rules, _) in EXPECTED.items()},
                 **{case: set(lines) for case, lines in SPLIT.items()}}

CASES = Path(__file__).resolve().parents[1] / "sources" / "k8s_cases"
# Two minor versions the exported objects must be valid for: the first with
# ValidatingAdmissionPolicy v1 (GA in 1.30) and the newest the validator ships.
KUBERNETES_VERSIONS = ("1.30", "1.37")

# case -> rule codes the admission policy rejects the Pod with. Where this differs
# from what `paracle-guard k8s` reports, the comment says why.
ADMISSION_EXPECTED: dict[str, set[str]] = {
    # runAsUser 0 is also not the policy's uid 1000 (the lint leaves that to PG101).
    "pg101-root-user": {"PG101", "PG102"},
    # No runAsUser: admission needs the uid proven in the manifest (PG102), as the lint's
    # PG101 fails closed on it.
    "pg101-no-user": {"PG102", "PG802"},
    "pg102-uid-not-allowed": {"PG102"},
    "pg201-writable-rootfs": {"PG201"},
    "pg202-writable-path": {"PG202"},
    "pg204-unsafe-workdir": {"PG204"},
    "pg301-capabilities-not-dropped": {"PG301"},
    "pg301-lower-case-all": {"PG301"},
    "pg302-capability-added": {"PG302"},
    "pg303-privileged": {"PG303"},
    "pg304-new-privileges-allowed": {"PG304"},
    "pg305-host-namespace": {"PG305"},
    "pg305-host-users": {"PG305"},
    # hostPath is refused as a volume type, whatever the path (PG805 names PG307).
    "pg307-sensitive-mount": {"PG805"},
    "pg308-device-access": {"PG308"},
    "pg309-unsafe-sysctl": {"PG309"},
    "pg311-published-port": {"PG311"},
    "pg312-unconfined-profile": {"PG312"},
    "pg312-proc-mount": {"PG312"},
    "pg312-apparmor": {"PG312"},
    "pg601-secret-in-env": {"PG601"},
    "pg701-missing-limits": {"PG701"},
    "pg701-swap": {"PG701"},
    "pg701-zero-limits": {"PG701"},
    "pg801-service-account-token": {"PG801"},
    "pg802-run-as-non-root-not-set": {"PG802"},
    # The policy lists its uid, so the missing runAsUser is PG102's rejection.
    "pg803-unprovable-user": {"PG102"},
    "pg804-seccomp-not-set": {"PG804"},
    "pg805-restricted-volume-type": {"PG805"},
    "pg501-unpinned-image": {"PG501"},
    "pg810-secret-as-env": {"PG810"},
}
# Not admission's to judge: the network is the exported NetworkPolicy's job, and a
# manifest that does not parse never reaches admission.
NOT_ADMISSION = {"pg702-network-not-isolated", "pg901-parse-error",
                 # The PersistentVolume behind a claim is not in the Pod admission sees.
                 "pg307-pvc-hostpath"}


# --- a CEL evaluator shaped like the API server's ---------------------------------------


def _quantity(text: celtypes.StringType) -> celtypes.DoubleType:
    return celtypes.DoubleType(float(parse_quantity(str(text))))


def _compare_to(left: celtypes.DoubleType, right: celtypes.DoubleType) -> celtypes.IntType:
    a, b = Decimal(float(left)), Decimal(float(right))
    return celtypes.IntType((a > b) - (a < b))


FUNCTIONS: dict[str, Any] = {"quantity": _quantity, "compareTo": _compare_to}


class Admission:
    """The exported ValidatingAdmissionPolicy, compiled once, evaluated per Pod."""

    def __init__(self, policy: Policy) -> None:
        environment = celpy.Environment()
        self.containers = environment.program(environment.compile(CONTAINERS),
                                              functions=FUNCTIONS)
        self.checks: list[tuple[Validation, Any]] = [
            (check, environment.program(environment.compile(check.expression),
                                        functions=FUNCTIONS))
            for check in validations(policy)
        ]

    def rejections(self, pod: dict[str, Any]) -> list[str]:
        """The messages of every validation ``pod`` fails, as the API server returns them."""
        activation: dict[str, Any] = {"object": celpy.json_to_cel(pod)}
        containers = self.containers.evaluate(activation)
        activation["variables"] = celtypes.MapType(
            {celtypes.StringType("containers"): containers})
        messages = []
        for check, program in self.checks:
            outcome = program.evaluate(activation)
            assert isinstance(outcome, celtypes.BoolType), (check.code, outcome)
            if not outcome:
                messages.append(check.as_manifest()["message"])
        return messages


@pytest.fixture(scope="module")
def sandbox() -> Policy:
    return load_policy("sandbox")


@pytest.fixture(scope="module")
def admission(sandbox: Policy) -> Admission:
    return Admission(sandbox)


def pod_of(path: Path) -> dict[str, Any]:
    pods = [d for d in yaml.safe_load_all(path.read_text()) if d and d.get("kind") == "Pod"]
    assert len(pods) == 1
    return pods[0]


# --- admission verdicts -------------------------------------------------------------------


def test_every_case_has_an_admission_verdict() -> None:
    assert set(ADMISSION_EXPECTED) | NOT_ADMISSION | {"hardened"} == set(LINT_EXPECTED)


def test_the_hardened_pod_is_admitted(admission: Admission) -> None:
    assert admission.rejections(pod_of(CASES / "hardened.yaml")) == []


@pytest.mark.parametrize("case", sorted(ADMISSION_EXPECTED))
def test_each_violating_pod_is_rejected_by_its_rules(admission: Admission, case: str) -> None:
    messages = admission.rejections(pod_of(CASES / f"{case}.yaml"))
    assert {message.split(" ", 1)[0] for message in messages} == ADMISSION_EXPECTED[case]
    for message in messages:
        code, name, _ = message.split(" ", 2)
        assert name.endswith(":") and len(message) > len(code) + len(name) + 10


def test_verdicts_agree_with_the_lint() -> None:
    # Where admission and lint both judge a case, at least one rule code is shared:
    # the same manifest is never admitted by one and clean for the other.
    for case, admitted in ADMISSION_EXPECTED.items():
        assert LINT_EXPECTED[case] & admitted, case


def test_ephemeral_and_init_containers_are_judged(admission: Admission) -> None:
    pod = pod_of(CASES / "hardened.yaml")
    pod["spec"]["ephemeralContainers"] = [{"name": "debug", "image": "busybox@sha256:" + "a" * 64}]
    codes = {m.split(" ", 1)[0] for m in admission.rejections(pod)}
    assert {"PG201", "PG301", "PG304", "PG701"} <= codes


def test_registry_allow_list() -> None:
    policy = Policy.model_validate({"controls": {"base_image": {
        "allowed_registries": ["ghcr.io/acme/", "docker.io"], "forbid_latest": False}}})
    checks = Admission(policy)
    pod = pod_of(CASES / "hardened.yaml")
    verdicts = {}
    for image in ("ghcr.io/acme/app:1", "ghcr.io/acmeevil/app:1", "python:3.12",
                  "docker.io/library/python:3.12", "quay.io/x/y:1", "localhost/app:1",
                  "registry.example:5000/app:1"):
        pod["spec"]["containers"][0]["image"] = image
        verdicts[image] = "PG502" not in {m.split(" ", 1)[0] for m in checks.rejections(pod)}
    assert verdicts == {
        "ghcr.io/acme/app:1": True, "ghcr.io/acmeevil/app:1": False, "python:3.12": True,
        "docker.io/library/python:3.12": True, "quay.io/x/y:1": False,
        "localhost/app:1": False, "registry.example:5000/app:1": False,
    }


def test_require_digest_and_a_loose_policy() -> None:
    digest_only = {"controls": {"base_image": {"require_digest": True}}}
    strict = Admission(Policy.model_validate(digest_only))
    pod = pod_of(CASES / "hardened.yaml")
    assert "PG501" not in {m.split(" ", 1)[0] for m in strict.rejections(pod)}
    pod["spec"]["containers"][0]["image"] = "registry.example/sandbox:1.0"
    assert "PG501" in {m.split(" ", 1)[0] for m in strict.rejections(pod)}
    loose = Policy.model_validate({"controls": {
        "user": {"allow_root": True}, "privileges": {"privileged": True},
        "resources": {"memory": None, "cpus": None, "pids": None}}})
    codes = {v.code for v in validations(loose)}
    assert not codes & {"PG101", "PG303", "PG701", "PG802"}


# --- the exported objects ---------------------------------------------------------------


def test_psa_level_follows_the_policy(sandbox: Policy) -> None:
    assert pss_level(sandbox) == "restricted"
    root = Policy.model_validate({"controls": {"user": {"allow_root": True}}})
    assert pss_level(root) == "baseline"
    host = Policy.model_validate({"controls": {"privileges": {"host_namespaces": True}}})
    assert pss_level(host) == "privileged"


def test_export_objects(sandbox: Policy) -> None:
    objects = export_kubernetes(sandbox, "agents")
    assert [o["kind"] for o in objects] == [
        "Namespace", "NetworkPolicy", "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding"]
    labels = objects[0]["metadata"]["labels"]
    for mode in ("enforce", "audit", "warn"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"
    vap, binding = objects[2], objects[3]
    assert vap["spec"]["failurePolicy"] == "Fail"
    assert binding["spec"]["policyName"] == vap["metadata"]["name"]
    assert binding["spec"]["validationActions"] == ["Deny"]
    assert binding["spec"]["matchResources"]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "agents"}
    for validation in vap["spec"]["validations"]:
        assert validation["message"].startswith("PG")
    with pytest.raises(ValueError, match="not a valid namespace"):
        export_kubernetes(sandbox, "Not_Valid")


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_exported_objects_match_the_openapi_schemas(sandbox: Policy, version: str) -> None:
    for item in export_kubernetes(sandbox, "agents"):
        kubernetes_validate.validate(item, version, strict=True)


def test_the_schema_check_is_not_a_rubber_stamp() -> None:
    bad = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"},
           "spec": {"unknownField": True}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, KUBERNETES_VERSIONS[0], strict=True)


def test_the_export_command(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["policy", "export", "sandbox", "--format", "kubernetes",
                                 "--namespace", "agents"])
    assert result.exit_code == 0, result.output
    kinds = [d["kind"] for d in yaml.safe_load_all(result.stdout)]
    assert kinds == ["Namespace", "NetworkPolicy", "ValidatingAdmissionPolicy",
                     "ValidatingAdmissionPolicyBinding"]
    target = tmp_path / "guard.yaml"
    written = runner.invoke(app, ["policy", "export", "sandbox", "-o", str(target)])
    assert written.exit_code == 0 and "paracle-sandboxes" in target.read_text()
    wrong = runner.invoke(app, ["policy", "export", "--format", "helm"])
    assert wrong.exit_code == 2 and "expected kubernetes" in wrong.stderr
    bad = runner.invoke(app, ["policy", "export", "--namespace", "Bad_NS"])
    assert bad.exit_code == 2 and "not a valid namespace" in bad.stderr
