"""A policy, exported for the cluster's own admission control.

``paracle-guard policy export --format kubernetes`` writes, for one namespace:

- the Namespace with Pod Security Admission labels (enforce, audit and warn) at
  the strictest Pod Security Standard the policy is at least as strict as
  (``restricted`` for the sandbox policy);
- a default-deny NetworkPolicy when the policy's network mode is ``none``
  (admission control cannot see networks; this is what makes PG702 true);
- a ValidatingAdmissionPolicy whose CEL validations encode the policy's
  controls, each message starting with the code and name of the rule that
  ``paracle-guard k8s`` reports for the same manifest, and its binding to the
  namespace.

Each validation is the admission translation a rule carries beside its check
(``admission=`` in ``rules/base.py``, written with ``paracle_guard.cel``): this
module only gathers them from the registry, so a rule and its admission twin are
read, changed and reviewed together. It lives outside ``policy/`` because it
reads the rules, and the policy format must not.

The validations judge Pods (and ephemeral containers added later): every
controller's pods pass through there, so Deployments and Jobs are covered
when their pods are created. Where the exact reading needs the image (the
kubelet's non-root check) or a node setting (the pids limit), the
expressions ask for what the manifest can prove instead, as the rules do.

A second ValidatingAdmissionPolicy applies the same validations to the pod
template (``object.spec.podTemplate``) of the Agent Sandbox kinds a user
writes, ``Sandbox`` and ``SandboxTemplate``, so a bad one is refused when it is
applied rather than when its controller first makes a pod. A rule may read
differently there (its ``pod_template`` translation), as ``paracle-guard k8s``
does. Warm pools and claims make Sandboxes, which are judged when their
controllers create them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from paracle_guard.cel import CONTAINERS, CelCheck, on_pod_template
from paracle_guard.policy.models import Controls, Policy
from paracle_guard.rules.base import Rule, all_rules

PSA_LABEL = "pod-security.kubernetes.io/"
DEFAULT_NAMESPACE = "paracle-sandboxes"
_NAME = re.compile(r"[^a-z0-9-]+")
_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
# The capabilities the baseline standard lets a pod add.
BASELINE_CAPABILITIES = frozenset({
    "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
    "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
})

Level = Literal["restricted", "baseline", "privileged"]


@dataclass(frozen=True)
class Validation:
    code: str
    name: str
    expression: str
    message: str

    def as_manifest(self) -> dict[str, str]:
        return {"expression": self.expression, "message": f"{self.code} {self.name}: "
                f"{self.message}"}


def _translated(rules: list[Rule]) -> list[Rule]:
    """The rules with an admission translation, in the order the export lists them."""
    def place(rule: Rule) -> tuple[str, bool, str]:
        assert rule.admission is not None
        after = rule.admission.listed_after
        return (after or rule.code, after is not None, rule.code)

    return sorted((r for r in rules if r.admission is not None), key=place)


def _gather(controls: Controls,
            translate: Callable[[Rule], Callable[[Controls], CelCheck | None] | None]
            ) -> list[Validation]:
    found: list[Validation] = []
    for rule in _translated(all_rules()):
        translation = translate(rule)
        check = translation(controls) if translation is not None else None
        if check is not None:
            found.append(Validation(rule.code, rule.name, check.expression, check.message))
    return found


def validations(policy: Policy) -> list[Validation]:
    """One CEL validation per rule whose control the policy sets, for a Pod."""
    return _gather(policy.controls, lambda rule: rule.admission.pod if rule.admission else None)


def _on_template(rule: Rule) -> Callable[[Controls], CelCheck | None] | None:
    admission = rule.admission
    if admission is None:
        return None
    if admission.pod_template is not None:
        return admission.pod_template
    pod = admission.pod
    if pod is None:
        return None

    def read_at_template(controls: Controls) -> CelCheck | None:
        check = pod(controls)
        return None if check is None else CelCheck(on_pod_template(check.expression),
                                                   check.message)
    return read_at_template


def agent_sandbox_validations(policy: Policy) -> list[Validation]:
    """``validations(policy)`` for the pod template of a Sandbox or a SandboxTemplate."""
    return _gather(policy.controls, _on_template)


def pss_level(policy: Policy) -> Level:
    """The strictest Pod Security Standard that admits everything the policy allows."""
    controls = policy.controls
    added = {name.removeprefix("CAP_") for name in controls.capabilities.allowed_add}
    if (controls.privileges.privileged or controls.privileges.host_namespaces
            or not added <= BASELINE_CAPABILITIES):
        return "privileged"
    if (controls.user.allow_root or not controls.capabilities.drop_all
            or not controls.privileges.no_new_privileges or not added <= {"NET_BIND_SERVICE"}):
        return "baseline"
    return "restricted"


AGENT_SANDBOX_RULES = [
    {"apiGroups": ["agents.x-k8s.io"], "apiVersions": ["v1alpha1", "v1beta1"],
     "operations": ["CREATE", "UPDATE"], "resources": ["sandboxes"]},
    {"apiGroups": ["extensions.agents.x-k8s.io"], "apiVersions": ["v1alpha1", "v1beta1"],
     "operations": ["CREATE", "UPDATE"], "resources": ["sandboxtemplates"]},
]


def _admission_policy(name: str, annotations: dict[str, str], rules: list[dict[str, Any]],
                      containers: str, checks: list[Validation]) -> dict[str, Any]:
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name, "annotations": annotations},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {"resourceRules": rules},
            "variables": [{"name": "containers", "expression": containers}],
            "validations": [v.as_manifest() for v in checks],
        },
    }


def _binding(name: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": f"{name}-{namespace}"[:253]},
        "spec": {
            "policyName": name,
            "validationActions": ["Deny"],
            "matchResources": {"namespaceSelector": {
                "matchLabels": {"kubernetes.io/metadata.name": namespace}}},
        },
    }


def export_kubernetes(policy: Policy, namespace: str = DEFAULT_NAMESPACE) -> list[dict[str, Any]]:
    """The objects that make a namespace enforce ``policy``, in the order to apply them."""
    if not _NAMESPACE.match(namespace):
        raise ValueError(f"{namespace!r} is not a valid namespace name")
    level = pss_level(policy)
    labels = {"app.kubernetes.io/managed-by": "paracle-guard"}
    for mode in ("enforce", "audit", "warn"):
        labels[f"{PSA_LABEL}{mode}"] = level
        labels[f"{PSA_LABEL}{mode}-version"] = "latest"
    name = "paracle-guard-" + (_NAME.sub("-", policy.metadata.name.lower()).strip("-") or "policy")
    name = name[:200]
    objects: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace,
                                                               "labels": labels}},
    ]
    if policy.controls.network.mode == "none":
        objects.append({
            "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "paracle-guard-deny-all", "namespace": namespace},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
        })
    annotations = {"paracle-guard.io/policy": policy.metadata.name}
    if policy.sha256:
        annotations["paracle-guard.io/policy-sha256"] = policy.sha256
    pods = [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
             "resources": ["pods", "pods/ephemeralcontainers"]}]
    sandboxes = f"{name[:186]}-agent-sandbox"
    objects += [
        _admission_policy(name, annotations, pods, CONTAINERS, validations(policy)),
        _binding(name, namespace),
        _admission_policy(sandboxes, annotations, AGENT_SANDBOX_RULES,
                          on_pod_template(CONTAINERS), agent_sandbox_validations(policy)),
        _binding(sandboxes, namespace),
    ]
    return objects
