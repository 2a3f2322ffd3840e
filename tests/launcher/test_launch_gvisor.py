"""The enforced launch under gVisor (the built-in ``sandbox-gvisor`` policy), on the real engine.

Every promise of the sandbox policy must still hold under runsc, proven from
the host's records of the sandbox (``launcher/gvisor.py``): the sandbox's own
/proc on the host is gVisor's kernel, not the code. Inside, gVisor reports two
facts differently, and the tests pin that down too: /proc/self/status has no
NoNewPrivs line, and Seccomp is 0 (the OCI profile is not installed in the
sandbox; gVisor's kernel itself runs under a seccomp filter on the host).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from paracle_guard.docker_client import Engine
from paracle_guard.launcher.launch import PROVED_GVISOR, Launcher
from paracle_guard.launcher.probe import PACKAGES, run_probe
from paracle_guard.launcher.runspec import PolicyViolation, SandboxConfig
from tests.docker_images import BuiltImage, TestImages
from tests.launcher.conftest import LABELS, launcher_containers, marked, run_cli
from tests.launcher.test_launch import PROBE, probe_facts
from tests.launcher.test_probe import SHELL_ONLY

ABSENT = "runsc-not-registered"


@pytest.fixture(scope="module")
def gvisor_launcher(engine: Engine, gvisor: str) -> Iterator[Launcher]:
    with Launcher("sandbox-gvisor", labels=LABELS, engine=engine) as launcher:
        yield launcher


def test_run_starts_under_runsc_and_every_promise_holds(
    gvisor_launcher: Launcher, probe_image: BuiltImage, tmp_path: Path, docker_client: Any,
) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    os.chown(workspace, 1000, 1000)
    # The probe waits a moment, so the host reads the running sandbox, not an ended one.
    result = gvisor_launcher.run(
        SandboxConfig(image=probe_image.ref, workspace=workspace, env={"MODE": "fast"}),
        ["sh", "-c", "sleep 1; uname -r; " + PROBE],
    )
    assert result.exit_code == 0, result.stderr
    assert result.proof == PROVED_GVISOR
    assert {fact.name: fact.holds for fact in result.sandbox} == dict.fromkeys(
        ["runtime", "user", "groups", "capabilities", "NoNewPrivs", "Seccomp",
         "read-only root", "/tmp writable", "network"], True)
    assert result.stdout.splitlines()[0] == "4.4.0"  # gVisor's kernel, not the host's
    facts = probe_facts(result.stdout)
    assert (facts["uid"], facts["gid"], facts["groups"]) == ("1000", "1000", "1000")
    assert int(facts["CapEff"], 16) == 0
    assert facts["root"] == "read-only"
    assert facts["tmp"] == "noexec"
    assert facts["workspace"] == "writable"
    assert (workspace / "out.txt").read_text() == "from-the-sandbox\n"
    assert facts["netdev"] == "lo," and facts["classnet"] == "lo,"
    assert facts["mqueue"] == "closed"
    assert facts["env:MODE"] == "fast"
    # What gVisor reports differently inside (proven from the host instead, above).
    assert "NoNewPrivs" not in facts
    assert facts["Seccomp"] == "0"
    assert launcher_containers(docker_client) == []


def test_the_limits_hold_under_gvisor(gvisor_launcher: Launcher,
                                      probe_image: BuiltImage) -> None:
    config = SandboxConfig(image=probe_image.ref, memory="32m")
    above = gvisor_launcher.run(config, ["dd", "if=/dev/zero", "of=/dev/null", "bs=64M",
                                         "count=1"])
    assert above.exit_code == 137  # the whole sandbox is in the container's memory cgroup
    below = gvisor_launcher.run(config, ["dd", "if=/dev/zero", "of=/dev/null", "bs=8M",
                                         "count=1"])
    assert below.exit_code == 0, below.stderr
    # The pids limit counts gVisor's own threads too: 64 processes are never reached.
    bomb = gvisor_launcher.run(
        SandboxConfig(image=probe_image.ref, pids=64, timeout=60),
        ["sh", "-c", "for i in $(seq 64); do sleep 5 & done; wait"])
    assert bomb.exit_code != 0 and not bomb.timed_out


def test_a_pids_limit_gvisor_cannot_start_with_is_refused_before_create(
    gvisor_launcher: Launcher, probe_image: BuiltImage, docker_client: Any,
) -> None:
    with pytest.raises(PolicyViolation) as refused:
        gvisor_launcher.run(SandboxConfig(image=probe_image.ref, pids=32), ["true"])
    assert refused.value.key == "controls.resources.pids"
    assert "below 64" in str(refused.value)
    assert launcher_containers(docker_client) == []


def test_sandbox_test_proves_the_runtime_from_the_host(test_images: TestImages,
                                                       gvisor: str) -> None:
    image = test_images.get(SHELL_ONLY)
    report = run_probe(image.ref, policy="sandbox-gvisor", labels=LABELS)
    result = {check.name: check for check in report.checks}
    assert report.interpreter == "sh"
    host = ["runtime", "user", "groups", "capabilities", "NoNewPrivs", "Seccomp",
            "read-only root", "/tmp writable", "/workspace writable", "network", "limits",
            "hello"]
    assert {name: result[name].status for name in host} == dict.fromkeys(host, "pass")
    assert "executable is /usr/bin/runsc" in result["runtime"].observed
    assert result["user"].observed.startswith("Sentry: ")
    # Only what the image itself is about fails here: this image has no Python.
    failed = {name for name, check in result.items() if check.status == "fail"}
    assert failed == {"python", *(f"import {module}" for module in PACKAGES)}


def test_run_runtime_runc_is_refused_naming_the_policy_key(
    probe_image: BuiltImage, docker_client: Any, gvisor: str,
) -> None:
    done = run_cli("run", *marked("--policy", "sandbox-gvisor", "--runtime", "runc",
                                  "--image", probe_image.ref, "--", "true"))
    assert done.returncode == 125
    assert done.stderr.decode().strip().splitlines() == [
        "paracle-guard: error: --runtime runc is not allowed: controls.runtime.allowed is "
        "runsc"]
    assert launcher_containers(docker_client) == []


def test_without_the_runtime_registered_run_says_how_to_install_it(
    probe_image: BuiltImage, docker_client: Any, tmp_path: Path,
) -> None:
    # A runtime name the engine does not have: the shared engine keeps its runsc.
    policy = tmp_path / "absent.yaml"
    policy.write_text("apiVersion: paracle-guard/v1\nkind: Policy\nextends: [sandbox-gvisor]\n"
                      f"controls:\n  runtime: {{allowed: [{ABSENT}]}}\n")
    done = run_cli("run", *marked("--policy", str(policy), "--image", probe_image.ref,
                                  "--report", "json", "--", "true"))
    assert done.returncode == 125
    message = done.stderr.decode().strip().splitlines()[-1]
    assert message.startswith(f"paracle-guard: error: refused: controls.runtime.allowed names "
                              f"{ABSENT}, which the Docker Engine does not have")
    assert "apt-get install runsc" in message and "/etc/docker/daemon.json" in message
    assert json.dumps({"runtimes": {ABSENT: {"path": "/usr/bin/runsc",
                                             "runtimeArgs": ["--network=none"]}}}) in message
    assert launcher_containers(docker_client) == []
