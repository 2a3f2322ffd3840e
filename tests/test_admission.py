"""The policy exported for the cluster: PSA labels, NetworkPolicy, ValidatingAdmissionPolicy.

The CEL validations are compiled and evaluated here with cel-python, the way
the API server evaluates them against a Pod: ``object`` is the Pod,
``variables.containers`` the policy's variable. Kubernetes' ``quantity()``
library is supplied from the Kubernetes source's own quantity parser. The
compliant Pods (the hardened fixture and the launcher's own Pod) are admitted;
each violating fixture of ``tests/sources/k8s_cases`` is rejected, with
messages that name the same rules ``paracle-guard k8s`` reports. The same
fixtures, rewritten as Agent Sandbox ``Sandbox`` and ``SandboxTemplate``
resources, meet the second policy's validations over ``object.spec.podTemplate``
with the same verdicts.

Every exported object also validates against the Kubernetes OpenAPI schemas
shipped by kubernetes-validate, for two minor versions.
"""

from __future__ import annotations

import ast
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import celpy
import kubernetes_validate
import pytest
import yaml
from celpy import celtypes
from typer.testing import CliRunner

from paracle_guard.admission import (
    Validation,
    agent_sandbox_validations,
    export_kubernetes,
    pss_level,
    validations,
)
from paracle_guard.cel import CONTAINERS, on_pod_template
from paracle_guard.cli import app
from paracle_guard.policy.loader import load_policy
from paracle_guard.policy.models import Policy
from paracle_guard.rules.base import all_rules, find_rule
from paracle_guard.sources.k8s import parse_quantity
from tests.sources.test_k8s import EXPECTED, SPLIT

# Each case and the rules the lint finds in it, wherever in the file they point.
LINT_EXPECTED = {**{case: rules for case, (rules, _) in EXPECTED.items()},
                 **{case: set(lines) for case, lines in SPLIT.items()}}

CASES = Path(__file__).resolve().parent / "sources" / "k8s_cases"
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
    # ... and the gid likewise (PG105): the lint reports root first.
    "pg101-no-user": {"PG102", "PG105", "PG802"},
    "pg102-uid-not-allowed": {"PG102"},
    # gid 0 is also not the policy's gid 1000 (the lint leaves that to PG104).
    "pg104-root-group": {"PG104", "PG105"},
    "pg104-supplemental-groups": {"PG104", "PG105"},
    "pg104-fs-group": {"PG104", "PG105"},
    # No runAsGroup is allowed by PG104's test, but the policy lists its gid (PG105).
    "pg104-group-unproven": {"PG105"},
    "pg105-gid-not-allowed": {"PG105"},
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
    "pg801-projected-token": {"PG801"},
    "pg802-run-as-non-root-not-set": {"PG802"},
    # The policy lists its uid, so the missing runAsUser is PG102's rejection.
    "pg803-unprovable-user": {"PG102"},
    "pg804-seccomp-not-set": {"PG804"},
    "pg805-restricted-volume-type": {"PG805"},
    "pg501-unpinned-image": {"PG501"},
    "pg811-supplemental-groups-merged": {"PG811"},
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
        self._compile(CONTAINERS, validations(policy))

    def _compile(self, containers: str, checks: list[Validation]) -> None:
        environment = celpy.Environment()
        self.containers = environment.program(environment.compile(containers),
                                              functions=FUNCTIONS)
        self.checks: list[tuple[Validation, Any]] = [
            (check, environment.program(environment.compile(check.expression),
                                        functions=FUNCTIONS))
            for check in checks
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


class SandboxAdmission(Admission):
    """The exported policy for Agent Sandbox resources: ``object`` is a Sandbox or a
    SandboxTemplate."""

    def __init__(self, policy: Policy) -> None:
        self._compile(on_pod_template(CONTAINERS), agent_sandbox_validations(policy))


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


def codes_of(messages: list[str]) -> set[str]:
    return {message.split(" ", 1)[0] for message in messages}


def test_sandbox_gvisor_admits_only_the_gvisor_runtime_class() -> None:
    checks = Admission(load_policy("sandbox-gvisor"))
    pod = pod_of(CASES / "hardened.yaml")
    assert checks.rejections(pod) == [
        "PG313 runtime-not-allowed: runtimeClassName must be gvisor (a RuntimeClass whose "
        "handler is runsc)"]
    pod["spec"]["runtimeClassName"] = "gvisor"
    assert checks.rejections(pod) == []
    for other in ("runc", "kata", "GVISOR", "gvisor-debug"):
        pod["spec"]["runtimeClassName"] = other
        assert codes_of(checks.rejections(pod)) == {"PG313"}, other
    # Every other promise is the sandbox's: the same violations, plus the runtime class.
    for case, expected in ADMISSION_EXPECTED.items():
        assert codes_of(checks.rejections(pod_of(CASES / f"{case}.yaml"))) == expected | {
            "PG313"}, case


def test_runtime_class_admission_when_a_runtime_is_allowed_but_not_required() -> None:
    policy = Policy.model_validate({"controls": {"runtime": {
        "allowed": ["runsc"], "runtime_classes": {"gvisor": "runsc", "legacy": "runc"}}}})
    checks = Admission(policy)
    pod = pod_of(CASES / "hardened.yaml")
    assert checks.rejections(pod) == []  # the node's default is accepted
    pod["spec"]["runtimeClassName"] = "legacy"
    assert checks.rejections(pod) == [
        "PG313 runtime-not-allowed: runtimeClassName must be gvisor (a RuntimeClass whose "
        "handler is runsc), when set"]


def test_no_runtime_class_maps_to_an_allowed_runtime() -> None:
    policy = Policy.model_validate({"controls": {"runtime": {"allowed": ["runsc"],
                                                             "required": True}}})
    [check] = [v for v in validations(policy) if v.code == "PG313"]
    assert check.message == (
        "no RuntimeClass is admitted: controls.runtime.runtime_classes maps none to runsc")
    pod = pod_of(CASES / "hardened.yaml")
    pod["spec"]["runtimeClassName"] = "gvisor"
    assert codes_of(Admission(policy).rejections(pod)) == {"PG313"}
    assert "PG313" not in {v.code for v in validations(load_policy("sandbox"))}


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
        "ValidatingAdmissionPolicyBinding", "ValidatingAdmissionPolicy",
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
                     "ValidatingAdmissionPolicyBinding", "ValidatingAdmissionPolicy",
                     "ValidatingAdmissionPolicyBinding"]
    target = tmp_path / "guard.yaml"
    written = runner.invoke(app, ["policy", "export", "sandbox", "-o", str(target)])
    assert written.exit_code == 0 and "paracle-sandboxes" in target.read_text()
    wrong = runner.invoke(app, ["policy", "export", "--format", "helm"])
    assert wrong.exit_code == 2 and "expected kubernetes" in wrong.stderr
    bad = runner.invoke(app, ["policy", "export", "--namespace", "Bad_NS"])
    assert bad.exit_code == 2 and "not a valid namespace" in bad.stderr


# --- Agent Sandbox resources ------------------------------------------------------------

AGENT_SANDBOX = CASES.parent / "agent_sandbox"


def sandbox_resource(text: str) -> dict[str, Any]:
    (found,) = [d for d in yaml.safe_load_all(text)
                if d and d["kind"] in ("Sandbox", "SandboxTemplate")]
    return found


@pytest.fixture(scope="module")
def sandbox_admission(sandbox: Policy) -> SandboxAdmission:
    return SandboxAdmission(sandbox)


def _codes(messages: list[str]) -> set[str]:
    return {message.split(" ", 1)[0] for message in messages}


@pytest.mark.parametrize("form", ["Sandbox", "SandboxTemplate"])
@pytest.mark.parametrize("case", ["hardened", *sorted(ADMISSION_EXPECTED)])
def test_agent_sandbox_resources_get_the_pod_s_verdict(sandbox_admission: SandboxAdmission,
                                                       case: str, form: str) -> None:
    from tests.sources.test_k8s_agent_sandbox import as_agent_sandbox

    text = as_agent_sandbox((CASES / f"{case}.yaml").read_text(), form, "v1beta1")
    assert _codes(sandbox_admission.rejections(sandbox_resource(text))) == (
        ADMISSION_EXPECTED.get(case, set()))


@pytest.mark.parametrize(("folder", "expected"), [
    ("hardened", {}),
    ("published", {
        # The published template: no securityContext, no tag, an API key from a Secret
        # (admission judges the variable's name), and a managed policy that lets DNS and
        # HTTPS out and anyone in.
        # No runAsGroup and no supplementalGroupsPolicy: PG105 and PG811 as well.
        "template.yaml": {"PG102", "PG105", "PG201", "PG301", "PG304", "PG501", "PG601",
                          "PG701", "PG702", "PG802", "PG804", "PG810", "PG811"},
        # The bare Sandbox: the same, less the template's own, plus the token.
        "sandbox.yaml": {"PG102", "PG105", "PG201", "PG301", "PG304", "PG701", "PG801",
                         "PG802", "PG804", "PG811"},
    }),
])
def test_the_example_fixtures(sandbox_admission: SandboxAdmission, folder: str,
                              expected: dict[str, set[str]]) -> None:
    for name in ("template.yaml", "sandbox.yaml"):
        resource = sandbox_resource((AGENT_SANDBOX / folder / name).read_text())
        assert _codes(sandbox_admission.rejections(resource)) == expected.get(name, set()), name


TEMPLATE_POLICIES = {
    "{}": True,
    "{egress: []}": True,
    "{ingress: [{from: [{podSelector: {matchLabels: {app: sandbox-router}}}]}]}": True,
    "{ingress: [{from: [{podSelector: {matchExpressions: [{key: app, operator: Exists}]}}]}]}":
        True,
    "{egress: [{ports: [{port: 443}]}]}": False,
    "{ingress: [{ports: [{port: 8501}]}]}": False,
    "{ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/8}}]}]}": False,
    "{ingress: [{from: [{podSelector: {}}]}]}": False,
    "{ingress: [{from: []}]}": False,
}


@pytest.mark.parametrize(("rules", "isolated"), TEMPLATE_POLICIES.items())
def test_a_template_s_network_policy_is_judged_as_the_lint_judges_it(
        tmp_path: Path, sandbox_admission: SandboxAdmission, rules: str, isolated: bool) -> None:
    from paracle_guard.sources.k8s import load_manifests

    hardened = (AGENT_SANDBOX / "hardened" / "template.yaml").read_text()
    template = sandbox_resource(hardened)
    template["spec"]["networkPolicy"] = yaml.safe_load(rules)
    admitted = "PG702" not in _codes(sandbox_admission.rejections(template))
    path = tmp_path / "template.yaml"
    path.write_text(yaml.safe_dump(template))
    (subject,) = load_manifests([path])[:1]
    assert subject.runtime is not None
    assert admitted is isolated is (subject.runtime.network_mode == "none")


def test_templates_may_leave_the_token_to_their_controller(
        sandbox_admission: SandboxAdmission) -> None:
    for name, unset_admitted in (("template.yaml", True), ("sandbox.yaml", False)):
        resource = sandbox_resource((AGENT_SANDBOX / "hardened" / name).read_text())
        del resource["spec"]["podTemplate"]["spec"]["automountServiceAccountToken"]
        assert ("PG801" not in _codes(sandbox_admission.rejections(resource))) is (
            unset_admitted)
    unmanaged = sandbox_resource((AGENT_SANDBOX / "published" / "template.yaml").read_text())
    unmanaged["spec"]["networkPolicyManagement"] = "Unmanaged"
    assert "PG702" not in _codes(sandbox_admission.rejections(unmanaged))
    del unmanaged["spec"]["networkPolicyManagement"], unmanaged["spec"]["networkPolicy"]
    # Managed by default, with the controller's default policy: out to the internet.
    assert "PG702" in _codes(sandbox_admission.rejections(unmanaged))


def test_a_projected_token_is_refused_in_a_template_too(
        tmp_path: Path, sandbox_admission: SandboxAdmission) -> None:
    from paracle_guard.sources.k8s import load_manifests
    from tests.runtime_containers import sandbox_plan

    for name in ("template.yaml", "sandbox.yaml"):
        resource = sandbox_resource((AGENT_SANDBOX / "hardened" / name).read_text())
        assert "PG801" not in _codes(sandbox_admission.rejections(resource))
        spec = resource["spec"]["podTemplate"]["spec"]
        spec.setdefault("volumes", []).append(
            {"name": "api", "projected": {"sources": [{"serviceAccountToken": {"path": "t"}}]}})
        assert "PG801" in _codes(sandbox_admission.rejections(resource))
        path = tmp_path / name
        path.write_text(yaml.safe_dump(resource))
        assert any("projects a serviceAccountToken" in finding.message
                   for subject in load_manifests([path]) if subject.runtime is not None
                   for finding in sandbox_plan().evaluate(subject).findings)


def test_the_agent_sandbox_policy_matches_both_kinds_in_every_served_version(
        sandbox: Policy) -> None:
    from tests.agent_sandbox_crds import crd, served_versions

    vap = export_kubernetes(sandbox, "agents")[4]
    rules = vap["spec"]["matchConstraints"]["resourceRules"]
    for kind, rule in zip(("Sandbox", "SandboxTemplate"), rules, strict=True):
        names = crd(kind)["spec"]
        assert rule["apiGroups"] == [names["group"]]
        assert rule["resources"] == [names["names"]["plural"]]
        assert tuple(rule["apiVersions"]) == served_versions(kind)
    messages = [v["message"] for v in vap["spec"]["validations"]]
    assert all("object.spec.podTemplate" not in m for m in messages)
    for check in vap["spec"]["validations"]:
        assert "object.metadata" not in check["expression"]
        assert "object.spec.containers" not in check["expression"]


def test_only_what_a_pod_template_has_is_rewritten() -> None:
    assert on_pod_template("has(object.spec.hostPID)") == (
        "has(object.spec.podTemplate.spec.hostPID)")
    with pytest.raises(ValueError, match=r"object\.metadata\.name has no equivalent"):
        on_pod_template("object.metadata.name != ''")


@pytest.mark.parametrize("form", ["Sandbox", "SandboxTemplate"])
def test_agent_sandbox_resources_need_the_gvisor_runtime_class(form: str) -> None:
    from tests.sources.test_k8s_agent_sandbox import as_agent_sandbox

    checks = SandboxAdmission(load_policy("sandbox-gvisor"))
    resource = sandbox_resource(as_agent_sandbox((CASES / "hardened.yaml").read_text(), form,
                                                 "v1beta1"))
    assert _codes(checks.rejections(resource)) == {"PG313"}
    resource["spec"]["podTemplate"]["spec"]["runtimeClassName"] = "gvisor"
    assert checks.rejections(resource) == []


# --- the translations come from the registry ---------------------------------------------


def test_the_export_names_no_rule_itself() -> None:
    # Every code and name in the exported policy comes from a rule's registration.
    import paracle_guard.admission as admission_module
    source = Path(admission_module.__file__).read_text()
    assert not re.findall(r"PG[0-9]{3}", source.split('"""', 2)[2])
    # ("privileged" is also a Pod Security Standard's level, which the export names.)
    names = {rule.name for rule in all_rules() if "-" in rule.name}
    assert not [name for name in names if f'"{name}"' in source]
    for check in validations(load_policy("sandbox")):
        found = find_rule(check.code)
        assert found is not None and found.name == check.name and found.admission is not None


def test_the_policy_package_reads_no_rule_and_no_source() -> None:
    policy_package = Path(__file__).resolve().parents[1] / "paracle_guard" / "policy"
    for module in policy_package.glob("*.py"):
        imported = [node.module or "" for node in ast.walk(ast.parse(module.read_text()))
                    if isinstance(node, ast.ImportFrom)]
        assert not [name for name in imported
                    if name.startswith(("paracle_guard.rules", "paracle_guard.sources"))], module


def test_the_policy_s_own_lists_reach_the_admission_policy() -> None:
    policy = Policy.model_validate({"controls": {
        "privileges": {"allowed_sysctls": ["kernel.msgmax"]},
        "kubernetes": {"allowed_volume_types": ["emptyDir", "nfs"]}}})
    checks = Admission(policy)
    pod = pod_of(CASES / "hardened.yaml")
    pod["spec"]["securityContext"]["sysctls"] = [{"name": "kernel.msgmax", "value": "1"}]
    pod["spec"]["volumes"].append({"name": "shared", "nfs": {"server": "n", "path": "/"}})
    assert codes_of(checks.rejections(pod)) == set()
    pod["spec"]["securityContext"]["sysctls"] = [{"name": "net.ipv4.tcp_syncookies",
                                                  "value": "1"}]
    pod["spec"]["volumes"].append({"name": "config", "configMap": {"name": "c"}})
    assert codes_of(checks.rejections(pod)) == {"PG309", "PG805"}
