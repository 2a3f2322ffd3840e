"""The Kubernetes backend: the launch's steps against a real API server.

The manifests come from ``k8s_backend`` (pure, judged by the ``k8s`` rules).
The Pod is created behind a scheduling gate, so no node runs it until the
launcher has read it back as the API server stores it (admission webhooks may
have changed it) and judged it; ``start`` lifts the gate. Logs stream until
the container ends or the deadline passes (``activeDeadlineSeconds`` ends it on
the cluster's side too). ``remove`` deletes everything created, newest first,
and reads each object back until the API server answers 404.

What this backend cannot do, and the Docker backend does: read the image
(nodes pull it; only a digest pins it), so mount targets in the image are not
proved here (run ``paracle-guard image`` on the same digest), and prove the
running container from a host (the node's kernel is not this machine's). The
audit line says so.

The ``kubernetes`` client is imported on the first call that needs the API
server, from the optional extra ``paracle-guard[kubernetes]``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from typing import IO, Any, cast

import yaml

from paracle_guard.errors import InputError
from paracle_guard.launcher.backend import CheckedImage, Ended, Observation, Removal
from paracle_guard.launcher.k8s_backend import (
    _NAMESPACE,
    CONTAINER,
    Workload,
    build_manifests,
    pinned_image,
    render_manifests,
)
from paracle_guard.launcher.k8s_sandbox import FORMS as SANDBOX_FORMS
from paracle_guard.launcher.refusal import LaunchError
from paracle_guard.launcher.runspec import RunSpec
from paracle_guard.launcher.streams import Sink
from paracle_guard.policy.models import Policy
from paracle_guard.subject import Subject

VERIFY_GATE = "paracle-guard.io/verify"
UNPROVED = ("the pod runs on a cluster node: its image content and its running container "
            "are not proved from this host")
POLL_SECONDS = 0.5
JOB_POD_WAIT = 60.0
REMOVE_ATTEMPTS = 6


class KubernetesError(LaunchError):
    """The API server refused or failed a request, or the client is missing."""


def load_client() -> Any:
    """The official client with the current kubeconfig (or the in-cluster account)."""
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


class KubernetesBackend:
    """One launch on a cluster: a gated Pod (or Job), verified as stored, then released."""

    name = "kubernetes"
    engine_host: str | None = None

    def __init__(self, policy: Policy, *, workload: str = "pod", namespace: str | None = None,
                 client: Callable[[], Any] = load_client) -> None:
        self.policy = policy
        self.workload = workload
        self.namespace = namespace
        self._load = client
        self._api: Any = None
        self._created: list[tuple[str, str]] = []  # (kind, name), oldest first
        self._pod: str | None = None

    # --- nothing on the cluster yet ------------------------------------------------------

    def preflight(self) -> None:
        if self.workload not in ("pod", "job", *SANDBOX_FORMS):
            raise InputError(f"--as {self.workload}: expected pod, job, "
                             + ", ".join(SANDBOX_FORMS[:-1]) + f" or {SANDBOX_FORMS[-1]}")
        if self.namespace is not None and not _NAMESPACE.match(self.namespace):
            raise InputError(f"--namespace {self.namespace}: not a valid namespace name")

    def image(self, ref: str) -> CheckedImage:
        return CheckedImage(ref=ref, id=pinned_image(
            ref, self.policy.controls.base_image.allowed_registries))

    def manifests(self, spec: RunSpec) -> list[dict[str, Any]]:
        workload = cast(Workload, self.workload)  # one of them: preflight checked it
        return build_manifests(spec, spec.image_id, workload=workload, namespace=self.namespace)

    def preview(self, spec: RunSpec) -> tuple[str, Sequence[Subject]]:
        text = render_manifests(self.manifests(spec))
        return text, _subjects(text, f"{spec.name}.yaml")

    # --- the API server --------------------------------------------------------------

    def _client(self) -> Any:
        if self._api is None:
            self._api = self._load()
        return self._api

    def _apis(self) -> tuple[Any, Any, Any, type[Exception]]:
        client = self._client().client
        return (client.CoreV1Api(), client.NetworkingV1Api(), client.BatchV1Api(),
                client.exceptions.ApiException)

    def _namespace(self) -> str:
        if self.namespace is None:
            try:
                _, context = self._client().config.list_kube_config_contexts()
                self.namespace = str(context["context"].get("namespace") or "default")
            except Exception:  # in-cluster, or a kubeconfig without contexts
                self.namespace = "default"
        return self.namespace

    def create(self, spec: RunSpec) -> str:
        if self.workload in SANDBOX_FORMS:
            # The Agent Sandbox controller makes the pod: there is no gate to hold it
            # behind until it is judged, so these forms are printed, never submitted.
            raise InputError(f"--as {self.workload}: only with --dry-run; apply what it "
                             "prints (kubectl apply -f -) where the Agent Sandbox controller "
                             "runs")
        core, networking, batch, api_exception = self._apis()
        namespace = self._namespace()
        try:
            for item in (_gated(item) for item in self.manifests(spec)):
                kind, name = item["kind"], item["metadata"]["name"]
                if kind == "NetworkPolicy":
                    networking.create_namespaced_network_policy(namespace, item)
                elif kind == "Pod":
                    core.create_namespaced_pod(namespace, item)
                else:
                    batch.create_namespaced_job(namespace, item)
                self._created.append((kind, name))
        except api_exception as exc:
            raise KubernetesError(f"the API server refused: {_said(exc)}") from None
        return spec.name

    def find(self, spec: RunSpec) -> str | None:
        return spec.name if self._created else None

    def _pod_name(self, handle: str) -> str:
        if self._pod is None:
            kind = self._created[-1][0] if self._created else "Pod"
            self._pod = handle if kind == "Pod" else self._job_pod(handle)
        return self._pod

    def _job_pod(self, job: str) -> str:
        core = self._apis()[0]
        waited = 0.0
        while waited < JOB_POD_WAIT:
            pods = core.list_namespaced_pod(self._namespace(),
                                            label_selector=f"job-name={job}").items
            if pods:
                return str(pods[0].metadata.name)
            time.sleep(POLL_SECONDS)
            waited += POLL_SECONDS
        raise KubernetesError(f"job {job} created no pod within {JOB_POD_WAIT:g} seconds")

    def verify(self, handle: str, spec: RunSpec, *, started: bool) -> Observation:
        """The Pod as the API server stores it, with the NetworkPolicy that isolates it."""
        core, _, _, api_exception = self._apis()
        pod = self._pod_name(handle)
        try:
            stored = core.read_namespaced_pod(pod, self._namespace())
        except api_exception as exc:
            raise KubernetesError(f"reading pod {pod}: {_said(exc)}") from None
        serialised = self._client().client.ApiClient().sanitize_for_serialization(stored)
        policies = [item for item in self.manifests(spec) if item["kind"] == "NetworkPolicy"]
        text = render_manifests([*policies, serialised])
        return Observation(subjects=list(_subjects(text, f"{pod} (as stored)")),
                           unproved=UNPROVED if started else None)

    def start(self, handle: str, spec: RunSpec) -> None:
        core, _, _, api_exception = self._apis()
        pod = self._pod_name(handle)
        try:
            core.patch_namespaced_pod(pod, self._namespace(),
                                      [{"op": "remove", "path": "/spec/schedulingGates"}])
        except api_exception as exc:
            raise KubernetesError(f"releasing pod {pod}: {_said(exc)}") from None
        deadline = time.monotonic() + spec.timeout if spec.timeout is not None else None
        while self._phase(pod) not in ("Running", "Succeeded", "Failed"):
            if deadline is not None and time.monotonic() > deadline:
                raise KubernetesError(f"pod {pod} did not start before the timeout")
            time.sleep(POLL_SECONDS)

    def _phase(self, pod: str) -> str:
        return str(self._apis()[0].read_namespaced_pod(pod, self._namespace()).status.phase)

    def stream(
        self, handle: str, spec: RunSpec, stdout: Sink, stderr: Sink,
        stdin: bytes | IO[bytes] | None, deadline: float | None,
    ) -> Ended:
        if stdin is not None:
            raise InputError("--stdin is not supported by the kubernetes backend yet")
        core = self._apis()[0]
        pod = self._pod_name(handle)
        logs = core.read_namespaced_pod_log(pod, self._namespace(), container=CONTAINER,
                                            follow=True, _preload_content=False)
        for chunk in logs.stream(4096):
            stdout.write(chunk)
            stdout.flush()
            if deadline is not None and time.monotonic() > deadline:
                self.stop(handle)
                return Ended(-1, True)
        return self._exit_code(pod, deadline)

    def _exit_code(self, pod: str, deadline: float | None) -> Ended:
        while True:
            status = self._apis()[0].read_namespaced_pod(pod, self._namespace()).status
            for container in status.container_statuses or []:
                terminated = container.state.terminated
                if container.name == CONTAINER and terminated is not None:
                    return Ended(int(terminated.exit_code), False)
            if status.phase == "Failed" and status.reason == "DeadlineExceeded":
                return Ended(-1, True)
            if deadline is not None and time.monotonic() > deadline:
                self.stop(pod)
                return Ended(-1, True)
            time.sleep(POLL_SECONDS)

    def stop(self, handle: str) -> None:
        core, _, _, api_exception = self._apis()
        try:
            core.delete_namespaced_pod(self._pod or handle, self._namespace(),
                                       grace_period_seconds=0)
        except api_exception:
            return  # already gone

    def remove(self, handle: str) -> Removal:
        """Delete what was created, newest first, until the API server says 404 for each."""
        try:
            core, networking, batch, api_exception = self._apis()
        except LaunchError as exc:
            return Removal(False, f"cannot reach the API server to delete {handle}: {exc}")
        namespace = self._namespace()
        left = list(reversed(self._created))
        for _ in range(REMOVE_ATTEMPTS):
            for kind, name in list(left):
                if _gone(kind, name, namespace, core, networking, batch, api_exception):
                    left.remove((kind, name))
            if not left:
                return Removal(True, f"{handle} and its objects were deleted")
            time.sleep(POLL_SECONDS)
        names = ", ".join(f"{kind}/{name}" for kind, name in left)
        return Removal(False, f"{names} still exist in namespace {namespace}; delete them "
                              "with kubectl delete")

    def close(self) -> None:
        return None


def _gone(kind: str, name: str, namespace: str, core: Any, networking: Any, batch: Any,
          api_exception: type[Exception]) -> bool:
    """Ask to delete one object; True once reading it answers 404."""
    api = {"Pod": core, "Job": batch}.get(kind, networking)
    suffix = {"Pod": "pod", "Job": "job"}.get(kind, "network_policy")
    options: dict[str, Any] = {"grace_period_seconds": 0} if kind != "NetworkPolicy" else {}
    if kind == "Job":
        options["propagation_policy"] = "Foreground"
    # Already gone, or not deletable yet: the read below decides.
    with contextlib.suppress(api_exception):
        getattr(api, f"delete_namespaced_{suffix}")(name, namespace, **options)
    try:
        getattr(api, f"read_namespaced_{suffix}")(name, namespace)
    except api_exception as exc:
        return getattr(exc, "status", None) == 404
    return False


def _said(exc: Exception) -> str:
    return f"{getattr(exc, 'status', '?')} {getattr(exc, 'reason', exc)}"


def _gated(item: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``item`` whose pods wait for the launcher's verification before scheduling."""
    copy: dict[str, Any] = yaml.safe_load(render_manifests([item]))
    if copy["kind"] == "Pod":
        copy["spec"]["schedulingGates"] = [{"name": VERIFY_GATE}]
    elif copy["kind"] == "Job":
        copy["spec"]["template"]["spec"]["schedulingGates"] = [{"name": VERIFY_GATE}]
    return copy


def _subjects(text: str, what: str) -> list[Subject]:
    from paracle_guard.sources.k8s import load_manifest_texts

    return load_manifest_texts([(what, text)])
