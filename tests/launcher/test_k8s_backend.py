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
from typer.testing import CliRunner

from paracle_guard.cli import app
from paracle_guard.engine import Plan
from paracle_guard.errors import InputError
from paracle_guard.launcher import k8s_backend
from paracle_guard.launcher.k8s_backend import (
    KubernetesError,
    build_manifests,
    judge,
    pinned_image,
    prepare,
    quantity,
    render,
)
from paracle_guard.launcher.runspec import PolicyViolation, SandboxConfig
from paracle_guard.policy.loader import load_policy
from paracle_guard.policy.models import Policy
from tests.policy.test_export import KUBERNETES_VERSIONS, Admission

DIGEST = "sha256:" + "7" * 64
IMAGE = f"ghcr.io/acme/sandbox:1.0@{DIGEST}"
runner = CliRunner()


@pytest.fixture(scope="module")
def plan() -> Plan:
    return Plan.compile(load_policy("sandbox"))


def objects_for(plan: Plan, workload: str = "pod", **options: Any) -> list[dict[str, Any]]:
    config = SandboxConfig(base_image=options.pop("image", IMAGE), **options)
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
                                       "seccompProfile": {"type": "RuntimeDefault"}}
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
    report = judge(plan, render(objects_for(plan, workload)), "generated.yaml")
    assert not report.failed
    assert [f.rule for r in report.results for f in r.findings] == ["PG808"]


@pytest.mark.parametrize("workload", ["pod", "job"])
def test_round_trip_the_generated_pod_is_admitted(plan: Plan, workload: str) -> None:
    assert Admission(plan.policy).rejections(pod_of(objects_for(plan, workload))) == []


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("workload", ["pod", "job"])
def test_generated_manifests_match_the_openapi_schemas(plan: Plan, workload: str,
                                                       version: str) -> None:
    for item in objects_for(plan, workload):
        kubernetes_validate.validate(item, version, strict=True)


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
    config = SandboxConfig(base_image=IMAGE)
    _, objects = prepare(plan, config, ["true"], namespace="agents", name="sbx-2")
    assert {o["metadata"]["namespace"] for o in objects} == {"agents"}
    with pytest.raises(InputError, match="not a valid namespace"):
        build_manifests(_spec(plan), IMAGE, namespace="Bad_Name")


def _spec(plan: Plan) -> Any:
    spec, _ = prepare(plan, SandboxConfig(base_image=IMAGE), ["true"], name="sbx-3")
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


@pytest.mark.parametrize(("arguments", "code", "text"), [
    (["--image", "python:3.12"], 125, "by digest only"),
    (["--image", IMAGE, "--memory", "4g"], 125, "controls.resources.memory"),
    (["--image", IMAGE, "--as", "deployment"], 125, "--as deployment: expected pod or job"),
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
    spec = _spec(plan)
    with pytest.raises(KubernetesError, match=r"paracle-guard\[kubernetes\]"):
        k8s_backend.submit(plan, spec, build_manifests(spec, IMAGE))


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
    spec, objects = prepare(plan, SandboxConfig(base_image=image, timeout=120),
                            ["sh", "-c", "echo hello; exit 3"])
    assert k8s_backend.submit(plan, spec, objects) == 3
    assert b"hello" in capsysbinary.readouterr().out


# --- the submission flow, against a stand-in for the official client -----------------------


class _Status:
    def __init__(self, phase: str, exit_code: int | None) -> None:
        self.phase = phase
        self.reason = None
        terminated = None if exit_code is None else type("T", (), {"exit_code": exit_code})()
        state = type("S", (), {"terminated": terminated})()
        self.container_statuses = [type("C", (), {"name": "sandbox", "state": state})()]


class _Logs:
    def stream(self, size: int) -> list[bytes]:
        return [b"hello\n"]


class FakeCluster:
    """Records every call; stores what is created, optionally changed by a 'webhook'."""

    def __init__(self, mutate: Any = None) -> None:
        self.calls: list[str] = []
        self.stored: dict[str, Any] = {}
        self.mutate = mutate
        cluster = self

        class ApiException(Exception):
            status = 403
            reason = "Forbidden"

        class Core:
            def create_namespaced_pod(self, namespace: str, body: dict[str, Any]) -> None:
                cluster.calls.append(f"create Pod in {namespace}")
                cluster.stored = body if cluster.mutate is None else cluster.mutate(body)

            def read_namespaced_pod(self, name: str, namespace: str) -> Any:
                cluster.calls.append("read Pod")
                if not cluster.calls.count("patch gate"):
                    return cluster.stored
                return type("P", (), {"status": _Status("Succeeded", 3)})()

            def patch_namespaced_pod(self, name: str, namespace: str, body: Any) -> None:
                assert body == [{"op": "remove", "path": "/spec/schedulingGates"}]
                cluster.calls.append("patch gate")

            def read_namespaced_pod_log(self, *args: Any, **kwargs: Any) -> _Logs:
                cluster.calls.append("logs")
                return _Logs()

            def delete_namespaced_pod(self, name: str, namespace: str, **kwargs: Any) -> None:
                cluster.calls.append("delete Pod")

        class Networking:
            def create_namespaced_network_policy(self, namespace: str, body: Any) -> None:
                cluster.calls.append("create NetworkPolicy")

            def delete_namespaced_network_policy(self, name: str, namespace: str) -> None:
                cluster.calls.append("delete NetworkPolicy")

        class ApiClient:
            def sanitize_for_serialization(self, stored: Any) -> Any:
                return stored

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


def test_submission_verifies_the_stored_pod_before_releasing_it(
        plan: Plan, monkeypatch: pytest.MonkeyPatch) -> None:
    cluster = FakeCluster()
    monkeypatch.setattr(k8s_backend, "_client", lambda: cluster.module)
    spec = _spec(plan)
    out = io.BytesIO()
    code = k8s_backend.submit(plan, spec, build_manifests(spec, IMAGE), out=out)
    assert code == 3 and out.getvalue() == b"hello\n"
    assert cluster.stored["spec"]["schedulingGates"] == [{"name": k8s_backend.VERIFY_GATE}]
    assert cluster.calls[:4] == ["create NetworkPolicy", "create Pod in agents", "read Pod",
                                 "patch gate"]
    assert cluster.calls[-2:] == ["delete Pod", "delete NetworkPolicy"]


def test_a_pod_changed_by_admission_is_refused_and_deleted(
        plan: Plan, monkeypatch: pytest.MonkeyPatch) -> None:
    def webhook(body: dict[str, Any]) -> dict[str, Any]:
        body["spec"]["containers"][0]["securityContext"]["capabilities"]["add"] = ["SYS_ADMIN"]
        return body

    cluster = FakeCluster(mutate=webhook)
    monkeypatch.setattr(k8s_backend, "_client", lambda: cluster.module)
    spec = _spec(plan)
    with pytest.raises(PolicyViolation) as refused:
        k8s_backend.submit(plan, spec, build_manifests(spec, IMAGE))
    assert {f.rule for f in refused.value.findings} == {"PG302"}
    assert "patch gate" not in cluster.calls
    assert cluster.calls[-2:] == ["delete Pod", "delete NetworkPolicy"]
