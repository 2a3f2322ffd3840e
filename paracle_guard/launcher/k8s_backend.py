"""The Kubernetes backend: the same RunSpec the Docker backend creates, as a Pod or a Job.

``build_manifests`` turns a RunSpec into the Pod (or Job) and, when the
policy's network mode is ``none``, the NetworkPolicy that cuts it off (a Pod
always gets the cluster network otherwise). Every choice comes from the
RunSpec: numeric non-root user with ``runAsNonRoot``, read-only root
filesystem, ``capabilities.drop: [ALL]``, ``allowPrivilegeEscalation: false``,
``seccompProfile: RuntimeDefault``, no host namespaces, no service-account
token, the writable paths as memory-backed, size-limited ``emptyDir``
volumes, requests equal to limits (Guaranteed QoS, which never swaps),
``activeDeadlineSeconds`` from the timeout, and the image by digest.

What Kubernetes cannot express, and Docker did: ``noexec`` on /tmp (emptyDir
has no mount options), the IPC namespace ``none``, ulimits, the init process,
and the pids limit (the kubelet's ``podPidsLimit``, a node setting that rule
PG808 reminds of). The launcher never pretends otherwise.

Before anything is printed or submitted, the manifests are read back through
the Kubernetes source and judged by the same rules as ``paracle-guard k8s``;
a submitted Pod is judged again as the API server returns it, since admission
webhooks may have changed it. The ``kubernetes`` client is imported only on
that path, from the optional extra ``paracle-guard[kubernetes]``.
"""

from __future__ import annotations

import math
import os
import re
import secrets
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import yaml

from paracle_guard import __version__
from paracle_guard.engine import Plan
from paracle_guard.errors import GuardError, InputError
from paracle_guard.launcher.runspec import (
    LAUNCHER_LABEL,
    PolicyViolation,
    RunSpec,
    SandboxConfig,
    build_runspec,
    parse_env,
)
from paracle_guard.location import Location
from paracle_guard.report.models import PolicyRef, Report, ToolInfo
from paracle_guard.rules.base_image import registry_allowed
from paracle_guard.sources.image_ref import parse_image_ref
from paracle_guard.subject import BaseImage

REFUSED_EXIT = 125
TIMEOUT_EXIT = 124
CONTAINER = "sandbox"
SANDBOX_LABEL = "paracle-guard.io/sandbox"
MANAGED_BY = {"app.kubernetes.io/managed-by": "paracle-guard"}
_DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
_MI = 1 << 20
_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")

Workload = Literal["pod", "job"]


class KubernetesError(GuardError):
    """The API server refused or failed a request, or the client is missing."""

    exit_code = REFUSED_EXIT


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
    if spec.binds:
        raise PolicyViolation(
            "--workspace mounts a folder of this host, which a cluster node does not have; "
            "the kubernetes backend gives /workspace as an emptyDir instead",
            key="--workspace",
        )
    if not spec.read_only_rootfs or spec.cap_drop != ("ALL",):
        raise PolicyViolation("the run specification is not hardened (read-only root, drop ALL)",
                              key="controls")
    _network_refusal(spec)
    identity = {"runAsNonRoot": True, "runAsUser": spec.uid, "runAsGroup": spec.gid,
                "seccompProfile": {"type": "RuntimeDefault"}}
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
    pod: dict[str, Any] = {
        "automountServiceAccountToken": False,
        # Service links put every Service of the namespace into the environment.
        "enableServiceLinks": False,
        "hostNetwork": False,
        "hostPID": False,
        "hostIPC": False,
        "restartPolicy": "Never",
        "securityContext": dict(identity),
        "containers": [container],
        "volumes": volumes,
    }
    if spec.timeout is not None:
        pod["activeDeadlineSeconds"] = max(1, math.ceil(spec.timeout))
    return pod


def build_manifests(spec: RunSpec, image: str, *, workload: Workload = "pod",
                    namespace: str | None = None) -> list[dict[str, Any]]:
    """The objects to create, in order: the NetworkPolicy first, then the Pod or Job."""
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


def render(objects: Sequence[Mapping[str, Any]]) -> str:
    """Multi-document YAML, keys in the order built (apiVersion, kind, metadata, spec)."""
    return yaml.dump_all(objects, Dumper=_PlainDumper, sort_keys=False,
                         default_flow_style=False)


def judge(plan: Plan, text: str, what: str) -> Report:
    """``text`` (manifests) judged exactly as ``paracle-guard k8s`` would judge it."""
    from paracle_guard.sources.k8s import load_manifest_texts

    report = Report(tool=ToolInfo(version=__version__),
                    policy=PolicyRef(name=plan.policy.metadata.name, sha256=plan.policy.sha256),
                    fail_on=plan.policy.fail_on, rules=plan.rule_info())
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
    image = pinned_image(config.base_image, policy.controls.base_image.allowed_registries)
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
    _verified(plan, render(objects), f"{spec.name}.yaml")
    return spec, objects


def run_cli(
    *,
    image: str,
    command: Sequence[str],
    policy: str | None,
    workspace: Path | None,
    timeout: float | None,
    memory: str | None,
    cpus: float | None,
    pids: int | None,
    env: Sequence[str],
    network: str | None,
    stdin: bool,
    report_format: str,
    keep: bool,
    dry_run: bool,
    workload: str,
    namespace: str | None,
) -> int:
    """``paracle-guard run --backend kubernetes``: print (``--dry-run``) or run the sandbox."""
    from pydantic import ValidationError

    from paracle_guard.policy.loader import load_policy

    try:
        if workload not in ("pod", "job"):
            raise InputError(f"--as {workload}: expected pod or job")
        if report_format not in ("text", "json"):
            raise InputError(f"--report {report_format}: expected text or json")
        plan = Plan.compile(load_policy(policy))
        config = SandboxConfig(base_image=image, memory=memory, cpus=cpus, pids=pids,
                               timeout=timeout, network=network, workspace=workspace,
                               env=parse_env(env, os.environ))
        spec, objects = prepare(plan, config, command,
                                workload="job" if workload == "job" else "pod",
                                namespace=namespace)
        if dry_run:
            sys.stdout.write(render(objects))
            return 0
        if stdin:
            raise InputError("--stdin is not supported by the kubernetes backend yet")
        return submit(plan, spec, objects, keep=keep)
    except PolicyViolation as refusal:
        if refusal.report is not None:
            from paracle_guard.report import render as render_report

            sys.stderr.write(render_report(refusal.report, report_format))
        sys.stderr.write(f"paracle-guard: {refusal}\n")
        return REFUSED_EXIT
    except GuardError as error:
        sys.stderr.write(f"paracle-guard: error: {error}\n")
        return REFUSED_EXIT
    except ValidationError as error:
        first = error.errors()[0]
        option = "--" + str(first["loc"][0]) if first["loc"] else "option"
        sys.stderr.write(f"paracle-guard: error: {option}: {first['msg']}\n")
        return REFUSED_EXIT


# --- the real API server (optional extra) ---------------------------------------------


def _client() -> Any:
    try:
        import kubernetes  # type: ignore[import-not-found,import-untyped,unused-ignore]
    except ImportError:
        raise KubernetesError(
            "the kubernetes backend needs the kubernetes client: "
            "pip install 'paracle-guard[kubernetes]' (or use --dry-run)"
        ) from None
    try:
        kubernetes.config.load_kube_config()
    except Exception as exc:  # the client raises several unrelated types for a bad config
        try:
            kubernetes.config.load_incluster_config()
        except Exception:
            raise KubernetesError(f"no usable kubeconfig: {exc}") from None
    return kubernetes


def submit(plan: Plan, spec: RunSpec, objects: Sequence[Mapping[str, Any]], *,
           keep: bool = False, out: Any = None) -> int:
    """Create the objects, verify the Pod as stored, stream its logs, return its exit code.

    The Pod is created behind a scheduling gate (Kubernetes 1.30+), read back and
    judged, and only then released to a node. Everything created is deleted at
    the end (unless ``keep``), and at once when the stored Pod fails verification.
    """
    kubernetes = _client()
    # The Pod is created held back by a scheduling gate, so it is judged as stored
    # before any node runs it; the gate is lifted only once the rules pass.
    objects = [_gated(item) for item in objects]
    core = kubernetes.client.CoreV1Api()
    networking = kubernetes.client.NetworkingV1Api()
    batch = kubernetes.client.BatchV1Api()
    api_exception = kubernetes.client.exceptions.ApiException
    stream = out if out is not None else sys.stdout.buffer
    namespace = str(objects[-1]["metadata"].get("namespace") or _current_namespace(kubernetes))
    created: list[tuple[str, str]] = []
    try:
        for item in objects:
            kind = item["kind"]
            if kind == "NetworkPolicy":
                networking.create_namespaced_network_policy(namespace, dict(item))
            elif kind == "Pod":
                core.create_namespaced_pod(namespace, dict(item))
            else:
                batch.create_namespaced_job(namespace, dict(item))
            created.append((kind, item["metadata"]["name"]))
        pod_name = _pod_name(core, namespace, spec.name, objects[-1]["kind"])
        stored = core.read_namespaced_pod(pod_name, namespace)
        serialised = kubernetes.client.ApiClient().sanitize_for_serialization(stored)
        policies = [item for item in objects if item["kind"] == "NetworkPolicy"]
        # Admission webhooks may have changed the Pod: judge it as the API server stores it.
        _verified(plan, render([*policies, serialised]), f"{pod_name} (as stored)")
        core.patch_namespaced_pod(pod_name, namespace,
                                  [{"op": "remove", "path": "/spec/schedulingGates"}])
        deadline = None if spec.timeout is None else time.monotonic() + spec.timeout
        _wait_running(core, namespace, pod_name, deadline)
        logs = core.read_namespaced_pod_log(pod_name, namespace, container=CONTAINER,
                                            follow=True, _preload_content=False)
        for chunk in logs.stream(4096):
            stream.write(chunk)
            stream.flush()
            if deadline is not None and time.monotonic() > deadline:
                return TIMEOUT_EXIT
        return _exit_code(core, namespace, pod_name, deadline)
    except api_exception as exc:
        raise KubernetesError(f"the API server refused: {exc.status} {exc.reason}") from None
    finally:
        if not keep:
            _delete(core, networking, batch, namespace, created, api_exception)


VERIFY_GATE = "paracle-guard.io/verify"


def _gated(item: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``item`` whose pods wait for the launcher's verification before scheduling."""
    copy: dict[str, Any] = yaml.safe_load(render([item]))
    if copy["kind"] == "Pod":
        copy["spec"]["schedulingGates"] = [{"name": VERIFY_GATE}]
    elif copy["kind"] == "Job":
        copy["spec"]["template"]["spec"]["schedulingGates"] = [{"name": VERIFY_GATE}]
    return copy


def _current_namespace(kubernetes: Any) -> str:
    try:
        _, context = kubernetes.config.list_kube_config_contexts()
        return str(context["context"].get("namespace") or "default")
    except Exception:  # in-cluster, or a kubeconfig without contexts
        return "default"


def _pod_name(core: Any, namespace: str, name: str, kind: str) -> str:
    if kind == "Pod":
        return name
    for _ in range(60):
        pods = core.list_namespaced_pod(namespace, label_selector=f"job-name={name}").items
        if pods:
            return str(pods[0].metadata.name)
        time.sleep(1)
    raise KubernetesError(f"job {name} created no pod within 60 seconds")


def _wait_running(core: Any, namespace: str, pod: str, deadline: float | None) -> None:
    while True:
        phase = core.read_namespaced_pod(pod, namespace).status.phase
        if phase in ("Running", "Succeeded", "Failed"):
            return
        if deadline is not None and time.monotonic() > deadline:
            raise KubernetesError(f"pod {pod} did not start before the timeout")
        time.sleep(0.5)


def _exit_code(core: Any, namespace: str, pod: str, deadline: float | None) -> int:
    while True:
        status = core.read_namespaced_pod(pod, namespace).status
        for container in status.container_statuses or []:
            terminated = container.state.terminated
            if container.name == CONTAINER and terminated is not None:
                return int(terminated.exit_code)
        if status.phase == "Failed" and status.reason == "DeadlineExceeded":
            return TIMEOUT_EXIT
        if deadline is not None and time.monotonic() > deadline:
            return TIMEOUT_EXIT
        time.sleep(0.5)


def _delete(core: Any, networking: Any, batch: Any, namespace: str,
            created: list[tuple[str, str]], api_exception: type[Exception]) -> None:
    for kind, name in reversed(created):
        try:
            if kind == "Pod":
                core.delete_namespaced_pod(name, namespace, grace_period_seconds=0)
            elif kind == "Job":
                batch.delete_namespaced_job(name, namespace, propagation_policy="Foreground",
                                            grace_period_seconds=0)
            else:
                networking.delete_namespaced_network_policy(name, namespace)
        except api_exception:
            continue  # already gone; the others must still go
