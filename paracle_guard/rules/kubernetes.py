"""Kubernetes-only rules: Pod settings that Docker has no word for.

Everything a Pod shares with a Docker container (user, read-only root,
capabilities, privilege escalation, host namespaces, mounts, limits...) is
judged by the container rules through the Subject's RuntimeConfig. These rules
read ``subject.kubernetes``: the service-account token, the kubelet's
non-root check, the seccomp default, the volume types and host ports of the
Pod Security Standards, and the pids limit that only a node can set. The
image a container runs is judged by the image rules (PG501, PG502), which
PG807 and PG809 were merged into.
"""

from __future__ import annotations

from collections.abc import Iterator

from paracle_guard.cel import (
    POD,
    POD_TEMPLATE,
    CelCheck,
    container_has,
    effective_required,
    every_container,
    pod_has,
)
from paracle_guard.policy.models import Controls
from paracle_guard.rules.base import Admission, Violation, rule
from paracle_guard.rules.network import no_host_port_on_admission
from paracle_guard.severity import Severity
from paracle_guard.subject import Subject


def _no_projected_token(spec: str) -> str:
    """No projected volume of the pod ``spec`` carries a service-account token."""
    return (f"(!has({spec}.volumes) || {spec}.volumes.all(v, !has(v.projected) || "
            "!has(v.projected.sources) || "
            "v.projected.sources.all(s, !has(s.serviceAccountToken))))")


def _token_on_admission(controls: Controls) -> CelCheck:
    return CelCheck("has(object.spec.automountServiceAccountToken) && "
                    "object.spec.automountServiceAccountToken == false && "
                    + _no_projected_token("object.spec"),
                    "the pod must set automountServiceAccountToken: false and project no "
                    "serviceAccountToken volume")


def _template_token_on_admission(controls: Controls) -> CelCheck:
    # As paracle-guard k8s reads a template: its controllers make the token false.
    spec = f"{POD_TEMPLATE}.spec"
    return CelCheck(
        f"(has({spec}.automountServiceAccountToken) ? "
        f"{spec}.automountServiceAccountToken == false : object.kind == 'SandboxTemplate')"
        f" && {_no_projected_token(spec)}",
        "the pod template must set automountServiceAccountToken: false (a "
        "SandboxTemplate may leave it unset: its controllers make it false) and project "
        "no serviceAccountToken volume")


@rule(
    code="PG801",
    name="service-account-token",
    severity=Severity.ERROR,
    kinds=("k8s",),
    summary=("The pod gets a service-account token: automountServiceAccountToken is not "
             "false, or a projected volume carries one"),
    fix="Set automountServiceAccountToken: false in the pod spec",
    rationale=(
        "Unless the pod says otherwise, the kubelet mounts a token of the pod's service "
        "account at /var/run/secrets/kubernetes.io/serviceaccount: credentials for the "
        "cluster's API server, handed to whatever code runs in the sandbox. A ServiceAccount "
        "may turn it off too, but the manifest cannot show that and the pod's own setting "
        "wins, so only the pod's false counts. A projected volume with a "
        "serviceAccountToken source mounts a token whatever that setting says."
    ),
    admission=Admission(pod=_token_on_admission, pod_template=_template_token_on_admission),
)
def service_account_token(subject: Subject, controls: Controls) -> Iterator[Violation]:
    facts = subject.kubernetes
    if facts is None:
        return
    if facts.automount_service_account_token is not False:
        state = "true" if facts.automount_service_account_token else "not set"
        yield Violation(
            message=f"automountServiceAccountToken is {state}: the pod gets an API token",
            location=facts.location_of("automount_service_account_token"),
        )
    for volume in facts.token_volumes:
        yield Violation(
            message=(f"{volume.value} projects a serviceAccountToken: the pod gets an API "
                     "token whatever automountServiceAccountToken says"),
            location=volume.location,
            fix="Remove the serviceAccountToken source from the projected volume",
        )


def _non_root_on_admission(controls: Controls) -> CelCheck | None:
    if controls.user.allow_root:
        return None
    return CelCheck(every_container(effective_required("runAsNonRoot", "{} == true")),
                    "runAsNonRoot must be true for every container")


@rule(
    code="PG802",
    name="run-as-non-root-not-set",
    severity=Severity.ERROR,
    kinds=("k8s",),
    summary="runAsNonRoot is not true for the container (pod or container securityContext)",
    fix="Set securityContext.runAsNonRoot: true on the pod (or on every container)",
    rationale=(
        "runAsNonRoot: true makes the kubelet refuse to start the container as uid 0, "
        "whatever the image or a later edit of runAsUser says. The restricted Pod Security "
        "Standard requires it, so a pod without it is also refused by a namespace that "
        "enforces restricted."
    ),
    references=("Kubernetes Pod Security Standards (restricted): runAsNonRoot",),
    admission=Admission(pod=_non_root_on_admission),
)
def run_as_non_root_not_set(subject: Subject, controls: Controls) -> Iterator[Violation]:
    facts = subject.kubernetes
    if facts is None or controls.user.allow_root or facts.run_as_non_root:
        return
    state = "false" if facts.run_as_non_root is False else "not set"
    yield Violation(message=f"runAsNonRoot is {state}: nothing stops uid 0 at start",
                    location=facts.location_of("run_as_non_root"))


def _proven_user_on_admission(controls: Controls) -> CelCheck | None:
    # With allowed uids, uid-not-allowed (PG102) already requires runAsUser.
    if controls.user.allow_root or controls.user.allowed_uids:
        return None
    return CelCheck(every_container(effective_required("runAsUser", "{} > 0")),
                    "runAsUser must be set, so the uid is proven without the image")


@rule(
    code="PG803",
    name="unprovable-user",
    severity=Severity.WARNING,
    kinds=("k8s",),
    summary="runAsNonRoot is true but runAsUser is not set: the kubelet must prove it from "
            "the image",
    fix="Set securityContext.runAsUser (and runAsGroup) to the numeric uid the image runs as",
    rationale=(
        "Without runAsUser the image's USER decides. The kubelet can only prove a numeric "
        "USER non-root: a named one (USER app) makes the pod fail at start with "
        "CreateContainerConfigError, and a numeric one is a uid the manifest does not show, "
        "so file ownership and the policy's allowed uids cannot be checked."
    ),
    references=("Kubernetes Pod Security Standards (restricted): runAsUser",),
    admission=Admission(pod=_proven_user_on_admission),
)
def unprovable_user(subject: Subject, controls: Controls) -> Iterator[Violation]:
    facts = subject.kubernetes
    if facts is None or controls.user.allow_root:
        return
    if facts.run_as_non_root and facts.run_as_user is None:
        yield Violation(
            message="runAsUser is not set: the image's USER decides, and a named USER cannot "
                    "be proven non-root by the kubelet",
            location=facts.location_of("run_as_non_root"),
        )


def _seccomp_on_admission(controls: Controls) -> CelCheck:
    return CelCheck(
        every_container(f"{container_has('seccompProfile')} || {pod_has('seccompProfile')}"),
        "a seccompProfile (RuntimeDefault or Localhost) must be set")


@rule(
    code="PG804",
    name="seccomp-not-set",
    severity=Severity.ERROR,
    kinds=("k8s",),
    summary="No seccompProfile is set on the pod or the container",
    fix="Set securityContext.seccompProfile.type: RuntimeDefault on the pod",
    rationale=(
        "Unlike Docker, the kubelet runs containers without any seccomp filter unless the "
        "pod asks for one (or every node enables SeccompDefault, which the manifest cannot "
        "show). The restricted Pod Security Standard requires RuntimeDefault or Localhost."
    ),
    references=("Kubernetes Pod Security Standards (restricted): seccomp",),
    admission=Admission(pod=_seccomp_on_admission),
)
def seccomp_not_set(subject: Subject, controls: Controls) -> Iterator[Violation]:
    facts = subject.kubernetes
    if facts is None or facts.seccomp_profile is not None:
        return
    yield Violation(message="no seccompProfile is set, and the kubelet's default is unconfined",
                    location=facts.location_of("seccomp_profile"))


def _volume_types_on_admission(controls: Controls) -> CelCheck:
    allowed = sorted(controls.kubernetes.allowed_volume_types)
    volume_types = " || ".join(f"has(v.{kind})" for kind in allowed)
    return CelCheck(
        f"!has(object.spec.volumes) || object.spec.volumes.all(v, {volume_types or 'false'})",
        "only " + (", ".join(allowed) or "no") + " volumes are allowed (no "
        "hostPath: PG307's sensitive paths included)")


@rule(
    code="PG805",
    name="restricted-volume-type",
    severity=Severity.ERROR,
    kinds=("k8s",),
    summary="The pod has a volume type the restricted Pod Security Standard does not allow "
            "(hostPath, nfs, iscsi...)",
    fix="Use emptyDir, configMap, secret, projected, downwardAPI, csi, ephemeral or "
        "persistentVolumeClaim volumes only",
    rationale=(
        "hostPath exposes the node's filesystem; the in-tree network and block volume types "
        "mount storage with the node's credentials, outside the cluster's storage policy. "
        "The restricted standard allows only the types listed in the fix; the policy's "
        "controls.kubernetes.allowed_volume_types holds that list."
    ),
    references=("Kubernetes Pod Security Standards (restricted): volume types",
                "Kubernetes Pod Security Standards (baseline): HostPath volumes"),
    admission=Admission(pod=_volume_types_on_admission),
)
def restricted_volume_type(subject: Subject, controls: Controls) -> Iterator[Violation]:
    facts = subject.kubernetes
    if facts is None:
        return
    allowed = set(controls.kubernetes.allowed_volume_types)
    for volume in facts.volumes:
        if volume.type not in allowed:
            yield Violation(
                message=f"{volume.type} volume {volume.name} is not allowed by the restricted "
                        "standard",
                location=volume.location)


def _host_port_on_admission(controls: Controls) -> CelCheck | None:
    # Under network mode none a hostPort is published-port's (PG311) to refuse.
    return None if controls.network.mode == "none" else no_host_port_on_admission(controls)


@rule(
    code="PG806",
    name="host-port",
    severity=Severity.WARNING,
    kinds=("k8s",),
    summary="A container port is bound on the node (hostPort)",
    fix="Remove hostPort; expose the pod through a Service instead",
    rationale=(
        "A hostPort binds a port of the node itself, bypassing Services and NetworkPolicies "
        "on some network plugins, and ties the pod to nodes where the port is free. When the "
        "policy allows no network, published-port (PG311) reports it instead."
    ),
    references=("Kubernetes Pod Security Standards (baseline): host ports",),
    admission=Admission(pod=_host_port_on_admission, listed_after="PG311"),
)
def host_port(subject: Subject, controls: Controls) -> Iterator[Violation]:
    facts = subject.kubernetes
    if facts is None or controls.network.mode == "none":
        return
    for port in facts.host_ports:
        yield Violation(message=f"container port {port.container_port}/{port.protocol} is bound "
                                f"on the node's port {port.host_port}", location=port.location)


@rule(
    code="PG808",
    name="pids-limit-not-in-manifest",
    severity=Severity.INFO,
    kinds=("k8s",),
    summary="The policy sets a pids limit, which a pod spec cannot carry",
    fix="Set the kubelet's podPidsLimit on every node that runs sandboxes to at most the "
        "policy's controls.resources.pids",
    rationale=(
        "Kubernetes has no per-pod process limit in the pod spec; the kubelet applies "
        "podPidsLimit to every pod on its node. paracle-guard cannot see node settings, so it "
        "says so rather than pass the limit silently or fail every manifest."
    ),
    references=("CIS Docker Benchmark v1.6.0 5.29",),
)
def pids_limit_not_in_manifest(subject: Subject, controls: Controls) -> Iterator[Violation]:
    facts = subject.kubernetes
    if facts is None or controls.resources.pids is None:
        return
    yield Violation(
        message=f"the pids limit ({controls.resources.pids}) is the node's podPidsLimit, "
                "which a manifest cannot show",
        location=facts.location_of("pod"),
    )


def _secret_as_env_on_admission(controls: Controls) -> CelCheck:
    return CelCheck(
        every_container(
            "(!has(c.envFrom) || c.envFrom.all(e, !has(e.secretRef))) && "
            "(!has(c.env) || c.env.all(e, !has(e.valueFrom) || !has(e.valueFrom.secretKeyRef)))"),
        "Secrets must be mounted as files, not put into the environment")


@rule(
    code="PG810",
    name="secret-as-env",
    severity=Severity.WARNING,
    kinds=("k8s",),
    summary="A Secret is put into the environment (envFrom secretRef, env valueFrom "
            "secretKeyRef)",
    fix="Mount the Secret as a read-only volume and let the program read the file",
    rationale=(
        "Environment variables are inherited by every child process, written into crash "
        "dumps and logs, and readable in /proc/PID/environ by anything running as the same "
        "user: in a sandbox, by the untrusted code itself. A mounted file can be read by "
        "the one program that needs it."
    ),
    references=("CIS Docker Benchmark v1.6.0 4.10",),
    admission=Admission(pod=_secret_as_env_on_admission),
)
def secret_as_env(subject: Subject, controls: Controls) -> Iterator[Violation]:
    facts = subject.kubernetes
    if facts is None:
        return
    for secret in facts.secret_env:
        yield Violation(message=f"{secret.value} is put into the environment",
                        location=secret.location)


def _strict_groups_on_admission(controls: Controls) -> CelCheck | None:
    if controls.user.allow_root_group:
        return None
    return CelCheck(f"{pod_has('supplementalGroupsPolicy')} && "
                    f"{POD}.supplementalGroupsPolicy == 'Strict'",
                    "supplementalGroupsPolicy must be Strict, so no group comes from the image")


@rule(
    code="PG811",
    name="supplemental-groups-merged",
    severity=Severity.WARNING,
    kinds=("k8s",),
    summary="supplementalGroupsPolicy is not Strict: the image's /etc/group memberships are "
            "added to the process",
    fix="Set securityContext.supplementalGroupsPolicy: Strict on the pod (Kubernetes 1.31+; "
        "on by default from 1.33)",
    rationale=(
        "With the default policy (Merge) containerd and CRI-O add every group the image's "
        "/etc/group lists the container's user in, on top of runAsGroup, supplementalGroups "
        "and fsGroup. A manifest cannot show those groups, so an image that puts its user in "
        "group 0 (or in the group of a mounted socket) gets it silently. Strict keeps exactly "
        "the groups the pod names; a node whose runtime cannot honour it refuses the pod "
        "(Kubernetes KEP-3619)."
    ),
    admission=Admission(pod=_strict_groups_on_admission, listed_after="PG105"),
)
def supplemental_groups_merged(subject: Subject, controls: Controls) -> Iterator[Violation]:
    facts = subject.kubernetes
    if facts is None or controls.user.allow_root_group:
        return
    if facts.supplemental_groups_policy == "Strict":
        return
    state = facts.supplemental_groups_policy or "not set (Merge)"
    yield Violation(
        message=f"supplementalGroupsPolicy is {state}: the groups the image's /etc/group lists "
                "the user in are added, and the manifest cannot show them",
        location=facts.location_of("supplemental_groups_policy"),
    )
