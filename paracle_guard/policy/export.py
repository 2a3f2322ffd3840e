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

The validations judge Pods (and ephemeral containers added later): every
controller's pods pass through there, so Deployments and Jobs are covered
when their pods are created. Where the exact reading needs the image (the
kubelet's non-root check) or a node setting (the pids limit), the
expressions ask for what the manifest can prove instead, as the rules do.

A second ValidatingAdmissionPolicy applies the same validations to the pod
template (``object.spec.podTemplate``) of the Agent Sandbox kinds a user
writes, ``Sandbox`` and ``SandboxTemplate``, so a bad one is refused when it is
applied rather than when its controller first makes a pod. Two validations read
differently there, as ``paracle-guard k8s`` does: a template may leave
``automountServiceAccountToken`` unset (its controllers make it false), and
under network mode ``none`` a template's managed ``networkPolicy`` must let
nothing out and only pods picked by labels in (or be ``Unmanaged``, so the
namespace's deny-all applies). Warm pools and claims make Sandboxes, which are
judged when their controllers create them.

Reuses the rules' own lists (safe sysctls, restricted volume types, native
resource prefixes) so that the two can never disagree.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from paracle_guard.policy.models import Policy

PSA_LABEL = "pod-security.kubernetes.io/"
DEFAULT_NAMESPACE = "paracle-sandboxes"
_NAME = re.compile(r"[^a-z0-9-]+")
_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
# The capabilities the baseline standard lets a pod add.
BASELINE_CAPABILITIES = frozenset({
    "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
    "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
})
_READ_ONLY_VOLUMES = ("configMap", "secret", "downwardAPI", "projected")

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


# CEL helpers -------------------------------------------------------------------------

CONTAINERS = (
    "object.spec.containers"
    " + (has(object.spec.initContainers) ? object.spec.initContainers : [])"
    " + (has(object.spec.ephemeralContainers) ? object.spec.ephemeralContainers : [])"
)
_POD = "object.spec.securityContext"


def cel(text: str) -> str:
    """A CEL string literal (JSON's escaping is CEL's for these characters)."""
    return json.dumps(text)


def cel_list(items: Sequence[str | int]) -> str:
    return "[" + ", ".join(cel(i) if isinstance(i, str) else str(i) for i in items) + "]"


def _container_has(field: str) -> str:
    return f"(has(c.securityContext) && has(c.securityContext.{field}))"


def _pod_has(field: str) -> str:
    return f"(has({_POD}) && has({_POD}.{field}))"


def _effective_required(field: str, test: str) -> str:
    """The container's ``field`` (else the pod's) must be set and pass ``test`` (``{}`` = value)."""
    return (f"{_container_has(field)} ? {test.format(f'c.securityContext.{field}')} : "
            f"({_pod_has(field)} && {test.format(f'{_POD}.{field}')})")


def _effective_if_set(field: str, test: str) -> str:
    """The container's ``field`` (else the pod's), when set, must pass ``test``."""
    return (f"{_container_has(field)} ? {test.format(f'c.securityContext.{field}')} : "
            f"(!{_pod_has(field)} || {test.format(f'{_POD}.{field}')})")


def _all(test: str) -> str:
    return f"variables.containers.all(c, {test})"


def _not_unconfined(field: str) -> str:
    return (f"!({_container_has(field)} && c.securityContext.{field}.type == 'Unconfined') && "
            f"!({_pod_has(field)} && {_POD}.{field}.type == 'Unconfined')")


def _no_projected_token(spec: str) -> str:
    """No projected volume of the pod ``spec`` carries a service-account token."""
    return (f"(!has({spec}.volumes) || {spec}.volumes.all(v, !has(v.projected) || "
            "!has(v.projected.sources) || "
            "v.projected.sources.all(s, !has(s.serviceAccountToken))))")


def _image_names(entry: str) -> list[str]:
    """Ways an image reference can start and still be under ``entry`` (a registry or prefix)."""
    wanted = entry.strip().lower().rstrip("/")
    if "/" not in wanted:
        return [wanted + "/"]
    names = [wanted]
    if wanted.startswith("docker.io/"):
        short = wanted.removeprefix("docker.io/")
        names.append(short)
        if short.startswith("library/"):
            names.append(short.removeprefix("library/"))
    return names


def _registry_test(allowed: Sequence[str]) -> str:
    alternatives: list[str] = []
    for entry in allowed:
        wanted = entry.strip().lower().rstrip("/")
        if wanted == "docker.io":
            # A reference with no registry part is docker.io's, as the runtimes read it.
            alternatives.append("!c.image.matches('^[^/]*[.:][^/]*/') && "
                                "!c.image.startsWith('localhost/')")
            alternatives.append("c.image.matches('^(index\\\\.|registry-1\\\\.)?docker\\\\.io/')")
            continue
        for name in _image_names(entry):
            if name.endswith("/"):
                alternatives.append(f"c.image.startsWith({cel(name)})")
            else:
                alternatives.append(f"c.image.matches({cel('^' + re.escape(name) + '([/:@]|$)')})")
    return " || ".join(f"({alternative})" for alternative in alternatives)


# The policy's controls as validations ----------------------------------------------------


def validations(policy: Policy) -> list[Validation]:
    """One CEL validation per control the policy sets, in rule-code order."""
    from paracle_guard.rules.privileges import SAFE_SYSCTLS
    from paracle_guard.sources.k8s import RESTRICTED_VOLUME_TYPES

    controls = policy.controls
    found: list[Validation] = []
    if not controls.user.allow_root:
        found.append(Validation(
            "PG101", "root-user", _all(_effective_if_set("runAsUser", "{} != 0")),
            "runAsUser must not be 0"))
    if controls.user.allowed_uids:
        found.append(Validation(
            "PG102", "uid-not-allowed",
            _all(_effective_required("runAsUser", "{} in " + cel_list(controls.user.allowed_uids))),
            "runAsUser must be set to one of " + ", ".join(map(str, controls.user.allowed_uids))))
    found.extend(_groups(policy))
    if controls.root_filesystem.read_only:
        found.append(Validation(
            "PG201", "writable-rootfs",
            _all(f"{_container_has('readOnlyRootFilesystem')} && "
                 "c.securityContext.readOnlyRootFilesystem == true"),
            "every container must set readOnlyRootFilesystem: true"))
        paths = [path.rstrip("/") or "/" for path in controls.root_filesystem.writable_paths]
        under = " || ".join(f"m.mountPath == {cel(p)} || m.mountPath.startsWith({cel(p + '/')})"
                            for p in paths) or "false"
        read_only_volume = " || ".join(f"has(v.{kind})" for kind in _READ_ONLY_VOLUMES)
        found.append(Validation(
            "PG202", "writable-path",
            _all("!has(c.volumeMounts) || c.volumeMounts.all(m, "
                 "(has(m.readOnly) && m.readOnly == true) || "
                 f"(has(object.spec.volumes) && object.spec.volumes.exists(v, v.name == m.name "
                 f"&& ({read_only_volume}))) || {under})"),
            "writable volume mounts must be under " + (", ".join(paths) or "no path")))
    found.append(Validation(
        "PG204", "unsafe-workdir",
        _all("!has(c.workingDir) || !c.workingDir.matches('^/(proc|sys|dev)(/|$)')"),
        "workingDir must not be under /proc, /sys or /dev"))
    if controls.capabilities.drop_all:
        found.append(Validation(
            "PG301", "capabilities-not-dropped",
            _all(f"{_container_has('capabilities')} && has(c.securityContext.capabilities.drop) "
                 "&& 'ALL' in c.securityContext.capabilities.drop"),
            "every container must drop ALL capabilities"))
    allowed_add = sorted({name.removeprefix("CAP_") for name in controls.capabilities.allowed_add})
    found.append(Validation(
        "PG302", "capability-added",
        _all(f"!{_container_has('capabilities')} || !has(c.securityContext.capabilities.add) || "
             f"c.securityContext.capabilities.add.all(a, a in {cel_list(allowed_add)})"),
        "capabilities.add may only list " + (", ".join(allowed_add) or "nothing")))
    if not controls.privileges.privileged:
        found.append(Validation(
            "PG303", "privileged",
            _all(f"!{_container_has('privileged')} || c.securityContext.privileged == false"),
            "privileged must not be true"))
    if controls.privileges.no_new_privileges:
        found.append(Validation(
            "PG304", "new-privileges-allowed",
            _all(f"{_container_has('allowPrivilegeEscalation')} && "
                 "c.securityContext.allowPrivilegeEscalation == false"),
            "every container must set allowPrivilegeEscalation: false"))
    if not controls.privileges.host_namespaces:
        found.append(Validation(
            "PG305", "host-namespace",
            " && ".join(f"!(has(object.spec.{key}) && object.spec.{key} == true)"
                        for key in ("hostPID", "hostIPC", "hostNetwork", "hostUsers")),
            "hostPID, hostIPC, hostNetwork and hostUsers must not be true"))
    found.append(Validation(
        "PG308", "device-access",
        _all("!has(c.resources) || !has(c.resources.limits) || c.resources.limits.all(k, "
             "!k.contains('/') || k.startsWith('kubernetes.io/') || k.startsWith('requests.') "
             "|| k.startsWith('hugepages-'))"),
        "device-plugin resources (nvidia.com/gpu...) must not be requested"))
    found.append(Validation(
        "PG309", "unsafe-sysctl",
        f"!{_pod_has('sysctls')} || {_POD}.sysctls.all(s, s.name in "
        f"{cel_list(sorted(SAFE_SYSCTLS))})",
        "only the Pod Security Standards' safe sysctls may be set"))
    port_code, port_name = (("PG311", "published-port") if controls.network.mode == "none"
                            else ("PG806", "host-port"))
    found.append(Validation(
        port_code, port_name,
        _all("!has(c.ports) || c.ports.all(p, !has(p.hostPort) || p.hostPort == 0)"),
        "hostPort must not be set"))
    found.append(Validation(
        "PG312", "unconfined-profile",
        _all(f"{_not_unconfined('seccompProfile')} && {_not_unconfined('appArmorProfile')} && "
             f"!({_container_has('procMount')} && c.securityContext.procMount == 'Unmasked') && "
             f"!({_container_has('seLinuxOptions')} && has(c.securityContext.seLinuxOptions.type) "
             "&& c.securityContext.seLinuxOptions.type in ['spc_t', 'unconfined_t']) && "
             f"!({_pod_has('seLinuxOptions')} && has({_POD}.seLinuxOptions.type) && "
             f"{_POD}.seLinuxOptions.type in ['spc_t', 'unconfined_t'])")
        + " && (!has(object.metadata.annotations) || object.metadata.annotations.all(k, "
        "!(k.startsWith('container.apparmor.security.beta.kubernetes.io/') && "
        "object.metadata.annotations[k] == 'unconfined')))",
        "seccomp and AppArmor must not be Unconfined, procMount not Unmasked, SELinux type "
        "not spc_t or unconfined_t"))
    found.extend(_runtime(policy))
    patterns = controls.secrets.env_name_patterns
    if patterns:
        names_clean = " && ".join(f"!e.name.matches({cel(p)})" for p in patterns)
        found.append(Validation(
            "PG601", "secret-in-env", _all(f"!has(c.env) || c.env.all(e, {names_clean})"),
            "environment variable names must not look like secrets"))
    found.extend(_limits(policy))
    found.append(Validation(
        "PG801", "service-account-token",
        "has(object.spec.automountServiceAccountToken) && "
        "object.spec.automountServiceAccountToken == false && "
        + _no_projected_token("object.spec"),
        "the pod must set automountServiceAccountToken: false and project no "
        "serviceAccountToken volume"))
    if not controls.user.allow_root:
        found.append(Validation(
            "PG802", "run-as-non-root-not-set",
            _all(_effective_required("runAsNonRoot", "{} == true")),
            "runAsNonRoot must be true for every container"))
        if not controls.user.allowed_uids:
            found.append(Validation(
                "PG803", "unprovable-user", _all(_effective_required("runAsUser", "{} > 0")),
                "runAsUser must be set, so the uid is proven without the image"))
    found.append(Validation(
        "PG804", "seccomp-not-set",
        _all(f"{_container_has('seccompProfile')} || {_pod_has('seccompProfile')}"),
        "a seccompProfile (RuntimeDefault or Localhost) must be set"))
    volume_types = " || ".join(f"has(v.{kind})" for kind in sorted(RESTRICTED_VOLUME_TYPES))
    found.append(Validation(
        "PG805", "restricted-volume-type",
        f"!has(object.spec.volumes) || object.spec.volumes.all(v, {volume_types})",
        "only " + ", ".join(sorted(RESTRICTED_VOLUME_TYPES)) + " volumes are allowed (no "
        "hostPath: PG307's sensitive paths included)"))
    digest = "c.image.matches('@sha256:[0-9a-f]{64}$')"
    if controls.base_image.require_digest:
        found.append(Validation("PG501", "unpinned-base-image", _all(digest),
                                "images must be pinned by digest (@sha256:...)"))
    elif controls.base_image.forbid_latest:
        found.append(Validation(
            "PG501", "unpinned-base-image",
            _all(f"{digest} || (c.image.matches(':[A-Za-z0-9_][A-Za-z0-9_.-]*$') && "
                 "!c.image.endsWith(':latest'))"),
            "images must have a tag other than latest, or a digest"))
    if controls.base_image.allowed_registries:
        found.append(Validation(
            "PG502", "untrusted-registry",
            _all(_registry_test(controls.base_image.allowed_registries)),
            "images must come from " + ", ".join(controls.base_image.allowed_registries)))
    found.append(Validation(
        "PG810", "secret-as-env",
        _all("(!has(c.envFrom) || c.envFrom.all(e, !has(e.secretRef))) && "
             "(!has(c.env) || c.env.all(e, !has(e.valueFrom) || !has(e.valueFrom.secretKeyRef)))"),
        "Secrets must be mounted as files, not put into the environment"))
    return found


def _runtime(policy: Policy) -> list[Validation]:
    """PG313: the Pod's RuntimeClass must be one the policy maps to an allowed handler.

    Admission sees the Pod, not the RuntimeClass it names, so only the classes
    ``controls.runtime.runtime_classes`` maps to an allowed handler are admitted.
    """
    runtime = policy.controls.runtime
    if not runtime.allowed:
        return []
    classes = sorted(name for name, handler in runtime.runtime_classes.items()
                     if handler in runtime.allowed)
    allowed = ", ".join(runtime.allowed)
    named = f"object.spec.runtimeClassName in {cel_list(classes)}"
    if runtime.required:
        expression = f"has(object.spec.runtimeClassName) && {named}"
    else:
        expression = f"!has(object.spec.runtimeClassName) || {named}"
    if classes:
        message = (f"runtimeClassName must be {' or '.join(classes)} (a RuntimeClass whose "
                   f"handler is {allowed})")
    else:
        message = (f"no RuntimeClass is admitted: controls.runtime.runtime_classes maps none "
                   f"to {allowed}")
    if not runtime.required:
        message += ", when set"
    return [Validation("PG313", "runtime-not-allowed", expression, message)]


def _pod_list_all(field: str, test: str) -> str:
    """Every entry of the pod's list ``field`` passes ``test`` (``{}`` = entry), if it is set."""
    return f"(!{_pod_has(field)} || {_POD}.{field}.all(g, {test.format('g')}))"


def _pod_if_set(field: str, test: str) -> str:
    return f"(!{_pod_has(field)} || {test.format(f'{_POD}.{field}')})"


def _groups(policy: Policy) -> list[Validation]:
    """PG104, PG105, PG811: the groups a pod's processes hold."""
    controls = policy.controls.user
    found: list[Validation] = []
    if not controls.allow_root_group:
        found.append(Validation(
            "PG104", "root-group",
            _all(_effective_if_set("runAsGroup", "{} != 0")) + " && "
            + _pod_list_all("supplementalGroups", "{} != 0") + " && "
            + _pod_if_set("fsGroup", "{} != 0"),
            "runAsGroup, supplementalGroups and fsGroup must not be 0"))
    if controls.allowed_gids:
        allowed = cel_list(controls.allowed_gids)
        listed = ", ".join(map(str, controls.allowed_gids))
        found.append(Validation(
            "PG105", "gid-not-allowed",
            _all(_effective_required("runAsGroup", "{} in " + allowed)) + " && "
            + _pod_list_all("supplementalGroups", "{} in " + allowed) + " && "
            + _pod_if_set("fsGroup", "{} in " + allowed),
            f"runAsGroup must be set to one of {listed}, and supplementalGroups and fsGroup "
            "may hold only those"))
    if not controls.allow_root_group:
        found.append(Validation(
            "PG811", "supplemental-groups-merged",
            f"{_pod_has('supplementalGroupsPolicy')} && "
            f"{_POD}.supplementalGroupsPolicy == 'Strict'",
            "supplementalGroupsPolicy must be Strict, so no group comes from the image"))
    return found


def _limits(policy: Policy) -> list[Validation]:
    from paracle_guard.units import parse_size

    limits = policy.controls.resources
    tests: list[str] = []
    described: list[str] = []
    if limits.memory is not None:
        ceiling = parse_size(limits.memory)
        tests.append(
            "has(c.resources) && has(c.resources.limits) && has(c.resources.limits.memory) && "
            f"quantity(c.resources.limits.memory).compareTo(quantity({cel(str(ceiling))})) <= 0 "
            # The kubelet reads a limit of 0 as no limit at all.
            "&& quantity(c.resources.limits.memory).compareTo(quantity('0')) > 0 "
            "&& (!has(c.resources.requests) || !has(c.resources.requests.memory) || "
            "quantity(c.resources.requests.memory).compareTo("
            "quantity(c.resources.limits.memory)) == 0)")
        described.append(f"a memory limit of at most {limits.memory} with the request equal "
                         "to it (no swap)")
    if limits.cpus is not None:
        millis = round(limits.cpus * 1000)
        tests.append(
            "has(c.resources) && has(c.resources.limits) && has(c.resources.limits.cpu) && "
            f"quantity(c.resources.limits.cpu).compareTo(quantity({cel(f'{millis}m')})) <= 0 "
            "&& quantity(c.resources.limits.cpu).compareTo(quantity('0')) > 0")
        described.append(f"a CPU limit of at most {limits.cpus:g}")
    if not tests:
        return []
    return [Validation("PG701", "missing-limits", _all(" && ".join(f"({t})" for t in tests)),
                       "every container needs " + " and ".join(described))]


def pss_level(policy: Policy) -> Level:
    """The strictest Pod Security Standard that admits everything the policy allows."""
    controls = policy.controls
    added = {name.removeprefix("CAP_") for name in controls.capabilities.allowed_add}
    if controls.privileges.privileged or controls.privileges.host_namespaces \
            or not added <= BASELINE_CAPABILITIES:
        return "privileged"
    if (controls.user.allow_root or not controls.capabilities.drop_all
            or not controls.privileges.no_new_privileges or not added <= {"NET_BIND_SERVICE"}):
        return "baseline"
    return "restricted"


# --- the same validations for Agent Sandbox pod templates --------------------------------

AGENT_SANDBOX_RULES = [
    {"apiGroups": ["agents.x-k8s.io"], "apiVersions": ["v1alpha1", "v1beta1"],
     "operations": ["CREATE", "UPDATE"], "resources": ["sandboxes"]},
    {"apiGroups": ["extensions.agents.x-k8s.io"], "apiVersions": ["v1alpha1", "v1beta1"],
     "operations": ["CREATE", "UPDATE"], "resources": ["sandboxtemplates"]},
]
_POD_TEMPLATE = "object.spec.podTemplate"
_OBJECT_PATH = re.compile(r"\bobject\.[A-Za-z]+(\.[A-Za-z]+)?")


def on_pod_template(expression: str) -> str:
    """A Pod's expression, for a resource whose pod is ``spec.podTemplate``."""
    for path in _OBJECT_PATH.finditer(expression):
        if not path.group().startswith(("object.spec.", "object.metadata.annotations")):
            # Only the spec and the annotations have a place in a pod template.
            raise ValueError(f"{path.group()} has no equivalent in a pod template")
    return (expression.replace("object.spec.", f"{_POD_TEMPLATE}.spec.")
            .replace("has(object.metadata.annotations)",
                     f"(has({_POD_TEMPLATE}.metadata) && "
                     f"has({_POD_TEMPLATE}.metadata.annotations))")
            .replace("object.metadata.annotations", f"{_POD_TEMPLATE}.metadata.annotations"))


def _labelled_pods_only(rules: str) -> str:
    """Every ingress rule of ``rules`` admits only pods picked by a label selector."""
    selects = ("((has(p.podSelector.matchLabels) && size(p.podSelector.matchLabels) > 0) || "
               "(has(p.podSelector.matchExpressions) && "
               "size(p.podSelector.matchExpressions) > 0))")
    return (f"(!has({rules}.ingress) || {rules}.ingress.all(r, has(r.from) && "
            f"size(r.from) > 0 && r.from.all(p, !has(p.ipBlock) && has(p.podSelector) && "
            f"{selects})))")


def agent_sandbox_validations(policy: Policy) -> list[Validation]:
    """``validations(policy)`` for the pod template of a Sandbox or a SandboxTemplate."""
    spec = f"{_POD_TEMPLATE}.spec"
    found: list[Validation] = []
    for check in validations(policy):
        if check.code != "PG801":
            found.append(Validation(check.code, check.name, on_pod_template(check.expression),
                                    check.message))
            continue
        found.append(Validation(
            "PG801", "service-account-token",
            f"(has({spec}.automountServiceAccountToken) ? "
            f"{spec}.automountServiceAccountToken == false : object.kind == 'SandboxTemplate')"
            f" && {_no_projected_token(spec)}",
            "the pod template must set automountServiceAccountToken: false (a "
            "SandboxTemplate may leave it unset: its controllers make it false) and project "
            "no serviceAccountToken volume"))
    if policy.controls.network.mode == "none":
        rules = "object.spec.networkPolicy"
        found.append(Validation(
            "PG702", "network-not-isolated",
            "object.kind != 'SandboxTemplate' || (has(object.spec.networkPolicyManagement) "
            "&& object.spec.networkPolicyManagement == 'Unmanaged') || "
            f"(has({rules}) && (!has({rules}.egress) || size({rules}.egress) == 0) && "
            f"{_labelled_pods_only(rules)})",
            "a SandboxTemplate's networkPolicy must allow no egress and let in only pods "
            "picked by labels (or be Unmanaged, under the namespace's deny-all)"))
    return found


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
