"""The Kubernetes backend: the RunSpec as a hardened Pod or Job, verified before it leaves.

No cluster is needed here: the manifests are built, read back through the
Kubernetes source, judged by the rules, validated against the Kubernetes
OpenAPI schemas and admitted by the exported ValidatingAdmissionPolicy (CEL).
The one test that talks to a real API server carries the ``kubernetes``
marker and runs only where a kubeconfig is configured for it.
"""

from __future__ import annotations

import importlib.util
import io
import os
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from pydantic import ValidationError
from typer.testing import CliRunner

from paracle_guard.cli import app
from paracle_guard.engine import Plan
from paracle_guard.errors import InputError
from paracle_guard.launcher import k8s_backend, k8s_cluster
from paracle_guard.launcher.k8s_backend import (
    build_manifests,
    judge,
    pinned_image,
    prepare,
    quantity,
    render_manifests,
)
from paracle_guard.launcher.k8s_cluster import KubernetesBackend, KubernetesError
from paracle_guard.launcher.launch import launch, open_audit
from paracle_guard.launcher.runspec import PolicyViolation, SandboxConfig
from paracle_guard.policy.loader import load_policy
from paracle_guard.policy.models import Policy
from tests.launcher.conftest import audit_lines
from tests.test_admission import KUBERNETES_VERSIONS, Admission

DIGEST = "sha256:" + "7" * 64
IMAGE = f"ghcr.io/acme/sandbox:1.0@{DIGEST}"
runner = CliRunner()


@pytest.fixture(scope="module")
def plan() -> Plan:
    return Plan.compile(load_policy("sandbox"))


def objects_for(plan: Plan, workload: str = "pod", **options: Any) -> list[dict[str, Any]]:
    config = SandboxConfig(image=options.pop("image", IMAGE), **options)
    _, objects = prepare(plan, config, ["python", "-c", "print(1)"],
                         workload="job" if workload == "job" else "pod", name="sbx-1")
    return objects


def pod_of(objects: list[dict[str, Any]]) -> dict[str, Any]:
    last = objects[-1]
    if last["kind"] == "Job":
        return {"metadata": last["spec"]["template"]["metadata"],
                "spec": last["spec"]["template"]["spec"]}
    return last


def test_the_pod_carries_every_hardening(plan: Plan) -> None:
    objects = objects_for(plan, timeout=29.5)
    assert [o["kind"] for o in objects] == ["NetworkPolicy", "Pod"]
    spec = objects[1]["spec"]
    (container,) = spec["containers"]
    context = container["securityContext"]
    assert spec["automountServiceAccountToken"] is False
    assert not (spec["hostPID"] or spec["hostIPC"] or spec["hostNetwork"])
    assert spec["securityContext"] == {"runAsNonRoot": True, "runAsUser": 1000,
                                       "runAsGroup": 1000,
                                       "seccompProfile": {"type": "RuntimeDefault"},
                                       "supplementalGroupsPolicy": "Strict"}
    assert "supplementalGroupsPolicy" not in context  # a pod-level field only
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["image"] == IMAGE
    assert container["args"] == ["python", "-c", "print(1)"]
    assert container["resources"]["limits"] == {"memory": "512Mi", "cpu": "1000m"}
    assert container["resources"]["requests"] == container["resources"]["limits"]
    assert spec["activeDeadlineSeconds"] == 30
    assert spec["restartPolicy"] == "Never"
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v["emptyDir"] for v in spec["volumes"]}
    assert set(mounts) == {"/tmp", "/workspace"}
    for name in mounts.values():
        assert volumes[name] == {"medium": "Memory", "sizeLimit": "64Mi"}
    isolation = objects[0]["spec"]
    assert isolation == {"podSelector": {"matchLabels": {"paracle-guard.io/sandbox": "sbx-1"}},
                         "policyTypes": ["Ingress", "Egress"]}


def test_a_job_wraps_the_same_pod(plan: Plan) -> None:
    pod = objects_for(plan)[-1]
    job = objects_for(plan, "job")[-1]
    assert job["kind"] == "Job" and job["spec"]["backoffLimit"] == 0
    assert job["spec"]["template"]["spec"] == pod["spec"]


def test_user_options_only_tighten(plan: Plan) -> None:
    pod = objects_for(plan, memory="128m", cpus=0.5, env={"MODE": "fast"})[-1]
    container = pod["spec"]["containers"][0]
    assert container["resources"]["limits"] == {"memory": "128Mi", "cpu": "500m"}
    assert container["env"] == [{"name": "MODE", "value": "fast"}]
    with pytest.raises(PolicyViolation) as refused:
        objects_for(plan, memory="2g")
    assert refused.value.key == "controls.resources.memory"


@pytest.mark.parametrize("workload", ["pod", "job"])
def test_round_trip_the_generated_manifests_pass_the_rules(plan: Plan, workload: str) -> None:
    report = judge(plan, render_manifests(objects_for(plan, workload)), "generated.yaml")
    assert not report.failed
    assert [f.rule for r in report.results for f in r.findings] == ["PG808"]


@pytest.mark.parametrize("workload", ["pod", "job"])
def test_round_trip_the_generated_pod_is_admitted(plan: Plan, workload: str) -> None:
    assert Admission(plan.policy).rejections(pod_of(objects_for(plan, workload))) == []


# supplementalGroupsPolicy (PodSecurityContext) first exists in 1.31, behind a feature
# gate that is on by default from 1.33: the Pod needs a 1.31 schema at least.
POD_KUBERNETES_VERSIONS = ("1.31", KUBERNETES_VERSIONS[-1])


@pytest.mark.parametrize("version", POD_KUBERNETES_VERSIONS)
@pytest.mark.parametrize("workload", ["pod", "job"])
def test_generated_manifests_match_the_openapi_schemas(plan: Plan, workload: str,
                                                       version: str) -> None:
    for item in objects_for(plan, workload):
        kubernetes_validate.validate(item, version, strict=True)


@pytest.mark.parametrize("workload", ["pod", "job"])
def test_on_1_30_only_supplemental_groups_policy_is_unknown(plan: Plan, workload: str) -> None:
    """A 1.30 API server does not know the field; everything else in the manifests it does."""
    objects = objects_for(plan, workload)
    with pytest.raises(kubernetes_validate.ValidationError, match="supplementalGroupsPolicy"):
        kubernetes_validate.validate(objects[-1], KUBERNETES_VERSIONS[0], strict=True)
    for item in objects:
        _pod_of(item)["securityContext"].pop("supplementalGroupsPolicy", None)
        kubernetes_validate.validate(item, KUBERNETES_VERSIONS[0], strict=True)


def test_a_stored_pod_without_strict_groups_is_refused(plan: Plan) -> None:
    """An API server that drops the field (1.30, or 1.31-1.32 without the feature gate)
    stores a Pod whose runtime merges the image's groups: the read-back refuses it."""
    objects = objects_for(plan)
    del objects[-1]["spec"]["securityContext"]["supplementalGroupsPolicy"]
    report = judge(plan, render_manifests(objects), "stored.yaml")
    assert report.failed
    assert "PG811" in {f.rule for r in report.results for f in r.findings}


def _pod_of(item: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = item["spec"]
    if item["kind"] == "Job":
        return _pod_of({"kind": "Pod", "spec": spec["template"]["spec"]})
    return spec if item["kind"] == "Pod" else {"securityContext": {}}


def test_the_rules_verify_what_the_builder_makes(plan: Plan,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    built = k8s_backend.pod_spec

    def careless(*args: Any, **kwargs: Any) -> dict[str, Any]:
        spec = built(*args, **kwargs)
        spec["containers"][0]["securityContext"]["privileged"] = True
        spec["hostPID"] = True
        return spec

    monkeypatch.setattr(k8s_backend, "pod_spec", careless)
    with pytest.raises(PolicyViolation) as refused:
        objects_for(plan)
    assert {f.rule for f in refused.value.findings} == {"PG303", "PG305"}


def test_images_must_be_pinned_and_allowed() -> None:
    with pytest.raises(PolicyViolation, match="by digest only"):
        pinned_image("ghcr.io/acme/sandbox:1.0", [])
    with pytest.raises(PolicyViolation) as refused:
        pinned_image(IMAGE, ["docker.io"])
    assert refused.value.key == "controls.base_image.allowed_registries"
    assert pinned_image(IMAGE, ["ghcr.io/acme/"]) == IMAGE


def test_what_kubernetes_cannot_express_is_refused(tmp_path: Path) -> None:
    named = Policy.model_validate({"controls": {"network": {"mode": "agents-net"},
                                                "user": {"allowed_uids": [1000]}}})
    with pytest.raises(PolicyViolation) as refused:
        objects_for(Plan.compile(named))
    assert refused.value.key == "controls.network.mode"
    bridge = Policy.model_validate({"controls": {"network": {"mode": "bridge"},
                                                 "user": {"allowed_uids": [1000]}}})
    objects = objects_for(Plan.compile(bridge))
    assert [o["kind"] for o in objects] == ["Pod"]  # the pod network, no NetworkPolicy


def test_quantities() -> None:
    assert quantity(64 << 20) == "64Mi"
    assert quantity(1000) == "1000"


def test_namespace_is_checked(plan: Plan) -> None:
    config = SandboxConfig(image=IMAGE)
    _, objects = prepare(plan, config, ["true"], namespace="agents", name="sbx-2")
    assert {o["metadata"]["namespace"] for o in objects} == {"agents"}
    with pytest.raises(InputError, match="not a valid namespace"):
        build_manifests(_spec(plan), IMAGE, namespace="Bad_Name")


def _spec(plan: Plan) -> Any:
    spec, _ = prepare(plan, SandboxConfig(image=IMAGE), ["true"], name="sbx-3")
    return spec


# --- the command line ----------------------------------------------------------------------


def test_dry_run_prints_what_paracle_guard_k8s_passes(tmp_path: Path) -> None:
    result = runner.invoke(app, ["run", "--backend", "kubernetes", "--dry-run", "-p", "sandbox",
                                 "--timeout", "10", "--as", "job", "--image", IMAGE, "--",
                                 "python", "-c", "print(1)"])
    assert result.exit_code == 0, result.output
    documents = list(yaml.safe_load_all(result.stdout))
    assert [d["kind"] for d in documents] == ["NetworkPolicy", "Job"]
    manifest = tmp_path / "sandbox.yaml"
    manifest.write_text(result.stdout)
    checked = runner.invoke(app, ["k8s", "-p", "sandbox", "-f", "json", str(manifest)])
    assert checked.exit_code == 0, checked.output


def test_a_dry_run_writes_its_audit_line_too(tmp_path: Path) -> None:
    audit = tmp_path / "audit.jsonl"
    result = runner.invoke(app, ["run", "--backend", "kubernetes", "--dry-run", "-p", "sandbox",
                                 "--audit-log", str(audit), "--image", IMAGE, "--", "true"])
    assert result.exit_code == 0, result.output
    (record,) = audit_lines(audit)
    assert (record["backend"], record["decision"], record["exit_code"]) == (
        "kubernetes", "dry-run", 0)
    assert record["cleanup"] == "no container had been created"


@pytest.mark.parametrize(("arguments", "code", "text"), [
    (["--image", "python:3.12"], 125, "by digest only"),
    (["--image", IMAGE, "--memory", "4g"], 125, "controls.resources.memory"),
    # A choice the command line cannot take is a usage error, caught before any launch.
    (["--image", IMAGE, "--as", "deployment"], 2,
     "--as deployment: expected pod, job, sandbox, sandbox-template or sandbox-claim"),
])
def test_dry_run_refusals(arguments: list[str], code: int, text: str) -> None:
    result = runner.invoke(app, ["run", "--backend", "kubernetes", "--dry-run", "-p", "sandbox",
                                 *arguments, "--", "true"])
    assert result.exit_code == code
    assert text in result.stderr


def test_kubernetes_options_need_the_kubernetes_backend() -> None:
    result = runner.invoke(app, ["run", "--dry-run", "--image", IMAGE, "--", "true"])
    assert result.exit_code == 2 and "--backend kubernetes" in result.stderr
    result = runner.invoke(app, ["run", "--backend", "podman", "--image", IMAGE, "--", "true"])
    assert result.exit_code == 2 and "expected docker or kubernetes" in result.stderr


@pytest.mark.skipif(importlib.util.find_spec("kubernetes") is not None,
                    reason="the kubernetes client is installed here")
def test_without_the_extra_submission_says_how_to_get_it(plan: Plan) -> None:
    backend = KubernetesBackend(plan.policy)
    with pytest.raises(KubernetesError, match=r"paracle-guard\[kubernetes\]"):
        backend.create(_spec(plan))


# --- a real API server --------------------------------------------------------------------

CLUSTER = os.environ.get("PARACLE_GUARD_TEST_KUBECONFIG")


@pytest.mark.kubernetes
@pytest.mark.skipif(
    not CLUSTER,
    reason="NO KUBERNETES CLUSTER: set PARACLE_GUARD_TEST_KUBECONFIG to a kubeconfig whose "
           "context may create pods (and `pip install paracle-guard[kubernetes]`) to run "
           "the submission path against a real API server; CI has no cluster",
)
def test_submission_against_a_real_cluster(plan: Plan, monkeypatch: pytest.MonkeyPatch,
                                           capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    monkeypatch.setenv("KUBECONFIG", str(CLUSTER))
    image = os.environ.get("PARACLE_GUARD_TEST_K8S_IMAGE", "")
    if not image:
        pytest.fail("PARACLE_GUARD_TEST_K8S_IMAGE must name a pullable image by digest "
                    "whose user is uid 1000")
    out = io.BytesIO()
    outcome = launch(plan, SandboxConfig(image=image, timeout=120),
                     ["sh", "-c", "echo hello; exit 3"], backend=KubernetesBackend(plan.policy),
                     stdout=out, stderr=io.BytesIO())
    assert outcome.exit_code == 3
    assert b"hello" in out.getvalue()


# --- the launch on a cluster, against a stand-in for the official client --------------------


class ApiException(Exception):
    def __init__(self, status: int = 403, reason: str = "Forbidden") -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class _Status:
    def __init__(self, phase: str, exit_code: int | None) -> None:
        self.phase = phase
        self.reason = None
        terminated = None if exit_code is None else type("T", (), {"exit_code": exit_code})()
        state = type("S", (), {"terminated": terminated})()
        self.container_statuses = [type("C", (), {"name": "sandbox", "state": state})()]


class _Pod:
    """What read_namespaced_pod returns: serialisable, with a status once released."""

    def __init__(self, body: dict[str, Any], status: _Status) -> None:
        self.body = body
        self.status = status


class _Logs:
    def stream(self, size: int) -> list[bytes]:
        return [b"hello\n"]


class FakeCluster:
    """Records every call; stores what is created, optionally changed by a 'webhook'."""

    def __init__(self, mutate: Any = None, *, forget_deletes: bool = False) -> None:
        self.calls: list[str] = []
        self.objects: dict[str, dict[str, Any]] = {}
        self.mutate = mutate
        self.forget_deletes = forget_deletes  # an API server that never lets go
        cluster = self

        def create(kind: str, namespace: str, body: dict[str, Any]) -> None:
            cluster.calls.append(f"create {kind} in {namespace}")
            stored = body if cluster.mutate is None or kind != "Pod" else cluster.mutate(body)
            cluster.objects[kind] = stored

        def read(kind: str) -> Any:
            if kind not in cluster.objects:
                raise ApiException(404, "Not Found")
            return cluster.objects[kind]

        def delete(kind: str) -> None:
            cluster.calls.append(f"delete {kind}")
            if not cluster.forget_deletes:
                cluster.objects.pop(kind, None)

        class Core:
            def create_namespaced_pod(self, namespace: str, body: dict[str, Any]) -> None:
                create("Pod", namespace, body)

            def read_namespaced_pod(self, name: str, namespace: str) -> Any:
                cluster.calls.append("read Pod")
                body = read("Pod")
                released = "patch gate" in cluster.calls
                return _Pod(body, _Status("Succeeded" if released else "Pending",
                                          3 if released else None))

            def patch_namespaced_pod(self, name: str, namespace: str, body: Any) -> None:
                assert body == [{"op": "remove", "path": "/spec/schedulingGates"}]
                cluster.calls.append("patch gate")

            def read_namespaced_pod_log(self, *args: Any, **kwargs: Any) -> _Logs:
                cluster.calls.append("logs")
                return _Logs()

            def delete_namespaced_pod(self, name: str, namespace: str, **kwargs: Any) -> None:
                delete("Pod")

        class Networking:
            def create_namespaced_network_policy(self, namespace: str, body: Any) -> None:
                create("NetworkPolicy", namespace, body)

            def read_namespaced_network_policy(self, name: str, namespace: str) -> Any:
                return read("NetworkPolicy")

            def delete_namespaced_network_policy(self, name: str, namespace: str) -> None:
                delete("NetworkPolicy")

        class ApiClient:
            def sanitize_for_serialization(self, stored: _Pod) -> Any:
                return stored.body

        client = type("client", (), {
            "CoreV1Api": Core, "NetworkingV1Api": Networking, "BatchV1Api": object,
            "ApiClient": ApiClient,
            "exceptions": type("exceptions", (), {"ApiException": ApiException}),
        })
        config = type("config", (), {
            "list_kube_config_contexts": staticmethod(
                lambda: ([], {"context": {"namespace": "agents"}})),
        })
        self.module = type("kubernetes", (), {"client": client, "config": config})


def deletes(cluster: FakeCluster) -> list[str]:
    return [call for call in cluster.calls if call.startswith("delete")]


def launch_on(cluster: FakeCluster, plan: Plan, audit: Path | None = None,
              **options: Any) -> tuple[int, bytes]:
    out = io.BytesIO()
    backend = KubernetesBackend(plan.policy, client=lambda: cluster.module)
    with open_audit(audit) as log:
        outcome = launch(plan, SandboxConfig(image=IMAGE, **options),
                         ["sh", "-c", "echo hello; exit 3"], backend=backend, stdout=out,
                         stderr=io.BytesIO(), audit=log)
    return outcome.exit_code, out.getvalue()


def test_the_launch_verifies_the_stored_pod_before_releasing_it(
        plan: Plan, tmp_path: Path) -> None:
    cluster = FakeCluster()
    code, out = launch_on(cluster, plan, tmp_path / "audit.jsonl")
    assert (code, out) == (3, b"hello\n")
    assert cluster.calls[:4] == ["create NetworkPolicy in agents", "create Pod in agents",
                                 "read Pod", "patch gate"]
    assert deletes(cluster) == ["delete Pod", "delete NetworkPolicy"]  # newest first
    assert cluster.objects == {}
    (record,) = audit_lines(tmp_path / "audit.jsonl")
    assert record["backend"] == "kubernetes" and record["decision"] == "completed"
    assert record["exit_code"] == 3 and record["image_id"] == IMAGE
    assert record["proof"].startswith("the pod runs on a cluster node")
    assert record["cleanup"].endswith("were deleted")


def test_a_pod_changed_by_admission_is_refused_and_deleted(plan: Plan, tmp_path: Path) -> None:
    def webhook(body: dict[str, Any]) -> dict[str, Any]:
        body["spec"]["containers"][0]["securityContext"]["capabilities"]["add"] = ["SYS_ADMIN"]
        return body

    cluster = FakeCluster(mutate=webhook)
    with pytest.raises(PolicyViolation) as refused:
        launch_on(cluster, plan, tmp_path / "audit.jsonl")
    assert {f.rule for f in refused.value.findings} == {"PG302"}
    assert "patch gate" not in cluster.calls
    assert deletes(cluster) == ["delete Pod", "delete NetworkPolicy"]
    assert cluster.objects == {}
    (record,) = audit_lines(tmp_path / "audit.jsonl")
    assert record["decision"] == "refused" and record["exit_code"] == 125


def test_objects_the_api_server_keeps_are_reported_not_claimed_removed(
        plan: Plan, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(k8s_cluster, "POLL_SECONDS", 0.0)
    cluster = FakeCluster(forget_deletes=True)
    with pytest.warns(RuntimeWarning, match=r"Pod/.* still exist in namespace agents"):
        code, _ = launch_on(cluster, plan)
    assert code == 3


@pytest.mark.parametrize("timeout", [float("inf"), float("nan"), 1e300, -1.0])
def test_timeouts_that_cannot_be_enforced_create_nothing(plan: Plan, timeout: float) -> None:
    cluster = FakeCluster()
    with pytest.raises(ValidationError, match="at most 604800"):
        launch_on(cluster, plan, timeout=timeout)
    assert cluster.calls == []


# --- the policy's runtime, as a RuntimeClass ------------------------------------------------


@pytest.fixture(scope="module")
def gvisor_plan() -> Plan:
    return Plan.compile(load_policy("sandbox-gvisor"))


@pytest.mark.parametrize("workload", ["pod", "job"])
def test_the_gvisor_runtime_class_is_set_verified_and_admitted(gvisor_plan: Plan,
                                                               workload: str) -> None:
    objects = objects_for(gvisor_plan, workload)
    pod = pod_of(objects)
    assert pod["spec"]["runtimeClassName"] == "gvisor"
    report = judge(gvisor_plan, render_manifests(objects), "generated.yaml")
    assert [f.rule for r in report.results for f in r.findings] == ["PG808"]
    assert Admission(gvisor_plan.policy).rejections(pod) == []
    for version in POD_KUBERNETES_VERSIONS:
        kubernetes_validate.validate(objects[-1], version, strict=True)
    # 1.30 knows runtimeClassName; only supplementalGroupsPolicy is new to it (see above).
    _pod_of(objects[-1])["securityContext"].pop("supplementalGroupsPolicy")
    kubernetes_validate.validate(objects[-1], KUBERNETES_VERSIONS[0], strict=True)
    # The sandbox policy asks for no runtime, so its Pod names no RuntimeClass.
    assert "runtimeClassName" not in pod_of(objects_for(Plan.compile(load_policy("sandbox"))))


def test_a_required_runtime_without_a_runtime_class_is_refused_by_the_rules() -> None:
    policy = Policy.model_validate({
        "controls": {"user": {"allowed_uids": [1000]},
                     "runtime": {"allowed": ["runsc"], "required": True}}})
    with pytest.raises(PolicyViolation) as refused:
        objects_for(Plan.compile(policy))
    assert "PG313" in str(refused.value)
    assert "runtimeClassName is not set" in str(refused.value)
