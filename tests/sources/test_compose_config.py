"""The project model against the real ``docker compose config``, where Compose is installed.

For each project: the files Compose picks (or those given with -f), merged, and
the settings the rules read, compared service by service with what ``docker
compose config --format json`` prints. Every profile is activated (``--profile
"*"``) because paracle-guard judges every service, whatever its profiles.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest

from paracle_guard.sources.compose import load_compose, load_compose_files
from paracle_guard.subject import Subject

PROJECTS = Path(__file__).parent / "compose_projects"


def _compose_command() -> list[str] | None:
    for command in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(command[0]) is None:
            continue
        probe = subprocess.run([*command, "version"], capture_output=True, check=False)
        if probe.returncode == 0:
            return command
    return None


COMPOSE = _compose_command()
pytestmark = pytest.mark.skipif(
    COMPOSE is None,
    reason="docker compose is not installed here (the Compose CLI plugin cannot be built "
           "without a Go module proxy); this comparison runs where Compose is installed",
)


def compose_config(folder: Path, files: list[str]) -> dict[str, Any]:
    assert COMPOSE is not None
    given = [part for name in files for part in ("-f", name)]
    environ = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/")}
    done = subprocess.run([*COMPOSE, *given, "--profile", "*", "config", "--format", "json"],
                          cwd=folder, env=environ, capture_output=True, text=True, check=True)
    services: dict[str, Any] = json.loads(done.stdout)["services"]
    return services


def theirs(service: dict[str, Any]) -> dict[str, Any]:
    mounts = sorted((v.get("source") or "", v["target"], bool(v.get("read_only")))
                    for v in service.get("volumes", []) if v.get("type") in ("bind", "volume"))
    return {
        "image": service.get("image"),
        "user": service.get("user"),
        "privileged": bool(service.get("privileged")),
        "read_only": bool(service.get("read_only")),
        "cap_add": sorted(service.get("cap_add", [])),
        "cap_drop": sorted(service.get("cap_drop", [])),
        "security_opt": list(service.get("security_opt", [])),
        "network_mode": service.get("network_mode", ""),
        "environment": {k: v for k, v in (service.get("environment") or {}).items()},
        "mounts": mounts,
    }


def ours(subject: Subject) -> dict[str, Any]:
    config = subject.runtime
    assert config is not None, subject.parse_problems
    image = subject.metadata.get("image")
    mounts = sorted((m.host_path if m.type == "bind" else m.source or "", m.target, m.read_only)
                    for m in config.mounts
                    if m.type in ("bind", "volume") and not m.anonymous and m.via is None)
    return {
        "image": image,
        "user": config.user,
        "privileged": config.privileged,
        "read_only": config.read_only,
        "cap_add": sorted(c.raw for c in config.cap_add),
        "cap_drop": sorted(c.raw for c in config.cap_drop),
        "security_opt": [o.raw for o in config.security_opt],
        "network_mode": config.network_mode,
        "environment": {e.name: e.value for e in subject.env},
        "mounts": mounts,
    }


def by_service(subjects: list[Subject]) -> dict[str, dict[str, Any]]:
    return {s.target.rsplit("#", 1)[1]: ours(s) for s in subjects}


@pytest.mark.parametrize("project", ["override", "no-cgroup", "unpinned-image",
                                     "volumes-from-container"])
def test_the_default_files_of_each_fixture(tmp_path: Path, project: str) -> None:
    folder = tmp_path / project
    shutil.copytree(PROJECTS / project, folder)
    expected = {name: theirs(s) for name, s in compose_config(folder, []).items()}
    assert by_service(load_compose(folder, environ={})) == expected


def test_files_merged_in_order_with_extends_and_include(tmp_path: Path) -> None:
    def write(name: str, text: str) -> None:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(textwrap.dedent(text).lstrip("\n"))

    write("base.yaml", """
        include: [lib/compose.yaml]
        services:
          app:
            extends: {file: common.yaml, service: hardened}
            image: app:1
            environment: {A: "1", B: "1"}
            cap_add: [CHOWN]
            security_opt: ["no-new-privileges:false"]
            volumes: ["./data:/data", "/srv:/srv:ro"]
    """)
    write("common.yaml", """
        services:
          hardened:
            read_only: true
            cap_drop: [ALL]
            volumes: ["./shared:/shared:ro"]
    """)
    write("lib/compose.yaml", """
        services:
          db:
            image: db:1
            volumes: ["./state:/state"]
    """)
    write("prod.yaml", """
        services:
          app:
            user: "1000"
            environment: [B=2, C=2]
            cap_add: [CHOWN, NET_ADMIN]
            security_opt: ["no-new-privileges:true", "no-new-privileges:false"]
            volumes: ["/var/run/docker.sock:/data"]
          db:
            privileged: true
    """)
    files = ["base.yaml", "prod.yaml"]
    expected = {name: theirs(s) for name, s in compose_config(tmp_path, files).items()}
    found = load_compose_files([str(tmp_path / name) for name in files], environ={})
    assert by_service(found) == expected
