"""Fixtures for launcher tests: probe images, a Launcher on the test engine, the CLI.

Containers the Python API starts carry the suite's run label, so the session
finaliser in tests/conftest.py removes them whatever happens. Containers the
CLI starts cannot be labelled from outside (the CLI takes no raw Docker
options), so CLI tests pass ``--env PARACLE_GUARD_TEST_RUN=<run id>`` and the
finaliser here removes every launcher container whose environment carries it.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker.errors
import pytest

from paracle_guard.docker_client import Engine
from paracle_guard.errors import GuardError
from paracle_guard.launcher.launch import Launcher
from paracle_guard.launcher.runspec import LAUNCHER_LABEL
from tests.conftest import RUN_ID
from tests.docker_images import (
    ACCOUNTS,
    LABEL,
    PID_LABEL,
    BuiltImage,
    ImageSpec,
    TestImages,
    file,
    symlink,
)

RUN_ENV = "PARACLE_GUARD_TEST_RUN"
LABELS = {LABEL: RUN_ID, PID_LABEL: str(os.getpid())}


def audit_lines(path: str | Path) -> list[dict[str, Any]]:
    """An audit log read as its users read it: one JSON document a line (a torn line raises)."""
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines()]
APPLETS = ("sh", "cat", "cp", "cut", "dd", "echo", "env", "grep", "head", "id", "ls", "pwd",
           "sed", "seq", "sleep", "sort", "touch", "tr", "true", "wc")


def probe_spec(name: str, marker: str) -> ImageSpec:
    """A non-root (numeric 1000:1000) image with busybox applets and a marker file."""
    return ImageSpec(
        name,
        layers=((*ACCOUNTS, *(symlink(f"/bin/{applet}", "busybox") for applet in APPLETS),
                 file("/etc/marker", marker + "\n")),),
        instructions=("USER 1000:1000",),
    )


@pytest.fixture(scope="session")
def probe_image(test_images: TestImages) -> BuiltImage:
    return test_images.get(probe_spec("launcher-probe", "A"))


@pytest.fixture(scope="session")
def other_image(test_images: TestImages) -> BuiltImage:
    return test_images.get(probe_spec("launcher-other", "B"))


@pytest.fixture(scope="session")
def launcher(engine: Engine) -> Iterator[Launcher]:
    with Launcher("sandbox", labels=LABELS, engine=engine) as sandbox:
        yield sandbox


def launcher_containers(client: Any) -> list[Any]:
    """Containers of this run started by the launcher, through the API or the CLI.

    Other test runs share the engine and remove their own containers at any moment:
    one that is gone between the listing and its inspect is simply not ours to count.
    """
    found = []
    for listed in client.api.containers(all=True, filters={"label": LAUNCHER_LABEL}):
        with contextlib.suppress(docker.errors.NotFound):
            container = client.containers.get(listed["Id"])
            env = container.attrs.get("Config", {}).get("Env") or []
            if container.labels.get(LABEL) == RUN_ID or f"{RUN_ENV}={RUN_ID}" in env:
                found.append(container)
    return found


@pytest.fixture(scope="session", autouse=True)
def _remove_cli_containers() -> Iterator[None]:
    yield
    with contextlib.suppress(GuardError), Engine.connect() as engine:
        for container in launcher_containers(engine.client):
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True)


def cli_command(*args: str) -> list[str]:
    return [sys.executable, "-c", "from paracle_guard.cli import main; main()", *args]


def run_cli(
    *args: str,
    input: bytes | None = None,
    timeout: float = 120,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """``paracle-guard ARGS`` in a subprocess, as a user would run it (``env``: added)."""
    return subprocess.run(cli_command(*args), input=input, capture_output=True,
                          timeout=timeout, check=False, cwd=cwd,
                          env={**os.environ, **env} if env else None)


def marked(*args: str) -> list[str]:
    """Options that let the finaliser find a CLI-started container of this run."""
    return ["--env", f"{RUN_ENV}={RUN_ID}", *args]
