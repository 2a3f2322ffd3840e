"""The Kubernetes source: every container of a workload to a Subject, read as the kubelet reads it.

``k8s_cases/`` holds the hardened Pod (with the NetworkPolicy that cuts it off
the network) and one file per rule: the hardened Pod with one change, caught by
exactly the rules meant for it, at the line of the key that causes it. PG808
(the pids limit a manifest cannot carry) is an info finding on every container
under the sandbox policy and is left out of the exact sets.
"""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from paracle_guard.cli import app
from paracle_guard.errors import InputError
from paracle_guard.sources.k8s import load_manifests, parse_quantity
from paracle_guard.subject import Subject
from tests.runtime_containers import gvisor_plan, sandbox_plan

CASES = Path(__file__).parent / "k8s_cases"
MIB = 1 << 20

# case file -> (rules expected besides PG808, text on the line every finding must point at;
# " #2" picks its second occurrence: the container's key rather than the pod's)
EXPECTED: dict[str, tuple[set[str], str]] = {
    "hardened": (set(), ""),
    "pg101-root-user": ({"PG101"}, "runAsUser: 0"),
    "pg102-uid-not-allowed": ({"PG102"}, "runAsUser: 2000"),
    "pg104-root-group": ({"PG104"}, "runAsGroup: 0"),
    "pg104-supplemental-groups": ({"PG104"}, "supplementalGroups: [0]"),
    "pg104-fs-group": ({"PG104"}, "fsGroup: 0"),
    # Unproven: a warning for the root group, an info for the policy's gid.
    "pg104-group-unproven": ({"PG104", "PG105"}, "runAsUser: 1000"),
    "pg105-gid-not-allowed": ({"PG105"}, "runAsGroup: 2000"),
    "pg201-writable-rootfs": ({"PG201"}, "readOnlyRootFilesystem: false"),
    "pg202-writable-path": ({"PG202"}, "- name: cache"),
    "pg204-unsafe-workdir": ({"PG204"}, "workingDir: /proc/self"),
    "pg301-capabilities-not-dropped": ({"PG301"}, "drop: [NET_RAW]"),
    "pg301-lower-case-all": ({"PG301"}, "drop: [all]"),
    "pg302-capability-added": ({"PG302"}, "- SYS_ADMIN"),
    "pg303-privileged": ({"PG303"}, "privileged: true"),
    "pg304-new-privileges-allowed": ({"PG304"}, "allowPrivilegeEscalation: true"),
    "pg305-host-namespace": ({"PG305"}, "hostPID: true"),
    "pg305-host-users": ({"PG305"}, "hostUsers: true"),
    "pg308-device-access": ({"PG308"}, "nvidia.com/gpu: 1"),
    "pg309-unsafe-sysctl": ({"PG309"}, "- name: net.core.somaxconn"),
    "pg311-published-port": ({"PG311"}, "hostPort: 8080"),
    "pg312-unconfined-profile": ({"PG312"}, "seccompProfile: #2"),
    "pg312-proc-mount": ({"PG312"}, "procMount: Unmasked"),
    "pg312-apparmor": ({"PG312"}, "appArmorProfile:"),
    "pg601-secret-in-env": ({"PG601"}, "- name: API_TOKEN"),
    "pg701-missing-limits": ({"PG701"}, "resources: {}"),
    "pg701-swap": ({"PG701"}, "memory: 256Mi"),
    "pg701-zero-limits": ({"PG701"}, "limits: {memory:"),
    "pg307-pvc-hostpath": ({"PG307"}, "- name: state"),
    "pg702-network-not-isolated": ({"PG702"}, "spec:"),
    "pg801-service-account-token": ({"PG801"}, "automountServiceAccountToken: true"),
    "pg801-projected-token": ({"PG801"}, "- serviceAccountToken:"),
    # Set by no container either: fixed in one line on the pod's securityContext.
    "pg802-run-as-non-root-not-set": ({"PG802"}, "securityContext:"),
    "pg803-unprovable-user": ({"PG102", "PG803"}, "runAsNonRoot: true"),
    "pg804-seccomp-not-set": ({"PG804"}, "securityContext:"),
    "pg805-restricted-volume-type": ({"PG805"}, "- name: shared"),
    "pg501-unpinned-image": ({"PG501"}, "image: registry.example/sandbox"),
    "pg810-secret-as-env": ({"PG810"}, "- secretRef:"),
    "pg811-supplemental-groups-merged": ({"PG811"}, "securityContext:"),
    "pg901-parse-error": ({"PG901"}, "readOnlyRootFilesystem: [true]"),
}
# Cases whose findings sit on two lines: (rule, text) for each.
SPLIT: dict[str, dict[str, str]] = {
    "pg307-sensitive-mount": {"PG307": "- name: sock", "PG805": "- name: sock"},
    "pg101-no-user": {"PG101": "- name: main", "PG802": "securityContext:"},
}


def line_of(path: Path, text: str, *, after: int = 0) -> int:
    text, _, nth = text.partition(" #")
    seen = 0
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if number > after and line.strip().startswith(text):
            seen += 1
            if seen == int(nth or 1):
                return number
    raise AssertionError(f"{text!r} is not in {path}")


def main_subject(path: Path) -> Subject:
    subjects = [s for s in load_manifests([path]) if s.judged]
    assert len(subjects) == 1, [s.target for s in subjects]
    return subjects[0]


def test_every_case_file_is_listed() -> None:
    assert {p.stem for p in CASES.glob("*.yaml")} == set(EXPECTED) | set(SPLIT)


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_each_case_is_caught_by_exactly_its_rules_at_their_line(case: str) -> None:
    expected, text = EXPECTED[case]
    path = CASES / f"{case}.yaml"
    subject = main_subject(path)
    assert subject.kind == "k8s"
    result = sandbox_plan().evaluate(subject)
    found = [f for f in result.findings if f.rule != "PG808"]
    assert {f.rule for f in found} == expected
    if case != "pg901-parse-error":
        assert subject.target == f"{path}#Pod/sandbox/main"
    # The first line starting with the text, after the Pod's own header.
    line = line_of(path, text, after=3) if text else None
    for finding in found:
        assert finding.location.path == str(path)
        assert finding.location.line == line, finding


def test_a_mount_and_its_volume_are_each_located() -> None:
    path = CASES / "pg307-sensitive-mount.yaml"
    result = sandbox_plan().evaluate(main_subject(path))
    lines = {f.rule: f.location.line for f in result.findings if f.rule != "PG808"}
    mount_line = line_of(path, "- name: sock")
    volume_line = line_of(path, "- name: sock", after=mount_line)
    assert lines == {"PG307": mount_line, "PG805": volume_line}


def test_a_missing_setting_no_container_has_is_the_pod_s_to_fix() -> None:
    path = CASES / "pg101-no-user.yaml"
    result = sandbox_plan().evaluate(main_subject(path))
    found = {(f.rule, f.location.line, f.target) for f in result.findings if f.rule != "PG808"}
    assert found == {
        # The container's own entry: about the container.
        ("PG101", line_of(path, "- name: main"), f"{path}#Pod/sandbox/main"),
        # The pod's securityContext: about the pod (target None: the result's own).
        ("PG802", line_of(path, "securityContext:", after=3), None),
    }


def test_the_hardened_pod_only_notes_the_pids_limit() -> None:
    result = sandbox_plan().evaluate(main_subject(CASES / "hardened.yaml"))
    assert [(f.rule, f.severity.value) for f in result.findings] == [("PG808", "info")]


# --- reading --------------------------------------------------------------------------------


def write(folder: Path, text: str, name: str = "manifest.yaml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


POD = """
apiVersion: v1
kind: Pod
metadata:
  name: p
spec:
  containers:
    - name: c
      image: busybox:1.36
"""


def test_every_workload_kind_and_every_container_type(tmp_path: Path) -> None:
    template = """
      template:
        spec:
          initContainers: [{name: init, image: busybox:1.36}]
          containers: [{name: app, image: busybox:1.36}]
          ephemeralContainers: [{name: debug, image: busybox:1.36}]
    """
    documents = []
    for kind, api in (("Deployment", "apps/v1"), ("StatefulSet", "apps/v1"),
                      ("DaemonSet", "apps/v1"), ("ReplicaSet", "apps/v1"),
                      ("Job", "batch/v1")):
        documents.append(f"apiVersion: {api}\nkind: {kind}\nmetadata: {{name: w}}\nspec:\n"
                         + textwrap.indent(textwrap.dedent(template).strip("\n"), "  "))
    documents.append(
        "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: w}\nspec:\n  schedule: '* * * * *'\n"
        "  jobTemplate:\n    spec:\n"
        + textwrap.indent(textwrap.dedent(template).strip("\n"), "      "))
    path = write(tmp_path, "\n---\n".join(documents))
    subjects = load_manifests([path])
    targets = [s.target.split("#", 1)[1] for s in subjects]
    for kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob"):
        assert [t for t in targets if t.startswith(kind + "/")] == [
            f"{kind}/w/init", f"{kind}/w/app", f"{kind}/w/debug"]
    kinds = {s.kubernetes.container_type for s in subjects if s.kubernetes is not None}
    assert kinds == {"initContainer", "container", "ephemeralContainer"}


def test_list_kinds_and_skipped_kinds(tmp_path: Path) -> None:
    path = write(tmp_path, """
        apiVersion: v1
        kind: List
        items:
          - apiVersion: v1
            kind: Service
            metadata: {name: s}
          - apiVersion: v1
            kind: Pod
            metadata: {name: p}
            spec:
              containers: [{name: c, image: busybox:1.36}]
        ---
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: m}
        """)
    assert [s.target for s in load_manifests([path])] == [f"{path}#Pod/p/c"]


def test_pod_and_container_security_context_merge(tmp_path: Path) -> None:
    subject = main_subject(write(tmp_path, """
        apiVersion: v1
        kind: Pod
        metadata: {name: p}
        spec:
          securityContext:
            runAsUser: 1000
            runAsGroup: 3000
            runAsNonRoot: false
            seccompProfile: {type: Unconfined}
          containers:
            - name: c
              image: busybox:1.36
              securityContext:
                runAsUser: 2000
                runAsNonRoot: true
                seccompProfile: {type: RuntimeDefault}
        """))
    assert subject.user is not None
    assert (subject.user.uid, subject.user.gid, subject.user.location.line) == (2000, 3000, 14)
    facts = subject.kubernetes
    assert facts is not None
    assert facts.run_as_non_root is True and facts.seccomp_profile == "RuntimeDefault"
    assert subject.runtime is not None
    assert subject.runtime.last_security_option("seccomp") is None


def test_yaml_1_1_booleans_as_the_api_server_reads_them(tmp_path: Path) -> None:
    subject = main_subject(write(tmp_path, """
        apiVersion: v1
        kind: Pod
        metadata: {name: p}
        spec:
          hostNetwork: yes
          containers:
            - name: c
              image: busybox:1.36
              securityContext: {readOnlyRootFilesystem: on, privileged: no}
        """))
    assert subject.runtime is not None
    assert subject.runtime.network_mode == "host"
    assert subject.runtime.read_only and not subject.runtime.privileged


def test_resources_and_quantities(tmp_path: Path) -> None:
    subject = main_subject(write(tmp_path, """
        apiVersion: v1
        kind: Pod
        metadata: {name: p}
        spec:
          containers:
            - name: c
              image: busybox:1.36
              resources:
                limits: {memory: 1Gi, cpu: 500m}
        """))
    assert subject.runtime is not None
    assert subject.runtime.memory == 1024 * MIB == subject.runtime.memory_swap
    assert subject.runtime.cpus == 0.5
    assert parse_quantity("512M") == 512_000_000
    assert parse_quantity("1e3") == 1000
    assert parse_quantity("1Ei") == 2**60 and parse_quantity("2E") == 2 * 10**18
    assert parse_quantity("0.5") * 2 == 1
    with pytest.raises(ValueError):
        parse_quantity("lots")


def test_network_policies_add_up(tmp_path: Path) -> None:
    deny = """
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: deny}
        spec:
          podSelector: {}
          policyTypes: [Ingress, Egress]
    """
    allow_dns = """
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: dns}
        spec:
          podSelector:
            matchExpressions: [{key: app, operator: Exists}]
          policyTypes: [Egress]
          egress: [{ports: [{port: 53, protocol: UDP}]}]
    """
    pod = textwrap.dedent(POD).replace("name: p\n", "name: p\n  labels: {app: x}\n")
    isolated = main_subject(write(tmp_path, pod + "---\n" + textwrap.dedent(deny)))
    assert isolated.runtime is not None and isolated.runtime.network_mode == "none"
    # Another file's policy counts; one allowing DNS egress ends the isolation.
    other = write(tmp_path, textwrap.dedent(allow_dns), "netpol.yaml")
    subjects = [s for s in load_manifests([tmp_path / "manifest.yaml", other]) if s.judged]
    assert len(subjects) == 1 and subjects[0].runtime is not None
    assert subjects[0].runtime.network_mode == ""
    assert [n.value for n in subjects[0].runtime.networks] == ["default"]


@pytest.mark.parametrize(("rules", "reason"), [
    # Only pods picked by their labels (the peer that drives the sandbox) may connect in.
    ("ingress: [{from: [{podSelector: {matchLabels: {app: router}}}]}]", None),
    ("ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/8}}]}]",
     "NetworkPolicy p lets in more than pods picked by their labels (1 rule with no from, an "
     "ipBlock or an empty podSelector)"),
    ("ingress: [{from: [{podSelector: {}}]}]", "lets in more than pods picked by their labels"),
    ("ingress: [{ports: [{port: 80}]}]", "lets in more than pods picked by their labels"),
    ("egress: [{to: [{podSelector: {matchLabels: {app: db}}}]}]",
     "NetworkPolicy p allows egress (1 rule)"),
])
def test_a_pod_is_off_the_network_when_nothing_goes_out(tmp_path: Path, rules: str,
                                                        reason: str | None) -> None:
    policy = ("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p}\n"
              "spec:\n  podSelector: {}\n  policyTypes: [Ingress, Egress]\n  " + rules + "\n")
    path = write(tmp_path, textwrap.dedent(POD) + "---\n" + policy)
    subject = main_subject(path)
    assert subject.runtime is not None
    assert (subject.runtime.network_mode == "none") is (reason is None)
    if reason is not None:
        (finding,) = [f for f in sandbox_plan().evaluate(subject).findings if f.rule == "PG702"]
        assert reason in finding.message
        # At the rules that let it in or out.
        assert finding.location.line == line_of(path, rules.split(":", 1)[0] + ":")


def test_secret_key_refs_are_secret_env(tmp_path: Path) -> None:
    subject = main_subject(write(tmp_path, """
        apiVersion: v1
        kind: Pod
        metadata: {name: p}
        spec:
          containers:
            - name: c
              image: busybox:1.36
              env:
                - name: PLAIN
                  value: "1"
                - name: DB_PASS
                  valueFrom:
                    secretKeyRef: {name: db, key: password}
        """))
    assert subject.kubernetes is not None
    assert [(s.value, s.location.line) for s in subject.kubernetes.secret_env] == [
        ("DB_PASS from Secret db", 11)]
    assert [(v.name, v.value) for v in subject.env] == [("PLAIN", "1"), ("DB_PASS", None)]


def test_apparmor_annotation_and_selinux_type(tmp_path: Path) -> None:
    subject = main_subject(write(tmp_path, """
        apiVersion: v1
        kind: Pod
        metadata:
          name: p
          annotations:
            container.apparmor.security.beta.kubernetes.io/c: unconfined
        spec:
          securityContext:
            seLinuxOptions: {type: spc_t}
          containers: [{name: c, image: busybox:1.36}]
        """))
    assert subject.runtime is not None
    assert [(o.key, o.value) for o in subject.runtime.security_opt] == [
        ("apparmor", "unconfined"), ("label", "type:spc_t")]


@pytest.mark.parametrize(("text", "line", "message"), [
    ("kind: Pod\nspec: [\n", 3, "invalid YAML"),
    ("apiVersion: v1\nmetadata: {name: x}\n", 1, "the object has no kind"),
    ("apiVersion: example.com/v1\nkind: Sandbox\nmetadata: {name: x}\n", 1,
     "kind Sandbox is not a workload paracle-guard knows"),
    ("apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec: {containers: []}\n", 4,
     "the pod spec has no containers"),
    ("apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec:\n  containers:\n"
     "    - {name: c, image: b, securityContext: {runAsUser: root}}\n", 6,
     "expected an integer"),
    ("apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec:\n  containers:\n"
     "    - name: c\n      image: b\n      volumeMounts: [{name: v, mountPath: /v}]\n", 8,
     "names no volume of the pod"),
    ("apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec:\n  containers:\n"
     "    - {name: c, image: b, resources: {limits: {memory: lots}}}\n", 6,
     "is not a Kubernetes quantity"),
    ("a: 1\na: 2\n", 2, "duplicate key"),
])
def test_what_cannot_be_judged_is_a_parse_error(tmp_path: Path, text: str, line: int,
                                                message: str) -> None:
    path = write(tmp_path, text)
    subject = main_subject(path)
    assert len(subject.parse_problems) == 1
    problem = subject.parse_problems[0]
    assert problem.location.path == str(path)
    assert problem.location.line == line
    assert message in problem.message
    assert {f.rule for f in sandbox_plan().evaluate(subject).findings} == {"PG901"}


def test_an_empty_file_and_a_missing_file(tmp_path: Path) -> None:
    path = write(tmp_path, "# nothing\n")
    (empty,) = load_manifests([path])
    assert not empty.judged and empty.notices == [
        f"{path}: no workload (Pod, Deployment, Job...) in this file: nothing to check"]
    with pytest.raises(InputError, match="cannot read"):
        load_manifests([tmp_path / "missing.yaml"])


# --- the command ------------------------------------------------------------------------------


def test_the_command_reports_lines_workloads_and_containers(tmp_path: Path) -> None:
    runner = CliRunner()
    case = CASES / "pg303-privileged.yaml"
    result = runner.invoke(app, ["k8s", "-p", "sandbox", "-f", "json", str(case)])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    (checked,) = report["results"]
    assert checked["target"] == f"{case}#Pod/sandbox"
    assert (checked["label"], checked["metadata"]["workload"]) == ("Pod sandbox", "Pod/sandbox")
    assert checked["parts"] == {f"{case}#Pod/sandbox/main": "container main"}
    privileged = [f for f in checked["findings"] if f["rule"] == "PG303"]
    assert privileged[0]["location"]["line"] == line_of(case, "privileged: true")
    assert privileged[0]["target"] == f"{case}#Pod/sandbox/main"
    sarif = runner.invoke(app, ["k8s", "-p", "sandbox", "-f", "sarif", str(case)])
    assert f'"startLine": {line_of(case, "privileged: true")}' in sarif.stdout
    assert runner.invoke(app, ["k8s", "-p", "sandbox", str(CASES / "hardened.yaml")]
                         ).exit_code == 0
    missing = runner.invoke(app, ["k8s", str(tmp_path / "missing.yaml")])
    assert missing.exit_code == 2 and "no such file or directory" in missing.stderr
    broken = runner.invoke(app, ["k8s", "-p", "sandbox", str(CASES / "pg901-parse-error.yaml")])
    assert broken.exit_code == 1 and "PG901" in broken.stdout


def test_a_file_with_no_workload_is_fine_and_said(tmp_path: Path) -> None:
    only_service = write(tmp_path, "apiVersion: v1\nkind: Service\nmetadata: {name: s}\n")
    result = CliRunner().invoke(app, ["k8s", "-p", "sandbox", str(only_service)])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"note: {only_service}: no workload (Pod, Deployment, Job...) in this file: nothing to "
        "check",
        "no findings in 1 file, 0 workloads (policy sandbox)",
    ]


def test_a_folder_is_searched_and_standard_input_read(tmp_path: Path) -> None:
    (tmp_path / "apps" / "web").mkdir(parents=True)
    shutil.copy(CASES / "pg303-privileged.yaml", tmp_path / "apps" / "web" / "pod.yml")
    shutil.copy(CASES / "hardened.yaml", tmp_path / "apps" / "hardened.yaml")
    (tmp_path / "apps" / "README.md").write_text("not a manifest\n")
    (tmp_path / "apps" / ".git").mkdir()
    (tmp_path / "apps" / ".git" / "config.yaml").write_text("a: [\n")
    runner = CliRunner()
    result = runner.invoke(app, ["k8s", "-p", "sandbox", "-f", "json", str(tmp_path / "apps")])
    assert result.exit_code == 1, result.output
    targets = [r["target"] for r in json.loads(result.stdout)["results"]]
    assert targets == [f"{tmp_path}/apps/hardened.yaml#Pod/sandbox",
                       f"{tmp_path}/apps/web/pod.yml#Pod/sandbox"]
    piped = runner.invoke(app, ["k8s", "-p", "sandbox", "-f", "json", "-",
                                "--stdin-filename", "deploy/pod.yaml"],
                          input=(CASES / "pg303-privileged.yaml").read_bytes())
    assert piped.exit_code == 1
    (result_of_stdin,) = json.loads(piped.stdout)["results"]
    assert result_of_stdin["target"] == "deploy/pod.yaml#Pod/sandbox"
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "README.md").write_text("no manifests here\n")
    empty = runner.invoke(app, ["k8s", str(tmp_path / "docs")])
    assert empty.exit_code == 2 and "no manifests" in empty.stderr


# --- runtime class (PG313 under sandbox-gvisor) ----------------------------------------------


def hardened_with(tmp_path: Path, pod_lines: str = "", extra: str = "") -> Path:
    """The hardened case, with ``pod_lines`` added to its pod spec and ``extra`` documents."""
    text = (CASES / "hardened.yaml").read_text()
    if pod_lines:
        text = text.replace("spec:\n  automountServiceAccountToken: false\n",
                            "spec:\n" + pod_lines + "  automountServiceAccountToken: false\n", 1)
    path = tmp_path / "pod.yaml"
    path.write_text(text + ("\n---\n" + textwrap.dedent(extra).lstrip("\n") if extra else ""))
    return path


def gvisor_findings(path: Path) -> list[tuple[str, int | None, str]]:
    [subject] = load_manifests([path])
    return [(f.rule, f.location.line, f.message)
            for f in gvisor_plan().evaluate(subject).findings if f.rule != "PG808"]


RUNTIME_CLASS = """
    apiVersion: node.k8s.io/v1
    kind: RuntimeClass
    metadata:
      name: {name}
    handler: {handler}
    """


def test_a_pod_without_a_runtime_class_under_gvisor(tmp_path: Path) -> None:
    path = hardened_with(tmp_path)
    assert gvisor_findings(path) == [
        ("PG313", line_of(path, "spec:"),
         "runtimeClassName is not set: the node's default runtime runs the pod, not runsc "
         "(runtimeClassName: gvisor)")]
    # The sandbox policy itself does not ask for a runtime.
    assert [f.rule for f in sandbox_plan().evaluate(main_subject(path)).findings] == ["PG808"]


def test_the_policy_maps_the_runtime_class_to_its_handler(tmp_path: Path) -> None:
    path = hardened_with(tmp_path, "  runtimeClassName: gvisor\n")
    assert gvisor_findings(path) == []
    subject = main_subject(path)
    assert subject.kubernetes is not None and subject.kubernetes.runtime_class == "gvisor"
    assert subject.kubernetes.runtime_class_handler is None  # not in the files


def test_a_runtime_class_in_the_files_decides(tmp_path: Path) -> None:
    # Another name, whose RuntimeClass (in the files) selects runsc: proven.
    path = hardened_with(tmp_path, "  runtimeClassName: sandboxed\n",
                         RUNTIME_CLASS.format(name="sandboxed", handler="runsc"))
    assert gvisor_findings(path) == []
    assert main_subject(path).runtime.oci_runtime == "runsc"  # type: ignore[union-attr]
    # The mapped name, but the files redefine it to runc: the files win.
    path = hardened_with(tmp_path, "  runtimeClassName: gvisor\n",
                         RUNTIME_CLASS.format(name="gvisor", handler="runc"))
    assert gvisor_findings(path) == [
        ("PG313", line_of(path, "runtimeClassName: gvisor"),
         "RuntimeClass gvisor selects the handler runc (the RuntimeClass in these files), "
         "which controls.runtime.allowed does not list (runsc)")]


def test_an_unknown_runtime_class_cannot_be_proven(tmp_path: Path) -> None:
    path = hardened_with(tmp_path, "  runtimeClassName: kata\n")
    [(rule, line, message)] = gvisor_findings(path)
    assert (rule, line) == ("PG313", line_of(path, "runtimeClassName: kata"))
    assert "RuntimeClass kata is not among the checked files" in message


def test_runtime_classes_in_another_file_and_in_old_api_versions(tmp_path: Path) -> None:
    pod = hardened_with(tmp_path, "  runtimeClassName: sandboxed\n")
    classes = write(tmp_path, """
        apiVersion: node.k8s.io/v1alpha1
        kind: RuntimeClass
        metadata: {name: sandboxed}
        spec:
          runtimeHandler: runsc
        """, name="classes.yaml")
    subjects = load_manifests([pod, classes])
    assert [s.runtime.oci_runtime for s in subjects if s.runtime] == ["runsc"]
    assert "PG313" not in {f.rule for f in gvisor_plan().evaluate(subjects[0]).findings}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (RUNTIME_CLASS.format(name="gvisor", handler="runsc")
         + "---\n" + RUNTIME_CLASS.format(name="gvisor", handler="runc"),
         "handler: RuntimeClass gvisor is defined twice, with handlers runsc and runc"),
        ("apiVersion: node.k8s.io/v1\nkind: RuntimeClass\nmetadata: {name: gvisor}\n",
         "RuntimeClass gvisor has no handler"),
    ],
)
def test_runtime_classes_that_cannot_be_judged(tmp_path: Path, extra: str, message: str) -> None:
    path = hardened_with(tmp_path, "  runtimeClassName: gvisor\n", extra)
    problems = [p.message for s in load_manifests([path]) for p in s.parse_problems]
    assert problems == [message]


def test_an_empty_runtime_class_name_is_refused_like_the_api_server(tmp_path: Path) -> None:
    path = hardened_with(tmp_path, '  runtimeClassName: ""\n')
    [subject] = load_manifests([path])
    assert [p.message for p in subject.parse_problems] == [
        "spec.runtimeClassName: must name a RuntimeClass, not be empty"]
