"""Kubernetes manifests: the same RunSpec the Docker backend creates, as a Pod or a Job.

``build_manifests`` turns a RunSpec into the Pod (or Job) and, when the
policy's network mode is ``none``, the NetworkPolicy that cuts it off (a Pod
always gets the cluster network otherwise). Every choice comes from the
RunSpec: numeric non-root user and group with ``runAsNonRoot`` and
``supplementalGroupsPolicy: Strict`` (no groups from the image), read-only root
filesystem, ``capabilities.drop: [ALL]``, ``allowPrivilegeEscalation: false``,
``seccompProfile: RuntimeDefault``, the policy's RuntimeClass
(``runtimeClassName``), no host namespaces, no service-account
token, the writable paths as memory-backed, size-limited ``emptyDir``
volumes, requests equal to limits (Guaranteed QoS, which never swaps),
``activeDeadlineSeconds`` from the timeout, and the image by digest. The same
pod spec can also be printed as an Agent Sandbox resource (``k8s_sandbox``).

What Kubernetes cannot express, and Docker did: ``noexec`` on /tmp (emptyDir
has no mount options), the IPC namespace ``none``, ulimits, the init process,
and the pids limit (the kubelet's ``podPidsLimit``, a node setting that rule
PG808 reminds of). The launcher never pretends otherwise.

Before anything is printed or submitted, the manifests are read back through
the Kubernetes source and judged by the same rules as ``paracle-guard k8s``;
a submitted Pod is judged again as the API server returns it, since admission
webhooks may have changed it (``k8s_cluster.KubernetesBackend``, which talks to
the API server with the optional extra ``paracle-guard[kubernetes]``).
"""

from __future__ import annotations

import math
import re
import secrets
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import yaml

from paracle_guard.engine import Plan
from paracle_guard.errors import InputError
from paracle_guard.launcher.k8s_sandbox import FORMS as SANDBOX_FORMS
from paracle_guard.launcher.k8s_sandbox import sandbox_objects
from paracle_guard.launcher.refusal import PolicyViolation
from paracle_guard.launcher.runspec import (
    LAUNCHER_LABEL,
    RunSpec,
    SandboxConfig,
    build_runspec,
)
from paracle_guard.location import Location
from paracle_guard.report.models import Report
from paracle_guard.rules.base_image import registry_allowed
from paracle_guard.sources.image_ref import parse_image_ref
from paracle_guard.subject import BaseImage

CONTAINER = "sandbox"
SANDBOX_LABEL = "paracle-guard.io/sandbox"
MANAGED_BY = {"app.kubernetes.io/managed-by": "paracle-guard"}
_DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
_MI = 1 << 20
_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")

Workload = Literal["pod", "job", "sandbox", "sandbox-template", "sandbox-claim"]


def pinned_image(reference: str, allowed_registries: Sequence[str]) -> str:
    """``reference`` when it names one image by digest from an allowed registry; else refused.

    A node pulls the image itself, so a tag could mean another image on every
    node; only a digest makes what was checked what runs.
    """
    if not _DIGEST.search(reference):
        raise PolicyViolation(
            f"--image {reference}: the kubernetes backend runs images by digest only "
            "(REPOSITORY@sha256:...), since every node pulls the image itself",
            key="--image",
        )
    parsed = parse_image_ref(reference)
    image = BaseImage(ref=reference, registry=parsed.registry, repository=parsed.repository,
                      tag=parsed.tag, digest=parsed.digest, stage=CONTAINER,
                      location=Location(path="--image"))
    if allowed_registries and not registry_allowed(image, list(allowed_registries)):
        raise PolicyViolation(
            f"--image {reference}: {parsed.registry} is not in "
            f"controls.base_image.allowed_registries ({', '.join(allowed_registries)})",
            key="controls.base_image.allowed_registries",
        )
    return reference


def quantity(size: int) -> str:
    """Bytes as a Kubernetes quantity: ``64Mi`` when whole mebibytes, else plain bytes."""
    return f"{size // _MI}Mi" if size % _MI == 0 else str(size)


def _tmpfs_size(options: str) -> int | None:
    for option in options.split(","):
        key, _, value = option.partition("=")
        if key == "size":
            from paracle_guard.units import parse_size

            return parse_size(value)
    return None


def _network_refusal(spec: RunSpec) -> None:
    # Docker's named networks have no meaning in a cluster; "bridge" is the closest
    # there is to the pod network. Anything else would be guessed, so it is refused.
    if spec.network_mode not in ("none", "bridge"):
        raise PolicyViolation(
            f"network mode {spec.network_mode!r} has no Kubernetes equivalent; the "
            "kubernetes backend runs none (a deny-all NetworkPolicy) or bridge (the pod "
            "network)",
            key="controls.network.mode",
        )


def pod_spec(spec: RunSpec, image: str) -> dict[str, Any]:
    """The PodSpec of ``spec``: what the Docker backend's create config says, in Pod terms."""
    _refuse_unportable(spec)
    identity = {"runAsNonRoot": True, "runAsUser": spec.uid, "runAsGroup": spec.gid,
                "seccompProfile": {"type": "RuntimeDefault"}}
    volumes, mounts = _scratch_volumes(spec)
    pod: dict[str, Any] = {
        "automountServiceAccountToken": False,
        # Service links put every Service of the namespace into the environment.
        "enableServiceLinks": False,
        "hostNetwork": False,
        "hostPID": False,
        "hostIPC": False,
        "restartPolicy": "Never",
        # Only the groups named here: without Strict, containerd and CRI-O add those the
        # image's /etc/group lists the user in (Kubernetes 1.31+, on by default in 1.33).
        "securityContext": {**identity, "supplementalGroupsPolicy": "Strict"},
        "containers": [_container(spec, image, identity, mounts)],
        "volumes": volumes,
    }
    if spec.runtime_class is not None:
        # The policy's runtime, as the nodes name it; with none mapped, the rules refuse
        # the Pod (PG313) when the policy requires one.
        pod["runtimeClassName"] = spec.runtime_class
    if spec.timeout is not None:
        pod["activeDeadlineSeconds"] = max(1, math.ceil(spec.timeout))
    return pod


def _refuse_unportable(spec: RunSpec) -> None:
    """Refuse what a Pod cannot carry as the Docker backend would, or what is not hardened."""
    if spec.binds:
        raise PolicyViolation(
            "--workspace and --mount mount paths of this host, which a cluster node does not "
            "have; the kubernetes backend gives /workspace as an emptyDir instead",
            key="--workspace",
        )
    if spec.file_secret_names:
        raise PolicyViolation(
            f"--env-file gives {', '.join(spec.file_secret_names)}, which looks like a secret; "
            "a Pod's environment is readable by anyone who may read the Pod, so the kubernetes "
            "backend does not put secrets there (mount a Kubernetes Secret instead)",
            key="controls.secrets.env_name_patterns",
        )
    if not spec.read_only_rootfs or spec.cap_drop != ("ALL",):
        raise PolicyViolation("the run specification is not hardened (read-only root, drop ALL)",
                              key="controls")
    _network_refusal(spec)


def _scratch_volumes(spec: RunSpec) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Each tmpfs of ``spec`` as a memory-backed, size-limited emptyDir and its mount."""
    volumes: list[dict[str, Any]] = []
    mounts: list[dict[str, Any]] = []
    for index, mount in enumerate(spec.tmpfs):
        name = f"scratch-{index}"
        empty_dir: dict[str, Any] = {"medium": "Memory"}
        size = _tmpfs_size(mount.options)
        if size is None:
            raise PolicyViolation(f"tmpfs {mount.target} has no size; an emptyDir needs one",
                                  key="controls.root_filesystem.writable_paths")
        empty_dir["sizeLimit"] = quantity(size)
        volumes.append({"name": name, "emptyDir": empty_dir})
        entry: dict[str, Any] = {"name": name, "mountPath": mount.target}
        if "ro" in mount.options.split(","):
            entry["readOnly"] = True
        mounts.append(entry)
    return volumes, mounts


def _container(spec: RunSpec, image: str, identity: Mapping[str, Any],
               mounts: list[dict[str, Any]]) -> dict[str, Any]:
    """The one container of the Pod: the command, its security context and its limits."""
    limits: dict[str, str] = {}
    if spec.memory_bytes is not None:
        limits["memory"] = quantity(spec.memory_bytes)
    if spec.nano_cpus is not None:
        limits["cpu"] = f"{max(1, spec.nano_cpus // 1_000_000)}m"
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": image,
        # Docker's Cmd: the image's ENTRYPOINT, if any, still runs it, as with docker run.
        "args": list(spec.command),
        "imagePullPolicy": "IfNotPresent",
        "securityContext": {
            **identity,
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
            "privileged": False,
            "capabilities": {"drop": ["ALL"]},
        },
        # Requests equal to limits: Guaranteed QoS, which the kubelet never lets swap.
        "resources": {"limits": dict(limits), "requests": dict(limits)},
        "volumeMounts": mounts,
    }
    if spec.env:
        container["env"] = [{"name": name, "value": value} for name, value in spec.env]
    if spec.working_dir:
        container["workingDir"] = spec.working_dir
    if spec.open_stdin:
        container["stdin"] = True
        container["stdinOnce"] = True
    return container


def build_manifests(spec: RunSpec, image: str, *, workload: Workload = "pod",
                    namespace: str | None = None) -> list[dict[str, Any]]:
    """The objects to create, in order: the NetworkPolicy first, then the Pod or Job (or
    the Agent Sandbox resources of ``workload``)."""
    labels = {**MANAGED_BY, SANDBOX_LABEL: spec.name}
    # Label values stop at 63 characters; the policy's sha256 is longer, so the
    # launcher's own labels travel as annotations.
    annotations = dict(spec.labels)
    metadata: dict[str, Any] = {"name": spec.name, "labels": labels, "annotations": annotations}
    if namespace is not None:
        if not _NAMESPACE.match(namespace):
            raise InputError(f"--namespace {namespace}: not a valid namespace name")
        metadata["namespace"] = namespace
    objects: list[dict[str, Any]] = []
    if spec.network_mode == "none":
        policy_metadata = {**metadata, "name": f"{spec.name}-isolated"}
        policy_metadata.pop("annotations")
        objects.append({
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": policy_metadata,
            # No ingress and no egress rule: nothing in, nothing out.
            "spec": {"podSelector": {"matchLabels": {SANDBOX_LABEL: spec.name}},
                     "policyTypes": ["Ingress", "Egress"]},
        })
    body = pod_spec(spec, image)
    if workload in SANDBOX_FORMS:
        return sandbox_objects(workload, spec.network_mode, metadata, body, objects)
    if workload == "pod":
        objects.append({"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": body})
    else:
        job_spec: dict[str, Any] = {
            "backoffLimit": 0,  # one attempt: a sandboxed command is not retried
            "ttlSecondsAfterFinished": 600,
            "template": {"metadata": {"labels": labels, "annotations": annotations},
                         "spec": body},
        }
        if spec.timeout is not None:
            job_spec["activeDeadlineSeconds"] = body["activeDeadlineSeconds"]
        objects.append({"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata,
                        "spec": job_spec})
    return objects


class _PlainDumper(yaml.SafeDumper):
    """Writes every value out: anchors and aliases would hide what a reviewer must see."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def render_manifests(objects: Sequence[Mapping[str, Any]]) -> str:
    """Multi-document YAML, keys in the order built (apiVersion, kind, metadata, spec)."""
    return yaml.dump_all(objects, Dumper=_PlainDumper, sort_keys=False,
                         default_flow_style=False)


def judge(plan: Plan, text: str, what: str) -> Report:
    """``text`` (manifests) judged exactly as ``paracle-guard k8s`` would judge it."""
    from paracle_guard.sources.k8s import load_manifest_texts

    report = plan.new_report()
    subjects = load_manifest_texts([(what, text)])
    if not subjects:
        raise PolicyViolation(f"{what}: no workload to verify")
    for subject in subjects:
        report.add(plan.evaluate(subject))
    return report


def _verified(plan: Plan, text: str, what: str) -> None:
    report = judge(plan, text, what)
    if report.failed:
        findings = [f for result in report.results for f in result.findings
                    if f.severity.at_least(report.fail_on)]
        raise PolicyViolation(
            f"{what} breaks the policy: " + "; ".join(f"{f.rule} {f.message}" for f in findings),
            findings=findings, report=report)


def prepare(plan: Plan, config: SandboxConfig, command: Sequence[str], *,
            workload: Workload = "pod", namespace: str | None = None,
            name: str | None = None) -> tuple[RunSpec, list[dict[str, Any]]]:
    """The RunSpec and the verified manifests for ``command``; PolicyViolation when refused."""
    policy = plan.policy
    image = pinned_image(config.image, policy.controls.base_image.allowed_registries)
    spec = build_runspec(
        policy, config, command,
        image_id=image,
        # Nothing here can read the image: the policy's uid is the only proof there is.
        image_user=None,
        image_volumes=(),
        name=name or f"paracle-guard-{secrets.token_hex(6)}",
        labels={LAUNCHER_LABEL: "kubernetes"},
    )
    objects = build_manifests(spec, image, workload=workload, namespace=namespace)
    _verified(plan, render_manifests(objects), f"{spec.name}.yaml")
    return spec, objects
