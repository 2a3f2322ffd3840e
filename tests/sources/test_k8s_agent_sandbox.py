"""Agent Sandbox resources: each pod they make judged as any Pod, at the lines that set it.

Every Pod case of ``k8s_cases`` is rewritten as a Sandbox, a SandboxTemplate and a
SandboxClaim (through a SandboxWarmPool) of both served versions, and must be
caught by exactly the same rules at the same keys. The rewritten manifests and
the fixtures under ``agent_sandbox/`` are first checked against the CRDs' own
schemas (``tests/agent_sandbox_crds.py``), so each is a resource the API server
accepts. The template's managed NetworkPolicy, the claims' merges and refusals,
and the references to templates not among the files are tested one by one.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from typer.testing import CliRunner

from paracle_guard.cli import app
from paracle_guard.report.models import Finding
from paracle_guard.sources.k8s import load_manifests
from paracle_guard.sources.k8s_agent_sandbox import GROUPS, SERVED_VERSIONS, name_hash
from paracle_guard.subject import Subject
from tests.agent_sandbox_crds import crd, served_versions, validate
from tests.runtime_containers import gvisor_plan, sandbox_plan
from tests.sources.test_k8s import CASES, EXPECTED, SPLIT, line_of

FIXTURES = Path(__file__).parent / "agent_sandbox"
FORMS = ("Sandbox", "SandboxTemplate", "SandboxClaim")
runner = CliRunner()


# --- the CRDs ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(GROUPS))
def test_every_served_version_of_every_kind_is_read(kind: str) -> None:
    definition = crd(kind)
    assert definition["spec"]["names"]["kind"] == kind
    assert definition["spec"]["group"] == GROUPS[kind]
    assert served_versions(kind) == SERVED_VERSIONS


def test_the_schema_check_is_not_a_rubber_stamp() -> None:
    sandbox = next(yaml.safe_load_all((FIXTURES / "hardened" / "sandbox.yaml").read_text()))
    validate(sandbox)
    sandbox["spec"]["podTemplate"]["spec"]["containers"][0]["securityContext"]["privilegd"] = True
    with pytest.raises(jsonschema.ValidationError, match="privilegd"):
        validate(sandbox)
    claim = {"apiVersion": "extensions.agents.x-k8s.io/v1beta1", "kind": "SandboxClaim",
             "metadata": {"name": "c"}, "spec": {"sandboxTemplateRef": {"name": "t"}}}
    with pytest.raises(jsonschema.ValidationError):
        validate(claim)  # v1beta1 claims name a warm pool, not a template
    validate({**claim, "apiVersion": "extensions.agents.x-k8s.io/v1alpha1"})


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("*/*.yaml")), ids=lambda p: p.stem)
def test_the_fixtures_are_valid_resources(path: Path) -> None:
    for item in yaml.safe_load_all(path.read_text()):
        if item["kind"] in GROUPS:
            validate(item)


# --- the Pod cases, as Agent Sandbox resources -------------------------------------------


def _blocks(lines: list[str]) -> dict[str, list[str]]:
    """A document's top-level keys and their lines (comments before apiVersion dropped)."""
    blocks: dict[str, list[str]] = {}
    key = ""
    for line in lines:
        if line and not line.startswith((" ", "#")):
            key = line.split(":", 1)[0]
            blocks[key] = [line]
        elif key:
            blocks[key].append(line)
    return blocks


def as_agent_sandbox(text: str, form: str, version: str) -> str:
    """The Pod of a case file as ``form``; its other documents as they are."""
    documents = text.split("\n---\n")
    index = next(i for i, d in enumerate(documents) if "\nkind: Pod\n" in d)
    blocks = _blocks(documents[index].splitlines())
    metadata = blocks["metadata"][1:]
    # name and namespace stay the object's; labels and annotations go to the pod template.
    own = [line for line in metadata if line.startswith(("  name:", "  namespace:"))]
    pod_metadata = [line for line in metadata if line not in own]
    kind = "Sandbox" if form == "Sandbox" else "SandboxTemplate"
    group = GROUPS[kind]
    lines = [f"apiVersion: {group}/{version}", f"kind: {kind}", "metadata:", *own, "spec:"]
    if kind == "SandboxTemplate":
        # The NetworkPolicies of the case decide, as they do for the Pod.
        lines.append("  networkPolicyManagement: Unmanaged")
    lines.append("  podTemplate:")
    if pod_metadata:
        lines += ["    metadata:", *("    " + line for line in pod_metadata)]
    lines += ["    spec:", *("    " + line if line else line for line in blocks["spec"][1:])]
    documents[index] = "\n".join(lines)
    if form == "SandboxClaim":
        extensions = GROUPS["SandboxClaim"]
        documents.append(textwrap.dedent(f"""\
            apiVersion: {extensions}/{version}
            kind: SandboxWarmPool
            metadata: {{name: pool}}
            spec: {{replicas: 1, sandboxTemplateRef: {{name: sandbox}}}}"""))
        reference = ("sandboxTemplateRef: {name: sandbox}" if version == "v1alpha1"
                     else "warmPoolRef: {name: pool}")
        documents.append(textwrap.dedent(f"""\
            apiVersion: {extensions}/{version}
            kind: SandboxClaim
            metadata: {{name: session}}
            spec: {{{reference}}}"""))
    return "\n---\n".join(documents) + "\n"


def judged(path: Path, kind: str) -> list[Subject]:
    return [s for s in load_manifests([path]) if s.judged and f"#{kind}/" in s.target]


def _findings(subjects: list[Subject]) -> list[Finding]:
    return [f for s in subjects for f in sandbox_plan().evaluate(s).findings if f.rule != "PG808"]


CASE_LINES: dict[str, dict[str, str]] = {
    **{case: dict.fromkeys(rules, text) for case, (rules, text) in EXPECTED.items()},
    **SPLIT,
}


@pytest.mark.parametrize("version", SERVED_VERSIONS)
@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("case", sorted(CASE_LINES))
def test_each_pod_case_is_caught_alike_as_an_agent_sandbox(
        tmp_path: Path, case: str, form: str, version: str) -> None:
    path = tmp_path / f"{case}.yaml"
    path.write_text(as_agent_sandbox((CASES / f"{case}.yaml").read_text(), form, version))
    for item in yaml.safe_load_all(path.read_text()):
        if item["kind"] in GROUPS and case != "pg901-parse-error":
            validate(item)
    subjects = judged(path, form)
    assert subjects and {s.target for s in subjects} == {f"{path}#{form}/" + (
        "session" if form == "SandboxClaim" else "sandbox") + "/main"}
    found = _findings(subjects)
    assert {f.rule for f in found} == set(CASE_LINES[case])
    pod_spec = line_of(path, "podTemplate:")
    for finding in found:
        text = CASE_LINES[case][finding.rule]
        after = pod_spec
        if case == "pg307-sensitive-mount" and finding.rule == "PG805":
            after = line_of(path, "- name: sock", after=pod_spec)  # the volume, not the mount
        assert (finding.location.path, finding.location.line) == (
            str(path), line_of(path, text, after=after)), finding


def test_a_claim_s_findings_name_the_claim_and_the_template(tmp_path: Path) -> None:
    path = tmp_path / "claim.yaml"
    path.write_text(as_agent_sandbox((CASES / "pg303-privileged.yaml").read_text(),
                                     "SandboxClaim", "v1beta1"))
    result = runner.invoke(app, ["k8s", "-p", "sandbox", "-f", "json", str(path)])
    assert result.exit_code == 1, result.output
    results = {r["target"]: r for r in json.loads(result.stdout)["results"]}
    claim = results[f"{path}#SandboxClaim/session"]
    assert claim["label"] == (f"SandboxClaim session, from SandboxTemplate sandbox through "
                              f"SandboxWarmPool pool, in {path}")
    assert claim["metadata"]["workload"] == "SandboxClaim/session"
    assert claim["metadata"]["template"].startswith("SandboxTemplate sandbox")
    (privileged,) = [f for f in claim["findings"] if f["rule"] == "PG303"]
    assert privileged["target"] == f"{path}#SandboxClaim/session/main"
    assert privileged["location"]["line"] == line_of(path, "privileged: true")
    # The template and the pool are judged too, each under its own name.
    assert {f"{path}#SandboxTemplate/sandbox", f"{path}#SandboxWarmPool/pool"} <= set(results)


# --- the network a template's controller gives its pods -----------------------------------

TEMPLATE = """\
apiVersion: extensions.agents.x-k8s.io/v1beta1
kind: SandboxTemplate
metadata: {{name: coder, namespace: agents}}
spec:
{network}  podTemplate:
    metadata: {{labels: {{app: coder}}}}
    spec:
      containers: [{{name: agent, image: busybox:1.36}}]
"""
ROUTER = ("      - from:\n          - namespaceSelector:\n              matchLabels: "
          "{kubernetes.io/metadata.name: agent-sandbox-system}\n            podSelector:\n"
          "              matchLabels: {app: sandbox-router}\n")


def _network(tmp_path: Path, network: str, *extra: str) -> tuple[Path, list[Finding]]:
    path = tmp_path / "template.yaml"
    path.write_text("\n---\n".join([TEMPLATE.format(network=network), *extra]))
    item = yaml.safe_load_all(path.read_text()).__next__()
    validate(item)
    subjects = judged(path, "SandboxTemplate")
    assert len(subjects) == 1
    return path, [f for f in sandbox_plan().evaluate(subjects[0]).findings if f.rule == "PG702"]


@pytest.mark.parametrize("network", [
    "  networkPolicy: {}\n",  # Managed by default; both lists missing: nothing in or out
    "  networkPolicyManagement: Managed\n  networkPolicy:\n    egress: []\n",
    "  networkPolicy:\n    ingress:\n" + ROUTER,  # only the router gets in
], ids=["empty", "no-egress", "router-only"])
def test_a_managed_policy_that_lets_nothing_out_cuts_the_pod_off(tmp_path: Path,
                                                                  network: str) -> None:
    assert _network(tmp_path, network)[1] == []


def test_egress_rules_in_the_managed_policy_are_the_network(tmp_path: Path) -> None:
    path, (finding,) = _network(
        tmp_path, "  networkPolicy:\n    ingress:\n" + ROUTER
        + "    egress:\n      - ports: [{protocol: TCP, port: 443}]\n")
    assert finding.location.line == line_of(path, "egress:")
    assert finding.message == (
        "the pod has the cluster network: the NetworkPolicy made from spec.networkPolicy of "
        "SandboxTemplate agents/coder allows egress (1 rule), while the policy's network "
        "mode is none")
    assert finding.fix is not None
    assert finding.fix.startswith("Set spec.networkPolicy of SandboxTemplate agents/coder")


def test_the_controller_s_default_policy_lets_the_pod_out(tmp_path: Path) -> None:
    path, (finding,) = _network(tmp_path, "")
    assert finding.location.line == line_of(path, "spec:")
    assert "the controller's default NetworkPolicy for SandboxTemplate agents/coder" in (
        finding.message)
    _, (managed,) = _network(tmp_path, "  networkPolicyManagement: Managed\n")
    assert managed.location.line == line_of(path, "networkPolicyManagement:")


def test_ingress_from_anyone_is_not_cut_off(tmp_path: Path) -> None:
    path, (finding,) = _network(
        tmp_path, "  networkPolicy:\n    ingress:\n      - ports: [{protocol: TCP, port: 8501}]\n")
    assert finding.location.line == line_of(path, "ingress:")
    assert "lets in more than pods picked by their labels (1 rule" in finding.message


DENY_ALL = """\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {{name: deny, namespace: agents}}
spec:
  podSelector: {selector}
  policyTypes: [Ingress, Egress]
"""


def test_policies_add_up_with_the_managed_one(tmp_path: Path) -> None:
    # A namespace-wide deny-all does not take away what the template's policy allows.
    open_egress = "  networkPolicy:\n    egress:\n      - {}\n"
    assert len(_network(tmp_path, open_egress, DENY_ALL.format(selector="{}"))[1]) == 1


@pytest.mark.parametrize(("selector", "isolated"), [
    ("{matchLabels: {app: coder}}", True),
    # The controller labels every pod of the template with the FNV-1a hash of its name.
    (f"{{matchLabels: {{agents.x-k8s.io/sandbox-template-ref-hash: '{name_hash('coder')}'}}}}",
     True),
    ("{matchLabels: {app: other}}", False),
])
def test_unmanaged_templates_are_cut_off_by_the_policies_in_the_files(
        tmp_path: Path, selector: str, isolated: bool) -> None:
    unmanaged = "  networkPolicyManagement: Unmanaged\n  networkPolicy:\n    egress: [{}]\n"
    _, found = _network(tmp_path, unmanaged, DENY_ALL.format(selector=selector))
    assert (found == []) is isolated
    if not isolated:
        assert "no NetworkPolicy in the checked files cuts it off" in found[0].message
        assert found[0].fix is not None and "kind: NetworkPolicy" in found[0].fix


def test_reserved_labels_of_a_template_never_reach_the_pod(tmp_path: Path) -> None:
    path = tmp_path / "template.yaml"
    path.write_text(TEMPLATE.format(network="  networkPolicyManagement: Unmanaged\n").replace(
        "{app: coder}", "{app: coder, agents.x-k8s.io/tenant: a}") + "---\n"
        + DENY_ALL.format(selector="{matchLabels: {agents.x-k8s.io/tenant: a}}"))
    (subject,) = judged(path, "SandboxTemplate")
    assert subject.kubernetes is not None
    assert subject.kubernetes.pod_labels == {
        "app": "coder", "agents.x-k8s.io/sandbox-template-ref-hash": name_hash("coder")}
    assert subject.runtime is not None and subject.runtime.network_mode != "none"


def test_name_hash_is_fnv_1a() -> None:
    # The published FNV-1a 32-bit test vectors.
    assert [name_hash(text) for text in ("", "a", "foobar")] == [
        "811c9dc5", "e40c292c", "bf9cf968"]


# --- pools and claims ------------------------------------------------------------------


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    for item in yaml.safe_load_all(path.read_text()):
        if item and item.get("kind") in GROUPS:
            validate(item)
    return path


def test_a_reference_to_a_template_not_in_the_files_is_a_notice(tmp_path: Path) -> None:
    pool = _write(tmp_path, "pool.yaml", (FIXTURES / "hardened" / "warmpool.yaml").read_text())
    claim = _write(tmp_path, "claim.yaml", (FIXTURES / "hardened" / "claim.yaml").read_text())
    result = runner.invoke(app, ["k8s", "-p", "sandbox", str(pool), str(claim)])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[:2] == [
        f"note: {pool}: SandboxWarmPool agents/coder-pool runs pods of SandboxTemplate coder, "
        "which is not among the checked files: its pods are not checked here",
        f"note: {claim}: SandboxClaim agents/alice runs pods of SandboxTemplate coder through "
        "SandboxWarmPool coder-pool, which is not among the checked files: its pods are not "
        "checked here",
    ]
    alone = runner.invoke(app, ["k8s", "-p", "sandbox", str(claim)])
    assert alone.stdout.splitlines()[0] == (
        f"note: {claim}: SandboxClaim agents/alice takes its sandboxes from SandboxWarmPool "
        "coder-pool, which is not among the checked files: its pods are not checked here")


CLAIM_TEMPLATE = """
apiVersion: extensions.agents.x-k8s.io/v1beta1
kind: SandboxTemplate
metadata: {{name: coder}}
spec:
  networkPolicy: {{}}
{policies}  volumeClaimTemplates:
    - metadata: {{name: workspace}}
      spec: {{storageClassName: fast, accessModes: [ReadWriteOnce],
             resources: {{requests: {{storage: 1Gi}}}}}}
  podTemplate:
    spec:
      containers:
        - name: agent
          image: busybox:1.36
          env:
            - {{name: MODE, value: safe}}
          volumeMounts: [{{name: workspace, mountPath: /workspace}}]
"""


def _claim(tmp_path: Path, policies: str, claim_spec: str) -> tuple[Path, list[Subject]]:
    _write(tmp_path, "template.yaml", CLAIM_TEMPLATE.format(policies=policies))
    path = _write(tmp_path, "claim.yaml", "\n".join([
        "apiVersion: extensions.agents.x-k8s.io/v1alpha1", "kind: SandboxClaim",
        "metadata: {name: alice}", "spec:", "  sandboxTemplateRef: {name: coder}",
        textwrap.indent(textwrap.dedent(claim_spec).strip("\n"), "  ")]) + "\n")
    subjects = load_manifests([tmp_path / "template.yaml", path])
    return path, [s for s in subjects if s.target.startswith(str(path))]


def test_a_claim_s_variables_join_the_container_as_the_template_allows(tmp_path: Path) -> None:
    path, (subject,) = _claim(tmp_path, "  envVarsInjectionPolicy: Overrides\n", """
        env:
          - {name: MODE, value: fast}
          - {name: GITHUB_TOKEN, value: ghp_x}
        """)
    assert [(v.name, v.value) for v in subject.env] == [("MODE", "fast"), ("GITHUB_TOKEN", "ghp_x")]
    (secret,) = [f for f in sandbox_plan().evaluate(subject).findings if f.rule == "PG601"]
    # The claim's line, for the claim's container.
    assert (secret.location.path, secret.location.line) == (
        str(path), line_of(path, "- {name: GITHUB_TOKEN"))
    assert secret.target == f"{path}#SandboxClaim/alice/agent"


@pytest.mark.parametrize(("policies", "claim_spec", "refusal"), [
    ("", "env: [{name: A, value: b}]",
     "env, while the template's envVarsInjectionPolicy is Disallowed"),
    ("  envVarsInjectionPolicy: Allowed\n", "env: [{name: MODE, value: x}]",
     "env MODE overrides the template's, while the policy is Allowed, not Overrides"),
    ("  envVarsInjectionPolicy: Allowed\n", "env: [{name: A, value: b, containerName: x}]",
     "env for container x, which the template does not have"),
], ids=["disallowed", "override", "no-container"])
def test_a_claim_the_template_forbids_runs_nothing(tmp_path: Path, policies: str,
                                                   claim_spec: str, refusal: str) -> None:
    path, (subject,) = _claim(tmp_path, policies, claim_spec)
    assert not subject.judged
    assert subject.notices == [f"{path}: SandboxClaim alice: the controller refuses it "
                               f"({refusal}), so no sandbox runs from it"]


def test_a_claim_s_volume_replaces_the_template_s_and_is_followed(tmp_path: Path) -> None:
    _write(tmp_path, "template.yaml", CLAIM_TEMPLATE.format(
        policies="  volumeClaimTemplatesPolicy: Overrides\n"))
    _write(tmp_path, "pool.yaml", """
        apiVersion: extensions.agents.x-k8s.io/v1beta1
        kind: SandboxWarmPool
        metadata: {name: pool}
        spec: {sandboxTemplateRef: {name: coder}}
        ---
        apiVersion: v1
        kind: PersistentVolume
        metadata: {name: node-socket}
        spec:
          storageClassName: ""
          capacity: {storage: 1Gi}
          accessModes: [ReadWriteOnce]
          hostPath: {path: /var/run/docker.sock}
        """)
    claim = _write(tmp_path, "claim.yaml", """
        apiVersion: extensions.agents.x-k8s.io/v1beta1
        kind: SandboxClaim
        metadata: {name: alice}
        spec:
          warmPoolRef: {name: pool}
          volumeClaimTemplates:
            - metadata: {name: workspace}
              spec: {storageClassName: "", accessModes: [ReadWriteOnce],
                     resources: {requests: {storage: 1Gi}}}
        """)
    subjects = load_manifests(sorted(tmp_path.glob("*.yaml")))
    rules: dict[str, set[str]] = {}
    for subject in subjects:
        kind = subject.target.split("#")[1].split("/")[0]
        rules.setdefault(kind, set()).update(
            f.rule for f in sandbox_plan().evaluate(subject).findings)
    # Only the claim's own volume binds the node's Docker socket.
    assert "PG307" in rules["SandboxClaim"]
    assert "PG307" not in rules["SandboxTemplate"] | rules["SandboxWarmPool"]
    disallowed = tmp_path / "template.yaml"
    disallowed.write_text(disallowed.read_text().replace(
        "volumeClaimTemplatesPolicy: Overrides", "volumeClaimTemplatesPolicy: Disallowed"))
    (note,) = [s for s in load_manifests(sorted(tmp_path.glob("*.yaml")))
               if "#SandboxClaim/" in s.target or s.target == str(claim)]
    assert not note.judged and "volumeClaimTemplatesPolicy is Disallowed" in note.notices[0]


def test_a_claim_s_labels_decide_which_policies_select_its_pod(tmp_path: Path) -> None:
    _write(tmp_path, "template.yaml", TEMPLATE.format(
        network="  networkPolicyManagement: Unmanaged\n") + "---\n"
        + DENY_ALL.format(selector="{matchLabels: {tenant: alice}}"))
    _write(tmp_path, "claim.yaml", """
        apiVersion: extensions.agents.x-k8s.io/v1alpha1
        kind: SandboxClaim
        metadata: {name: alice, namespace: agents}
        spec:
          sandboxTemplateRef: {name: coder}
          additionalPodMetadata: {labels: {tenant: alice}}
        """)
    networks = {s.target.split("#")[1]: s.runtime.network_mode
                for s in load_manifests(sorted(tmp_path.glob("*.yaml")))
                if s.runtime is not None}
    assert networks == {"SandboxTemplate/coder/agent": "", "SandboxClaim/alice/agent": "none"}


# --- what cannot be judged ----------------------------------------------------------------


@pytest.mark.parametrize(("text", "line", "message"), [
    ("apiVersion: agents.x-k8s.io/v1\nkind: Sandbox\nmetadata: {name: x}\n", 1,
     "Sandbox is served as agents.x-k8s.io/v1alpha1 and agents.x-k8s.io/v1beta1, not v1"),
    ("apiVersion: agents.x-k8s.io/v1beta1\nkind: Sandbox\nmetadata: {name: x}\nspec: {}\n", 1,
     "Sandbox x has no pod spec (spec.podTemplate.spec)"),
    ("apiVersion: extensions.agents.x-k8s.io/v1beta1\nkind: SandboxTemplate\n"
     "metadata: {name: x}\nspec:\n  networkPolicyManagement: Sometimes\n"
     "  podTemplate: {spec: {containers: [{name: c, image: b}]}}\n", 5,
     "must be one of Managed, Unmanaged, not 'Sometimes'"),
    ("apiVersion: extensions.agents.x-k8s.io/v1beta1\nkind: SandboxWarmPool\n"
     "metadata: {name: x}\nspec: {replicas: 1}\n", 4, "the object has no sandboxTemplateRef"),
    ("apiVersion: extensions.agents.x-k8s.io/v1beta1\nkind: SandboxClaim\n"
     "metadata: {name: x}\nspec: {sandboxTemplateRef: {name: t}}\n", 4,
     "the object has no warmPoolRef"),
])
def test_what_the_api_server_refuses_is_a_parse_error(tmp_path: Path, text: str, line: int,
                                                      message: str) -> None:
    path = tmp_path / "manifest.yaml"
    path.write_text(text)
    (subject,) = load_manifests([path])
    (problem,) = subject.parse_problems
    assert (problem.location.path, problem.location.line) == (str(path), line)
    assert message in problem.message


# --- the command on a folder of Agent Sandbox manifests -----------------------------------


def _report(folder: Path) -> tuple[int, dict[str, Any]]:
    result = runner.invoke(app, ["k8s", "-p", "sandbox", "-f", "json", str(folder)])
    return result.exit_code, json.loads(result.stdout)


def test_a_hardened_folder_passes_with_only_the_pids_note() -> None:
    code, report = _report(FIXTURES / "hardened")
    assert code == 0
    folder = FIXTURES / "hardened"
    assert sorted(r["target"] for r in report["results"]) == sorted([
        f"{folder}/claim.yaml#SandboxClaim/alice", f"{folder}/sandbox.yaml#Sandbox/hello",
        f"{folder}/template.yaml#SandboxTemplate/coder",
        f"{folder}/warmpool.yaml#SandboxWarmPool/coder-pool"])
    assert {f["rule"] for r in report["results"] for f in r["findings"]} == {"PG808"}


def test_a_folder_shaped_like_the_published_examples_says_what_to_fix() -> None:
    code, report = _report(FIXTURES / "published")
    assert code == 1
    folder = FIXTURES / "published"
    rules = {r["target"].split("#")[1]: {f["rule"] for f in r["findings"]}
             for r in report["results"]}
    assert "PG901" not in set().union(*rules.values())
    template = folder / "template.yaml"
    # The pool and the claim run the template's pods: the same findings, at its lines.
    assert rules["SandboxWarmPool/aider-warmpool"] == rules["SandboxClaim/user-session"] == (
        rules["SandboxTemplate/aider-template"])
    assert {"PG702", "PG810", "PG101", "PG201", "PG301", "PG304", "PG501", "PG701", "PG802",
            "PG804"} <= rules["SandboxTemplate/aider-template"]
    # The controller defaults the token off for a template's pods; a bare Sandbox keeps it.
    assert "PG801" not in rules["SandboxTemplate/aider-template"]
    assert "PG801" in rules["Sandbox/hello-world"]
    claim = next(r for r in report["results"] if "#SandboxClaim/" in r["target"])
    network = next(f for f in claim["findings"] if f["rule"] == "PG702")
    assert network["location"] == {"path": str(template),
                                   "line": line_of(template, "egress:"),
                                   "end_line": None, "layer": None}
    assert "allows egress (2 rules)" in network["message"]


@pytest.mark.parametrize("form", ["Sandbox", "SandboxTemplate"])
def test_an_agent_sandbox_runs_under_the_runtime_class_of_its_pod_template(
        tmp_path: Path, form: str) -> None:
    text = as_agent_sandbox((CASES / "hardened.yaml").read_text(), form, "v1beta1")
    path = tmp_path / "sandbox.yaml"
    path.write_text(text)
    (subject,) = judged(path, form)
    [finding] = [f for f in gvisor_plan().evaluate(subject).findings if f.rule != "PG808"]
    assert finding.rule == "PG313" and "runtimeClassName is not set" in finding.message
    # gVisor's RuntimeClass, given in the same files with the handler runsc.
    path.write_text(text.replace("    spec:\n", "    spec:\n      runtimeClassName: sandboxed\n", 1)
                    + "---\napiVersion: node.k8s.io/v1\nkind: RuntimeClass\n"
                    "metadata: {name: sandboxed}\nhandler: runsc\n")
    (subject,) = judged(path, form)
    assert subject.kubernetes is not None and subject.kubernetes.runtime_class_handler == "runsc"
    assert [f.rule for f in gvisor_plan().evaluate(subject).findings] == ["PG808"]
