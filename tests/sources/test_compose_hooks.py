"""Compose lifecycle hooks, judged as what they run in (sources/compose_hooks.py).

Each of these passed with no findings before: Compose runs a post_start, pre_stop or
develop exec with the hook's own user and privilege, and a pre_start hook as a
container of its own that keeps none of the service's hardening.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from paracle_guard.report.models import PolicyRef, Report, ToolInfo
from paracle_guard.severity import Severity
from paracle_guard.sources.compose import load_compose
from paracle_guard.subject import Subject
from tests.runtime_containers import sandbox_plan

HARDENED = """\
services:
  sandbox:
    image: paracle/sandbox:1.0
    user: "1000:1000"
    read_only: true
    cap_drop: [ALL]
    security_opt: ["no-new-privileges:true"]
    network_mode: none
    ipc: none
    cgroup: private
    mem_limit: 512m
    memswap_limit: 512m
    cpus: 1.0
    pids_limit: 256
"""


def project(tmp_path: Path, hooks: str) -> list[Subject]:
    path = tmp_path / "compose.yaml"
    path.write_text(HARDENED + textwrap.indent(textwrap.dedent(hooks), "    "))
    return load_compose(path, environ={})


def line_of(tmp_path: Path, text: str) -> int:
    lines = (tmp_path / "compose.yaml").read_text().splitlines()
    return next(n for n, line in enumerate(lines, start=1) if line.strip().startswith(text))


def found(subject: Subject) -> list[tuple[str, int | None]]:
    return [(f.rule, f.location.line) for f in sandbox_plan().evaluate(subject).findings]


def test_a_privileged_exec_hook_as_root_is_judged_as_that_exec(tmp_path: Path) -> None:
    service, hook = project(tmp_path, """\
        post_start:
          - command: ["sh", "-c", "id"]
            user: root
            privileged: true
    """)
    assert found(service) == []
    assert hook.target == f"{tmp_path / 'compose.yaml'}#sandbox/post_start[0]"
    assert hook.label == "post_start hook 1 (an exec in the container)"
    assert hook.whole is not None and hook.whole.target == service.target
    assert found(hook) == [("PG101", line_of(tmp_path, "user: root")),
                           ("PG303", line_of(tmp_path, "privileged: true"))]


def test_pre_stop_and_develop_execs_too(tmp_path: Path) -> None:
    _, pre_stop, develop = project(tmp_path, """\
        pre_stop:
          - command: drain
            privileged: "true"
        develop:
          watch:
            - path: ./src
              action: sync+exec
              target: /app
              exec:
                command: reload
                privileged: true
    """)
    assert pre_stop.target.endswith("#sandbox/pre_stop[0]")
    assert found(pre_stop) == [("PG303", line_of(tmp_path, 'privileged: "true"'))]
    assert develop.target.endswith("#sandbox/develop.watch[0].exec")
    assert found(develop) == [("PG303", line_of(tmp_path, "privileged: true"))]


def test_an_exec_hook_with_nothing_of_its_own_is_the_container(tmp_path: Path) -> None:
    subjects = project(tmp_path, """\
        post_start:
          - command: ["true"]
            privileged: false
          - command: ["true"]
            working_dir: /tmp
    """)
    assert [s.target.rsplit("#", 1)[1] for s in subjects] == ["sandbox"]


def test_a_pre_start_hook_is_a_container_without_the_services_hardening(
        tmp_path: Path) -> None:
    service, hook = project(tmp_path, """\
        volumes: ["/var/run/docker.sock:/var/run/docker.sock:ro"]
        pre_start:
          - command: ["sh", "-c", "chown -R 1000 /data"]
            image: alpine:3.20
    """)
    line = line_of(tmp_path, '- command: ["sh", "-c", "chown')
    assert hook.target.endswith("#sandbox/pre_start[0]")
    assert hook.runtime is not None
    # It takes the service's volumes (VolumesFrom) and network, and nothing else.
    assert [m.host_path for m in hook.runtime.mounts] == ["/var/run/docker.sock"]
    assert hook.runtime.network_mode == "none"
    assert [image.ref for image in hook.base_images] == ["alpine:3.20"]
    assert sorted(set(found(hook))) == [
        (rule, line) for rule in
        ("PG101", "PG201", "PG301", "PG304", "PG305", "PG307", "PG701")]
    assert ("PG307", line_of(tmp_path, "volumes:")) in found(service)


def test_a_pre_start_hook_without_an_image_runs_the_services(tmp_path: Path) -> None:
    _, hook = project(tmp_path, """\
        pre_start:
          - command: migrate
            user: "1000:1000"
            privileged: true
    """)
    assert [image.ref for image in hook.base_images] == ["paracle/sandbox:1.0"]
    assert hook.user is not None and hook.user.uid == 1000
    assert ("PG303", line_of(tmp_path, "privileged: true")) in found(hook)
    assert "PG101" not in {rule for rule, _ in found(hook)}


def test_hook_findings_are_reported_under_the_service_once(tmp_path: Path) -> None:
    path = tmp_path / "compose.yaml"
    path.write_text(textwrap.dedent("""\
        services:
          app:
            image: paracle/sandbox:1.0
            user: "1000:1000"
            post_start:
              - command: ["true"]
                user: "0"
    """))
    report = Report(tool=ToolInfo(version="test"), policy=PolicyRef(name="sandbox", sha256=""),
                    fail_on=Severity.ERROR)
    for subject in load_compose(path, environ={}):
        report.add(sandbox_plan().evaluate(subject))
    (result,) = report.results
    assert result.target == f"{path}#app"
    assert result.parts == {f"{path}#app/post_start[0]": "post_start hook 1 (an exec in the "
                                                          "container)"}
    # The service's own findings (no limits, no cap_drop...) are not repeated for the hook.
    assert len(result.findings) == len({(f.rule, f.message) for f in result.findings})
    hook = [(f.rule, f.location.line) for f in result.findings if f.target is not None]
    assert hook == [("PG101", 7)]
