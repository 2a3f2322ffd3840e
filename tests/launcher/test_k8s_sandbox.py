"""The kubernetes backend's Agent Sandbox forms: the launcher's Pod, as a Sandbox or a template.

No cluster is needed: every generated object is validated against the Agent
Sandbox CRDs' own OpenAPI v3 schemas (closed to unknown fields, as strict field
validation is), read back through ``paracle-guard k8s`` and admitted by the
exported ValidatingAdmissionPolicy for Agent Sandbox resources.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from paracle_guard.cli import app
from paracle_guard.engine import Plan
from paracle_guard.launcher import k8s_backend
from paracle_guard.launcher.k8s_backend import judge, prepare, render_manifests
from paracle_guard.launcher.k8s_sandbox import FORMS
from paracle_guard.launcher.runspec import PolicyViolation, SandboxConfig
from paracle_guard.policy.loader import load_policy
from paracle_guard.policy.models import Policy
from tests.agent_sandbox_crds import validate
from tests.launcher.test_k8s_backend import IMAGE
from tests.test_admission import SandboxAdmission

KINDS = {"sandbox": ["NetworkPolicy", "Sandbox"], "sandbox-template": ["SandboxTemplate"],
         "sandbox-claim": ["SandboxTemplate", "SandboxWarmPool", "SandboxClaim"]}
runner = CliRunner()


@pytest.fixture(scope="module")
def plan() -> Plan:
    return Plan.compile(load_policy("sandbox"))


def objects_for(plan: Plan, form: str, **options: Any) -> list[dict[str, Any]]:
    _, objects = prepare(plan, SandboxConfig(image=IMAGE, **options),
                         ["python", "-c", "print(1)"], workload=form,  # type: ignore[arg-type]
                         name="sbx-1", namespace="agents")
    return objects


def by_kind(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {item["kind"]: item for item in objects}


@pytest.mark.parametrize("form", FORMS)
def test_the_pod_template_is_the_launcher_s_pod(plan: Plan, form: str) -> None:
    objects = objects_for(plan, form, timeout=30)
    assert [item["kind"] for item in objects] == KINDS[form]
    _, (isolation, pod) = prepare(plan, SandboxConfig(image=IMAGE, timeout=30),
                                  ["python", "-c", "print(1)"], name="sbx-1",
                                  namespace="agents")
    holder = by_kind(objects).get("Sandbox") or by_kind(objects)["SandboxTemplate"]
    assert holder["spec"]["podTemplate"] == {
        "metadata": {key: pod["metadata"][key] for key in ("labels", "annotations")},
        "spec": pod["spec"]}
    assert {item["metadata"]["namespace"] for item in objects} == {"agents"}
    if form == "sandbox":
        assert objects[0] == isolation  # a bare Sandbox gets the Pod's deny-all


@pytest.mark.parametrize("form", FORMS)
def test_every_generated_object_matches_the_crd_schemas(plan: Plan, form: str) -> None:
    for item in objects_for(plan, form):
        if item["kind"] != "NetworkPolicy":
            validate(item)


@pytest.mark.parametrize("form", FORMS)
def test_paracle_guard_k8s_finds_nothing_above_info(plan: Plan, form: str) -> None:
    report = judge(plan, render_manifests(objects_for(plan, form)), "generated.yaml")
    assert not report.failed
    assert {f.rule for r in report.results for f in r.findings} == {"PG808"}
    judged = [r.target for r in report.results]
    assert len(judged) == len(KINDS[form]) - KINDS[form].count("NetworkPolicy")


@pytest.mark.parametrize("form", FORMS)
def test_the_exported_admission_policy_admits_them(plan: Plan, form: str) -> None:
    admission = SandboxAdmission(plan.policy)
    for item in objects_for(plan, form):
        if item["kind"] in ("Sandbox", "SandboxTemplate"):
            assert admission.rejections(item) == [], item["kind"]


def test_the_template_s_own_policy_isolates_it(plan: Plan) -> None:
    template = by_kind(objects_for(plan, "sandbox-claim"))
    assert template["SandboxTemplate"]["spec"]["networkPolicyManagement"] == "Managed"
    assert template["SandboxTemplate"]["spec"]["networkPolicy"] == {}
    assert template["SandboxWarmPool"]["spec"] == {
        "replicas": 0, "sandboxTemplateRef": {"name": "sbx-1"}}
    assert template["SandboxClaim"]["spec"]["warmPoolRef"] == {"name": "sbx-1-pool"}
    bridge = Plan.compile(Policy.model_validate({"controls": {
        "network": {"mode": "bridge"}, "user": {"allowed_uids": [1000]}}}))
    spec = by_kind(objects_for(bridge, "sandbox-template"))["SandboxTemplate"]["spec"]
    assert spec["networkPolicyManagement"] == "Unmanaged" and "networkPolicy" not in spec
    assert [item["kind"] for item in objects_for(bridge, "sandbox")] == ["Sandbox"]


@pytest.mark.parametrize("form", FORMS)
def test_the_rules_verify_what_the_builder_makes(plan: Plan, form: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    built = k8s_backend.pod_spec

    def careless(*args: Any, **kwargs: Any) -> dict[str, Any]:
        spec = built(*args, **kwargs)
        spec["containers"][0]["securityContext"]["privileged"] = True
        return spec

    monkeypatch.setattr(k8s_backend, "pod_spec", careless)
    with pytest.raises(PolicyViolation) as refused:
        objects_for(plan, form)
    assert {f.rule for f in refused.value.findings} == {"PG303"}


@pytest.mark.parametrize("form", FORMS)
def test_dry_run_prints_what_paracle_guard_k8s_passes(tmp_path: Path, form: str) -> None:
    result = runner.invoke(app, ["run", "--backend", "kubernetes", "--dry-run", "-p", "sandbox",
                                 "--as", form, "--image", IMAGE, "--", "python", "-c",
                                 "print(1)"])
    assert result.exit_code == 0, result.output
    documents = list(yaml.safe_load_all(result.stdout))
    assert [d["kind"] for d in documents] == KINDS[form]
    manifest = tmp_path / "sandbox.yaml"
    manifest.write_text(result.stdout)
    checked = runner.invoke(app, ["k8s", "-p", "sandbox", "--fail-on", "info", str(manifest)])
    assert checked.exit_code == 1, checked.output  # the one info note: the pids limit
    assert "0 errors, 0 warnings" in checked.stdout
    assert runner.invoke(app, ["k8s", "-p", "sandbox", str(manifest)]).exit_code == 0


def test_without_dry_run_the_forms_are_refused() -> None:
    result = runner.invoke(app, ["run", "--backend", "kubernetes", "-p", "sandbox",
                                 "--as", "sandbox-claim", "--image", IMAGE, "--", "true"])
    assert result.exit_code == 125
    assert "--as sandbox-claim: only with --dry-run" in result.stderr


def test_the_command_line_judges_the_forms_before_printing(
        monkeypatch: pytest.MonkeyPatch) -> None:
    built = k8s_backend.pod_spec

    def careless(*args: Any, **kwargs: Any) -> dict[str, Any]:
        spec = built(*args, **kwargs)
        spec["hostPID"] = True
        return spec

    monkeypatch.setattr(k8s_backend, "pod_spec", careless)
    result = runner.invoke(app, ["run", "--backend", "kubernetes", "--dry-run", "-p", "sandbox",
                                 "--as", "sandbox-template", "--image", IMAGE, "--", "true"])
    assert result.exit_code == 125
    assert result.stdout == ""  # nothing printed
    assert "PG305" in result.stderr
