"""Compose mounts resolved on this host, as the engine will see them.

The fixtures in ``compose_projects/`` are each the hardened service with one
change; the symlinks they name are made by the test in a copy, pointing at the
real host paths. Each is caught at the line of the volume entry.
"""

from __future__ import annotations

import os
import shutil
import textwrap
from pathlib import Path

from paracle_guard.sources.compose import load_compose
from paracle_guard.sources.compose_mounts import device_path
from paracle_guard.sources.compose_project import files_in, load_project
from paracle_guard.subject import Subject
from tests.runtime_containers import sandbox_plan

PROJECTS = Path(__file__).parent / "compose_projects"


def copy_project(tmp_path: Path, name: str) -> Path:
    target = tmp_path / name
    shutil.copytree(PROJECTS / name, target)
    return target


def line_of(path: Path, text: str) -> int:
    lines = path.read_text().splitlines()
    return next(n for n, line in enumerate(lines, start=1) if line.strip().startswith(text))


def findings(subject: Subject) -> list[tuple[str, str, int | None, str]]:
    return [(f.rule, os.path.basename(f.location.path), f.location.line, f.message)
            for f in sandbox_plan().evaluate(subject).findings]


def only(project: Path) -> Subject:
    (subject,) = load_compose(project, environ={})
    return subject


def test_a_bind_of_a_symlink_is_a_bind_of_what_it_points_at(tmp_path: Path) -> None:
    project = copy_project(tmp_path, "symlink-bind")
    (project / "socklink").symlink_to("/var/run/docker.sock")
    (project / "rootlink").symlink_to("/")
    compose = project / "compose.yaml"
    assert findings(only(project)) == [
        ("PG307", "compose.yaml", line_of(compose, "- ./socklink"),
         f"bind mount of ./socklink at /run/agent.sock exposes the container runtime's API "
         f"socket docker.sock, which is root on the host, through the symlink "
         f"{project}/socklink"),
        ("PG307", "compose.yaml", line_of(compose, "- ./rootlink"),
         f"bind mount of ./rootlink at /host exposes the host's whole filesystem, through the "
         f"symlink {project}/rootlink"),
    ]


def test_a_symlink_under_a_path_compose_creates_still_counts(tmp_path: Path) -> None:
    # Compose creates a missing bind source; under a link to /etc it lands in /etc.
    (tmp_path / "etclink").symlink_to("/etc")
    compose = tmp_path / "compose.yaml"
    compose.write_text("services:\n  app:\n    volumes: ['./etclink/new/dir:/cfg:ro']\n")
    mounts = only(tmp_path).runtime
    assert mounts is not None
    assert mounts.mounts[0].host_realpath == "/etc/new/dir"
    assert [f[0] for f in findings(only(tmp_path)) if f[0] == "PG307"] == ["PG307"]


def test_a_local_volume_whose_device_is_a_symlink(tmp_path: Path) -> None:
    project = copy_project(tmp_path, "symlink-device")
    (project / "socklink").symlink_to("/var/run/docker.sock")
    compose = project / "compose.yaml"
    assert findings(only(project)) == [
        ("PG307", "compose.yaml", line_of(compose, "- state:/state:ro"),
         f"volume state (binds {project}/socklink) at /state exposes the container runtime's "
         f"API socket docker.sock, which is root on the host, through the symlink "
         f"{project}/socklink"),
    ]


def test_a_relative_device_goes_where_compose_or_the_engine_puts_it(tmp_path: Path) -> None:
    compose = tmp_path / "compose.yaml"
    compose.write_text(textwrap.dedent("""\
        services:
          app:
            volumes: ["resolved:/a", "passed-on:/b"]
        volumes:
          resolved:
            driver: local
            driver_opts: {type: none, o: bind, device: ./data}
          passed-on:
            driver_opts: {type: none, o: bind, device: var/run/docker.sock}
    """))
    project = load_project(files_in(str(tmp_path), {}))
    # Compose resolves it only with driver: local; otherwise the engine gets it relative,
    # and mount(2) resolves it against the engine's working directory, /.
    assert device_path(project.volumes["resolved"]) == str(tmp_path / "data")
    assert device_path(project.volumes["passed-on"]) == "/var/run/docker.sock"
    assert "PG307" in {f[0] for f in findings(only(tmp_path))}


def test_volumes_from_a_container_fails_closed(tmp_path: Path) -> None:
    project = copy_project(tmp_path, "volumes-from-container")
    compose = project / "compose.yaml"
    assert findings(only(project)) == [
        ("PG307", "compose.yaml", line_of(compose, "- container:legacy-agent"),
         "volumes_from container:legacy-agent:ro inherits every mount of a container this file "
         "cannot show; they may include the Docker socket or the host's /"),
    ]


def test_volumes_from_a_service_inherits_what_it_inherits(tmp_path: Path) -> None:
    compose = tmp_path / "compose.yaml"
    compose.write_text(textwrap.dedent("""\
        services:
          agent:
            volumes: ["/var/run/docker.sock:/var/run/docker.sock:ro"]
          relay:
            volumes_from: ["container:legacy"]
          app:
            volumes_from: ["agent:ro", "service:relay"]
    """))
    *_, app = load_compose(compose, environ={})
    assert app.runtime is not None
    assert [(m.host_path, m.via, m.location.line) for m in app.runtime.mounts] == [
        ("/var/run/docker.sock", "volumes_from agent:ro", 7)]
    assert [(s.value, s.location.line) for s in app.runtime.unresolved_mounts] == [
        ("service:relay, through container:legacy", 7)]
    assert [f[0] for f in findings(app) if f[0] == "PG307"] == ["PG307", "PG307"]


def test_use_api_socket_binds_the_engine_socket(tmp_path: Path) -> None:
    # A client-side transform of Docker Compose (pkg/compose/apiSocket.go): the socket
    # is bound into the service, and into whatever takes its volumes.
    compose = tmp_path / "compose.yaml"
    compose.write_text(textwrap.dedent("""\
        services:
          agent:
            use_api_socket: true
          helper:
            volumes_from: [agent]
          off:
            use_api_socket: false
    """))
    agent, helper, off = load_compose(compose, environ={})
    assert agent.runtime is not None and helper.runtime is not None and off.runtime is not None
    assert [(m.type, m.host_path, m.target, m.read_only, m.location.line)
            for m in agent.runtime.mounts] == [
        ("bind", "/var/run/docker.sock", "/var/run/docker.sock", False, 3)]
    assert "registry credentials" in (agent.runtime.mounts[0].via or "")
    assert [m.host_path for m in helper.runtime.mounts] == ["/var/run/docker.sock"]
    assert off.runtime.mounts == []
    assert "PG307" in {f[0] for f in findings(agent)}
