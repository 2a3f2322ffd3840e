"""The launcher proves the real container: hostile images, hostile paths, hostile options.

Against the real engine. The hostile images are the issue's: ``/tmp -> /etc`` made
by a later layer, and ``/workspace -> /usr/local/bin``. The hostile path is a
workspace swapped for another folder between the check and the mount, and a
racer of another uid exchanging it with a symlink while launches run.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from paracle_guard.docker_client import Engine
from paracle_guard.image_tree import ImageTree
from paracle_guard.launcher import docker_backend
from paracle_guard.launcher.backend import CheckedImage
from paracle_guard.launcher.docker_backend import DockerBackend
from paracle_guard.launcher.launch import Launcher, launch
from paracle_guard.launcher.refusal import LaunchError
from paracle_guard.launcher.runspec import PolicyViolation, SandboxConfig
from tests.docker_images import BuiltImage, ImageSpec, TestImages, busybox, directory, symlink
from tests.launcher.conftest import (
    LABELS,
    audit_lines,
    launcher_containers,
    marked,
    probe_spec,
    run_cli,
)
from tests.tar_bytes import THROUGH_OWN_LINK

pytestmark = pytest.mark.docker

RACER_UID = 2000
LAUNCHES = 40
# The racer runs as RACER_UID, which cannot enter /root (where a pyenv interpreter lives).
RACER_PYTHON = Path("/usr/bin/python3")


def _hostile(name: str, layer: tuple[Any, ...], *steps: str) -> ImageSpec:
    base = probe_spec(name, "H")
    return ImageSpec(name, layers=(*base.layers, layer),
                     instructions=(*steps, *base.instructions))


# FROM a compliant image, as root: rm -rf /tmp; ln -s /etc /tmp; then USER 1000:1000.
TMP_TO_ETC = _hostile("hostile-tmp-etc", (directory("/tmp", 0o1777),),
                      busybox("rm", "-rf", "/tmp"), busybox("ln", "-s", "/etc", "/tmp"))
WORKSPACE_TO_BIN = _hostile("hostile-workspace-bin", (directory("/usr/local/bin"),
                                                      symlink("/workspace", "/usr/local/bin")))


@pytest.fixture(scope="module")
def tmp_to_etc(test_images: TestImages) -> BuiltImage:
    return test_images.get(TMP_TO_ETC)


@pytest.fixture(scope="module")
def workspace_to_bin(test_images: TestImages) -> BuiltImage:
    return test_images.get(WORKSPACE_TO_BIN)


def created_from(client: Any, image_id: str, since: float) -> list[str]:
    """IDs of containers the engine created from ``image_id`` since ``since`` (events)."""
    events = client.api.events(since=int(since) - 1, until=int(time.time()) + 1,
                               filters={"type": "container", "event": "create"}, decode=True)
    return [event["id"] for event in events
            if event.get("timeNano", 0) >= since * 1e9
            and (event.get("Actor") or {}).get("Attributes", {}).get("image") == image_id]


def workspace(parent: Path, name: str = "ws") -> Path:
    folder = parent / name
    folder.mkdir()
    os.chown(folder, 1000, 1000)
    return folder


# --- hostile images: refused before anything is created ----------------------------------


@pytest.mark.parametrize(("image", "target", "landing"), [
    ("tmp_to_etc", "/tmp", "/etc"), ("workspace_to_bin", "/workspace", "/usr/local/bin")])
@pytest.mark.parametrize("with_workspace", [False, True])
def test_an_image_that_redirects_a_writable_mount_is_refused_with_the_rule(
    request: pytest.FixtureRequest, docker_client: Any, tmp_path: Path, image: str,
    target: str, landing: str, with_workspace: bool,
) -> None:
    built: BuiltImage = request.getfixturevalue(image)
    options = ["--workspace", str(workspace(tmp_path))] if with_workspace else []
    since = time.time()
    done = run_cli("run", "--image", built.ref, *marked(*options), "--",
                   "sh", "-c", f"echo owned > {target}/owned; echo owned > /etc/owned")
    assert done.returncode == 125, done.stderr
    assert b"PG206 unsafe-mount-target" in done.stderr
    assert f"{target} is a symlink to {landing}".encode() in done.stderr
    assert b"Traceback" not in done.stderr
    assert created_from(docker_client, built.id, since) == []
    if with_workspace:
        assert list((tmp_path / "ws").iterdir()) == []


def test_a_layer_that_writes_through_its_own_link_is_refused_before_create(
    docker_client: Any, test_images: TestImages,
) -> None:
    # x -> / then x/tmp -> /etc, loaded as is: the engine makes /tmp -> /etc.
    image = test_images.load_layers("through-symlink", (THROUGH_OWN_LINK["symlink"],))
    since = time.time()
    done = run_cli("run", "--image", image.ref, *marked(), "--",
                   "sh", "-c", "echo owned > /etc/owned")
    assert done.returncode == 125, done.stderr
    assert b"writes /x/tmp through /x, a link the same layer made" in done.stderr
    assert b"Traceback" not in done.stderr
    assert created_from(docker_client, image.id, since) == []


def test_paracle_guard_image_reports_the_same_rule(tmp_to_etc: BuiltImage) -> None:
    done = run_cli("image", tmp_to_etc.ref, "--policy", "sandbox")
    assert done.returncode == 1
    assert b"PG206 unsafe-mount-target" in done.stdout
    assert b"/tmp is a symlink to /etc; runc would mount on /etc instead" in done.stdout


def test_a_waiver_does_not_let_a_redirected_mount_through(
    engine: Engine, tmp_to_etc: BuiltImage, docker_client: Any,
) -> None:
    from paracle_guard.policy.loader import load_policy
    from paracle_guard.policy.models import Waiver

    waived = load_policy("sandbox").model_copy(update={"exceptions": [
        Waiver(rule="unsafe-mount-target", target="*", reason="trying to get round it")]})
    since = time.time()
    with Launcher(waived, labels=LABELS, engine=engine) as launcher, \
            pytest.raises(PolicyViolation, match="PG206") as refused:
        launcher.run(SandboxConfig(image=tmp_to_etc.ref), ["true"])
    assert refused.value.findings[0].rule == "PG206"
    assert created_from(docker_client, tmp_to_etc.id, since) == []


# --- after start: what the kernel shows, proved from the host ----------------------------


@pytest.fixture
def blind_image_check(monkeypatch: pytest.MonkeyPatch) -> None:
    """As if the image reading had missed the symlink: only the host's proof is left."""
    monkeypatch.setattr(ImageTree, "mount_target_problem", lambda *args, **kwargs: None)


@pytest.mark.usefixtures("blind_image_check")
def test_the_host_proof_kills_a_tmpfs_that_landed_on_etc(
    launcher: Launcher, tmp_to_etc: BuiltImage, docker_client: Any, tmp_path: Path,
) -> None:
    audit = tmp_path / "audit.jsonl"
    with Launcher("sandbox", labels=LABELS, engine=launcher.engine, audit_log=audit) as sandbox, \
            pytest.raises(PolicyViolation) as refused:
        sandbox.run(SandboxConfig(image=tmp_to_etc.ref),
                    ["sh", "-c", "sleep 5; echo owned > /etc/owned; echo wrote"])
    codes = {finding.rule for finding in refused.value.findings}
    assert codes == {"PG206", "PG202"}
    assert "the tmpfs declared at /tmp is not mounted there" in str(refused.value)
    assert "/etc is writable" in str(refused.value)
    assert launcher_containers(docker_client) == []
    (record,) = audit_lines(audit)
    assert record["decision"] == "refused" and record["exit_code"] == 125
    assert record["cleanup"].endswith("was removed")


@pytest.mark.usefixtures("blind_image_check")
def test_the_host_proof_kills_a_workspace_that_landed_on_the_path(
    launcher: Launcher, workspace_to_bin: BuiltImage, docker_client: Any, tmp_path: Path,
) -> None:
    folder = workspace(tmp_path)
    with pytest.raises(PolicyViolation) as refused:
        launcher.run(SandboxConfig(image=workspace_to_bin.ref, workspace=folder),
                     ["sh", "-c", "sleep 5; echo '#!/bin/sh' > /usr/local/bin/ls"])
    assert {finding.rule for finding in refused.value.findings} == {"PG206", "PG202"}
    assert list(folder.iterdir()) == []  # killed before the command wrote a thing
    assert launcher_containers(docker_client) == []


def test_a_workspace_swapped_after_the_check_is_caught_before_the_command_writes(
    engine: Engine, probe_image: BuiltImage, docker_client: Any, tmp_path: Path,
) -> None:
    """Root (trusted) swaps the folder between check and create: the inode proves it."""
    checked, other = workspace(tmp_path), workspace(tmp_path, "other")

    def swap(_: CheckedImage) -> None:
        os.rename(checked, tmp_path / "moving")
        os.rename(other, checked)
        os.rename(tmp_path / "moving", other)

    with pytest.raises(PolicyViolation) as refused:
        launch(Launcher("sandbox").plan,
               SandboxConfig(image=probe_image.ref, workspace=checked),
               ["sh", "-c", "sleep 5; echo leak > /workspace/leak"],
               backend=DockerBackend(engine), stdout=io.BytesIO(), stderr=io.BytesIO(),
               labels=LABELS, after_check=swap)
    assert f"/workspace is not the {checked} that was checked" in str(refused.value)
    assert [p.name for p in checked.iterdir()] == [] and [p.name for p in other.iterdir()] == []
    assert launcher_containers(docker_client) == []


def test_a_command_that_ends_at_once_is_reported_as_unproved_not_refused(
    launcher: Launcher, probe_image: BuiltImage,
) -> None:
    result = launcher.run(SandboxConfig(image=probe_image.ref), ["true"])
    assert result.exit_code == 0
    assert result.proof is not None
    assert (result.host is None) == result.proof.startswith("the command ended before")


def test_a_running_command_is_proved_from_the_host(
    launcher: Launcher, probe_image: BuiltImage, tmp_path: Path,
) -> None:
    folder = workspace(tmp_path)
    result = launcher.run(SandboxConfig(image=probe_image.ref, workspace=folder),
                          ["sh", "-c", "cat >/dev/null; echo done"], stdin="go\n")
    assert result.exit_code == 0 and result.stdout == "done\n"
    assert result.proof == "proved from the host: mounts, credentials, network and limits " \
                           "as specified"
    host = result.host
    assert host is not None
    assert {process.uids for process in host.processes} == {(1000,) * 4}
    assert host.identities["/workspace"] == (folder.stat().st_dev, folder.stat().st_ino)
    assert host.interfaces == ["lo"]
    assert host.limits is not None and host.limits.memory == 512 << 20


def test_a_writable_path_spelled_otherwise_is_mounted_and_proved_where_it_lands(
    engine: Engine, probe_image: BuiltImage,
) -> None:
    # The engine (runc's securejoin) puts a tmpfs for "//tmp/" on /tmp, and the kernel's
    # mount table says /tmp: the launcher mounts, and proves, the normal form.
    from paracle_guard.policy.loader import load_policy

    base = load_policy("sandbox")
    spelled = base.model_copy(update={"controls": base.controls.model_copy(update={
        "root_filesystem": base.controls.root_filesystem.model_copy(
            update={"writable_paths": ["/workspace/", "//tmp/"]})})})
    with Launcher(spelled, labels=LABELS, engine=engine) as launcher:
        result = launcher.run(SandboxConfig(image=probe_image.ref),
                              ["sh", "-c", "cat >/dev/null; echo x > /tmp/f; cat /tmp/f"],
                              stdin="go\n")
    assert result.exit_code == 0 and result.stdout == "x\n"
    assert result.proof is not None and result.proof.startswith("proved from the host")


def test_a_remote_engine_is_refused_before_anything_is_created(
    engine: Engine, probe_image: BuiltImage, docker_client: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(engine, "host", "tcp://10.0.0.7:2376")
    since = time.time()
    with pytest.raises(LaunchError, match="not on this machine"):
        launch(Launcher("sandbox").plan, SandboxConfig(image=probe_image.ref), ["true"],
               backend=DockerBackend(engine), stdout=io.BytesIO(), stderr=io.BytesIO())
    assert created_from(docker_client, probe_image.id, since) == []


# --- the workspace race -------------------------------------------------------------------

RACER = r"""
import ctypes, os, sys, time
libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD, RENAME_EXCHANGE = -100, 2
folder, link = (os.fsencode(p) for p in sys.argv[1:3])
print("racing", flush=True)
while True:
    libc.renameat2(AT_FDCWD, folder, AT_FDCWD, link, RENAME_EXCHANGE)
    time.sleep(0.002)
"""


@pytest.fixture
def raced_parent() -> Iterator[Path]:
    """A folder of another uid in /tmp, which that uid (the racer) can rename entries in."""
    base = Path(tempfile.mkdtemp(prefix="paracle-guard-race-", dir="/tmp"))
    try:
        base.chmod(0o755)  # the racer must reach into it
        parent = base / "shared"
        parent.mkdir()
        os.chown(parent, RACER_UID, RACER_UID)
        yield parent
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_a_racer_swapping_the_workspace_never_gets_a_write_outside_it(
    probe_image: BuiltImage, docker_client: Any, raced_parent: Path,
) -> None:
    if os.getuid() != 0 or not RACER_PYTHON.exists():
        pytest.skip("the racer runs as another uid with /usr/bin/python3, which needs root")
    folder = workspace(raced_parent, "ws")
    outside = workspace(raced_parent.parent, "home")  # what the racer wants written
    (raced_parent / "link").symlink_to(outside)
    os.lchown(raced_parent / "link", RACER_UID, RACER_UID)
    racer = subprocess.Popen(
        [str(RACER_PYTHON), "-c", RACER, str(folder), str(raced_parent / "link")],
        user=RACER_UID, group=RACER_UID, extra_groups=[], cwd="/", stdout=subprocess.PIPE)
    since = time.time()
    try:
        assert racer.stdout is not None and racer.stdout.readline() == b"racing\n"
        results = [run_cli("run", "--image", probe_image.ref, *marked("--workspace", str(folder)),
                           "--", "sh", "-c", f"echo {index} > /workspace/w{index}")
                   for index in range(LAUNCHES)]
        assert racer.poll() is None, "the racer stopped racing"
        seen = set()
        for _ in range(500):  # the racer really exchanges the two
            seen.add(os.path.islink(folder))
            time.sleep(0.001)
        assert seen == {True, False}
    finally:
        racer.kill()
        racer.wait()
    for done in results:
        assert done.returncode == 125, done.stderr
        assert b"Traceback" not in done.stderr and done.stderr.count(b"\n") == 1
        assert (b"another user could swap" in done.stderr or b"is a symlink" in done.stderr), \
            done.stderr
    assert list(outside.iterdir()) == []
    assert created_from(docker_client, probe_image.id, since) == []
    assert launcher_containers(docker_client) == []


# --- options: refused before anything, or honoured ---------------------------------------


@pytest.mark.parametrize("timeout", ["inf", "nan", "1e300", "-1"])
def test_a_timeout_no_backend_can_enforce_creates_nothing(
    probe_image: BuiltImage, docker_client: Any, timeout: str,
) -> None:
    since = time.time()
    done = run_cli("run", "--image", probe_image.ref, f"--timeout={timeout}", *marked(), "--",
                   "sleep", "1")
    assert done.returncode == 125
    assert done.stderr.count(b"\n") == 1 and b"--timeout" in done.stderr
    assert b"at most 604800 (7 days)" in done.stderr
    assert created_from(docker_client, probe_image.id, since) == []


@pytest.mark.parametrize("timeout", ["inf", "nan", "1e300", "-1"])
def test_the_kubernetes_backend_refuses_the_same_timeouts(timeout: str) -> None:
    image = "ghcr.io/acme/sandbox:1.0@sha256:" + "7" * 64
    done = run_cli("run", "--backend", "kubernetes", "--dry-run", "--image", image,
                   f"--timeout={timeout}", "--", "true")
    assert done.returncode == 125 and done.stdout == b""
    assert done.stderr.count(b"\n") == 1 and b"at most 604800" in done.stderr


def test_a_secret_on_the_command_line_is_refused_before_create_and_a_file_is_the_way(
    probe_image: BuiltImage, docker_client: Any, tmp_path: Path,
) -> None:
    since = time.time()
    done = run_cli("run", "--image", probe_image.ref, *marked("--env", "API_TOKEN=s3cr3t"), "--",
                   "true")
    assert done.returncode == 125
    assert b"--env API_TOKEN looks like a secret" in done.stderr and b"s3cr3t" not in done.stderr
    assert b"--env-file FILE" in done.stderr
    assert created_from(docker_client, probe_image.id, since) == []

    secrets = tmp_path / "agent.env"
    secrets.write_text("API_TOKEN=s3cr3t\n")
    secrets.chmod(0o644)
    done = run_cli("run", "--image", probe_image.ref, *marked("--env-file", str(secrets)), "--",
                   "true")
    assert done.returncode == 125
    assert f"--env-file {secrets}:1: API_TOKEN looks like a secret".encode() in done.stderr
    secrets.chmod(0o600)
    audit = tmp_path / "audit.jsonl"
    done = run_cli("run", "--image", probe_image.ref, "--audit-log", str(audit),
                   *marked("--env-file", str(secrets)), "--", "sh", "-c", 'echo "token=$API_TOKEN"')
    assert done.returncode == 0, done.stderr
    assert done.stdout == b"token=s3cr3t\n"
    (record,) = audit_lines(audit)
    assert "API_TOKEN" in record["env"] and "s3cr3t" not in audit.read_text()
    # PG601 is waived for exactly the file's secret, so it is not among the findings.
    assert all(finding["rule"] != "PG601" for finding in record["findings"])


def test_a_read_only_mount_gives_inputs_the_sandbox_cannot_change(
    probe_image: BuiltImage, tmp_path: Path,
) -> None:
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    (inputs / "numbers.txt").write_text("1 2 39\n")
    token = tmp_path / "token"
    token.write_text("t0k3n")
    token.chmod(0o644)
    done = run_cli("run", "--image", probe_image.ref,
                   *marked("--mount", f"{inputs}:/input:ro",
                           "--mount", f"{token}:/run/secrets/token:ro"), "--",
                   "sh", "-c", "cat /input/numbers.txt /run/secrets/token; "
                   "echo x > /input/new || echo refused")
    assert done.returncode == 0, done.stderr
    assert done.stdout == b"1 2 39\nt0k3nrefused\n"
    assert b"Read-only file system" in done.stderr
    assert sorted(p.name for p in inputs.iterdir()) == ["numbers.txt"]


# --- cleanup ---------------------------------------------------------------------------


def test_removal_is_verified_and_a_failure_is_said_as_it_is(
    launcher: Launcher, probe_image: BuiltImage, engine: Engine, docker_client: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kept = launcher.run(SandboxConfig(image=probe_image.ref), ["true"], keep=True)
    backend = DockerBackend(engine)
    try:
        monkeypatch.setattr(docker_backend, "REMOVE_BACKOFF", 0.0)
        monkeypatch.setattr(engine, "remove_container", lambda *a, **k: None)
        stuck = backend.remove(kept.container_id)
        assert not stuck.removed
        assert stuck.detail == (
            f"container {kept.container_id[:12]} could not be removed (the engine kept it); "
            f"remove it with: docker rm -f {kept.container_id}")
        monkeypatch.undo()
        removal = DockerBackend(engine).remove(kept.container_id)
        assert removal.removed and removal.detail.endswith("was removed")
        again = DockerBackend(engine).remove(kept.container_id)  # already gone: still true
        assert again.removed
    finally:
        with contextlib.suppress(Exception):
            docker_client.api.remove_container(kept.container_id, force=True)
    assert kept.container_id not in {c.id for c in launcher_containers(docker_client)}


def test_the_audit_line_says_how_the_run_was_proved_and_cleaned_up(
    probe_image: BuiltImage, tmp_path: Path,
) -> None:
    audit = tmp_path / "audit.jsonl"
    done = run_cli("run", "--image", probe_image.ref, "--audit-log", str(audit),
                   *marked("--stdin"), "--", "sh", "-c", "cat; echo ok", input=b"x\n")
    assert done.returncode == 0, done.stderr
    (record,) = audit_lines(audit)
    assert record["backend"] == "docker" and record["decision"] == "completed"
    assert record["proof"].startswith("proved from the host")
    assert record["cleanup"] == f"container {record['container_id'][:12]} was removed"
    assert json.dumps(record).count("s3cr3t") == 0
