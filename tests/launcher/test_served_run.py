"""``paracle-guard run`` handed to a warm server (``paracle-guard serve``), on the real engine.

The command line that is served must behave as the one that is not: the command's
streams and exit code, standard input, and a Ctrl-C or a killed command line that
removes the container.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.docker_images import BuiltImage
from tests.launcher.conftest import audit_lines, launcher_containers, marked
from tests.warm_server import ENTRY, WarmServer, needs_a_server, warm_server

pytestmark = [pytest.mark.docker, needs_a_server]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[WarmServer]:
    with warm_server(tmp_path / "runtime", tmp_path / "serve.log") as started:
        yield started


def run_args(image: BuiltImage, *command: str, options: tuple[str, ...] = ()) -> list[str]:
    return ["run", "--image", image.ref, "--policy", "sandbox", *marked(*options), "--",
            *command]


def test_the_command_streams_and_exit_code_are_the_same_served(
        server: WarmServer, probe_image: BuiltImage, tmp_path: Path) -> None:
    args = run_args(probe_image, "sh", "-c", "cat /etc/marker; echo to-stderr >&2; exit 3")
    served = server.run(*args, cwd=tmp_path)
    assert server.ran() == 1, server.log_text()
    assert (served.returncode, served.stdout, served.stderr) == (3, b"A\n", b"to-stderr\n")
    unserved = server.run_unserved(*args, cwd=tmp_path)
    assert (unserved.returncode, unserved.stdout, unserved.stderr) == (
        served.returncode, served.stdout, served.stderr)


def test_standard_input_reaches_the_command(server: WarmServer, probe_image: BuiltImage,
                                            tmp_path: Path) -> None:
    served = server.run(*run_args(probe_image, "wc", "-c", options=("--stdin",)),
                        cwd=tmp_path, input=b"x" * 100_000)
    assert served.returncode == 0, served.stderr
    assert served.stdout.strip() == b"100000"
    assert server.ran() == 1


def test_a_refusal_is_the_same_served(server: WarmServer, probe_image: BuiltImage,
                                      tmp_path: Path) -> None:
    args = run_args(probe_image, "true", options=("--network", "host"))
    served = server.run(*args, cwd=tmp_path)
    assert served.returncode == 125
    unserved = server.run_unserved(*args, cwd=tmp_path)
    assert (served.returncode, served.stdout, served.stderr) == (
        unserved.returncode, unserved.stdout, unserved.stderr)
    assert server.ran() == 1


def wait_for_container(docker_client: Any) -> None:
    deadline = time.monotonic() + 60
    while not any(c.status == "running" for c in launcher_containers(docker_client)):
        assert time.monotonic() < deadline, "the container never started"
        time.sleep(0.1)


def wait_for_no_container(docker_client: Any) -> None:
    deadline = time.monotonic() + 60
    while launcher_containers(docker_client):
        assert time.monotonic() < deadline, "the container was not removed"
        time.sleep(0.1)


def test_ctrl_c_at_the_command_line_interrupts_the_served_launch(
        server: WarmServer, probe_image: BuiltImage, docker_client: Any,
        tmp_path: Path) -> None:
    client = subprocess.Popen([*ENTRY, *run_args(probe_image, "sleep", "60")], cwd=tmp_path,
                              env=server.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for_container(docker_client)
        client.send_signal(signal.SIGINT)
        _, stderr = client.communicate(timeout=60)
    finally:
        client.kill()
    assert client.returncode == 128 + signal.SIGINT
    assert stderr.decode().startswith("paracle-guard: error: interrupted by SIGINT; ")
    assert launcher_containers(docker_client) == []
    assert "exit status 130" in server.log_text()


def test_a_killed_command_line_still_removes_its_container(
        server: WarmServer, probe_image: BuiltImage, docker_client: Any,
        tmp_path: Path) -> None:
    client = subprocess.Popen([*ENTRY, *run_args(probe_image, "sleep", "60")], cwd=tmp_path,
                              env=server.env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        wait_for_container(docker_client)
        client.kill()  # SIGKILL: nothing of the command line runs any more
        client.wait()
        wait_for_no_container(docker_client)
    finally:
        client.kill()
    deadline = time.monotonic() + 30
    while ": ran " not in server.log_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "exit status 143" in server.log_text()  # ended as SIGTERM ends a launch


def test_the_server_log_names_the_command_line_behind_a_served_audit_line(
        server: WarmServer, probe_image: BuiltImage, tmp_path: Path) -> None:
    audit = tmp_path / "audit.jsonl"
    served = server.run(*run_args(probe_image, "true", options=("--audit-log", str(audit))),
                        cwd=tmp_path)
    assert served.returncode == 0, served.stderr
    [record] = audit_lines(audit)
    ran = [line for line in server.log_text().splitlines() if ": ran 'run'" in line]
    assert len(ran) == 1 and f"(worker {record['pid']}): ran 'run'" in ran[0]
