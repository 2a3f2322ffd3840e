"""The suite's Docker infrastructure: test layers, image builds, labels and cleanup, CI rules."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import RUN_ID, remove_labelled
from tests.docker_images import (
    IMAGES,
    LABEL,
    NET_RAW_CAPABILITY,
    PID_LABEL,
    REPOSITORY,
    ImageSpec,
    TestImages,
    build,
    busybox,
    directory,
    file,
    layer_tar,
    symlink,
)

ROOT = Path(__file__).resolve().parents[1]


def test_layer_tar_keeps_modes_owners_xattrs_and_makes_parents() -> None:
    data = layer_tar((
        file("/usr/bin/tool", b"x", 0o4755, uid=7, gid=8,
             xattrs=(("security.capability", NET_RAW_CAPABILITY),)),
        directory("/data", 0o777),
        symlink("/bin/sh", "/bin/busybox"),
    ))
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = {m.name: m for m in tar}
    assert list(members) == ["usr", "usr/bin", "usr/bin/tool", "data", "bin", "bin/sh"]
    tool = members["usr/bin/tool"]
    assert (tool.mode, tool.uid, tool.gid) == (0o4755, 7, 8)
    xattr = tool.pax_headers["SCHILY.xattr.security.capability"]
    assert xattr.encode("utf-8", "surrogateescape") == NET_RAW_CAPABILITY
    assert members["data"].isdir() and members["data"].mode == 0o777
    assert members["bin/sh"].issym() and members["bin/sh"].linkname == "/bin/busybox"


def test_dockerfile_adds_each_layer_then_the_instructions() -> None:
    spec = ImageSpec("x", layers=((file("/a"),), (file("/b"),)),
                     instructions=(busybox("rm", "/a"), "USER 1000"))
    assert spec.dockerfile() == (
        "FROM scratch\nCOPY busybox /bin/busybox\nADD layer0.tar /\nADD layer1.tar /\n"
        'RUN ["/bin/busybox", "rm", "/a"]\nUSER 1000\n'
    )


def test_images_are_built_once_labelled_and_tagged(test_images: TestImages,
                                                   docker_client: Any) -> None:
    first = test_images.get("minimal")
    assert test_images.get("minimal") is first
    image = docker_client.images.get(first.id)
    assert image.labels[LABEL] == RUN_ID
    assert first.ref == f"{REPOSITORY}/minimal:{RUN_ID}"
    assert first.ref in image.tags
    assert image.attrs["Config"]["User"] == "app"


def test_every_catalogue_image_builds(test_images: TestImages) -> None:
    built = [test_images.get(name) for name in IMAGES]
    assert len({image.id for image in built}) == len(IMAGES)


def test_a_reused_spec_name_with_other_content_is_refused(test_images: TestImages) -> None:
    test_images.get("minimal")
    with pytest.raises(AssertionError, match="two different test image specs"):
        test_images.get(ImageSpec("minimal", instructions=("USER 0",)))


def test_archive_is_a_tagged_docker_save(test_images: TestImages) -> None:
    path = test_images.archive("minimal")
    with tarfile.open(path) as tar:
        names = tar.getnames()
        manifest = tar.extractfile("manifest.json")
        assert manifest is not None
        assert test_images.get("minimal").ref.encode() in manifest.read()
    assert "manifest.json" in names


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_cleanup_removes_this_run_and_dead_runs_but_not_live_ones(
    docker_client: Any, tmp_path: Path
) -> None:
    spec = ImageSpec("cleanup-probe", layers=((file("/probe", RUN_ID),),))
    dead = build(docker_client, spec, run_id=f"dead-{RUN_ID}", workdir=tmp_path / "dead",
                 pid=_dead_pid())
    live = build(docker_client, spec, run_id=f"live-{RUN_ID}", workdir=tmp_path / "live")
    try:
        remove_labelled(docker_client, run_id=None)
        remaining = {image.id for image in docker_client.images.list(filters={"label": LABEL})}
        assert dead.ref not in {t for i in docker_client.images.list() for t in i.tags}
        assert live.id in remaining

        remove_labelled(docker_client, run_id=f"live-{RUN_ID}")
        assert live.ref not in {t for i in docker_client.images.list() for t in i.tags}
    finally:
        for run_id in (f"dead-{RUN_ID}", f"live-{RUN_ID}"):
            remove_labelled(docker_client, run_id=run_id)


def test_cleanup_removes_labelled_containers(docker_client: Any,
                                             test_images: TestImages) -> None:
    image = test_images.get("minimal")
    container = docker_client.containers.create(
        image.id, command=["/bin/busybox", "true"], network_mode="none",
        labels={LABEL: f"other-{RUN_ID}", PID_LABEL: str(_dead_pid())},
    )
    remove_labelled(docker_client, run_id=None)
    # The summary listing: containers.list() inspects each container, and another
    # session's container removed meanwhile would fail this test with a 404.
    assert container.id not in {c["Id"] for c in docker_client.api.containers(all=True)}


PROBE = textwrap.dedent(
    """
    import pytest

    @pytest.mark.docker
    def test_needs_engine():
        pass
    """
)


def _run_probe(tmp_path: Path, ci: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_probe.py").write_text(PROBE)
    env = {
        **os.environ,
        "CI": ci,
        "DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock",
        "PYTHONPATH": str(ROOT),
    }
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.conftest", "-p", "no:cacheprovider",
         "-o", "markers=docker: needs an engine", "--rootdir", str(tmp_path),
         str(tmp_path / "test_probe.py")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False,
    )


def test_docker_tests_fail_in_ci_without_an_engine(tmp_path: Path) -> None:
    result = _run_probe(tmp_path, "true")
    assert result.returncode == 1, result.stdout
    assert "Docker-backed tests must run in CI" in result.stdout
    assert "cannot reach the Docker Engine" in result.stdout


def test_docker_tests_skip_loudly_outside_ci(tmp_path: Path) -> None:
    result = _run_probe(tmp_path, "")
    assert result.returncode == 0, result.stdout
    assert "1 skipped" in result.stdout
    assert "1 Docker-backed tests SKIPPED" in result.stdout


@pytest.mark.docker
def test_docker_engine_script_reports_status() -> None:
    result = subprocess.run([str(ROOT / "scripts" / "docker-engine"), "status"],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0 and result.stdout.startswith("reachable"), result.stdout
    usage = subprocess.run([str(ROOT / "scripts" / "docker-engine"), "bogus"],
                           capture_output=True, text=True, timeout=60, check=False)
    assert usage.returncode == 2 and "usage" in usage.stderr


# --- gVisor: the runsc runtime registered in daemon.json ------------------------------------

RUNSC = {"path": "/usr/bin/runsc", "runtimeArgs": ["--network=none"]}


def _register(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(ROOT / "scripts" / "docker-engine"), "register-runsc", str(config)],
                          capture_output=True, text=True, timeout=60, check=False)


def test_runsc_is_merged_into_an_existing_daemon_json(tmp_path: Path) -> None:
    config = tmp_path / "etc" / "daemon.json"
    first = _register(config)
    assert (first.returncode, first.stdout) == (0, "changed\n"), first.stderr
    assert json.loads(config.read_text()) == {"runtimes": {"runsc": RUNSC}}
    assert _register(config).stdout == "unchanged\n"
    # A user's settings and runtimes are kept, and so are the file's mode and symlink.
    real = tmp_path / "managed.json"
    real.write_text('{"log-level": "warn", "runtimes": {"kata": {"path": "/usr/bin/kata"}}}')
    real.chmod(0o600)
    link = tmp_path / "daemon.json"
    link.symlink_to(real)
    assert _register(link).stdout == "changed\n"
    assert link.is_symlink() and (real.stat().st_mode & 0o777) == 0o600
    assert json.loads(real.read_text()) == {
        "log-level": "warn", "runtimes": {"kata": {"path": "/usr/bin/kata"}, "runsc": RUNSC}}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{broken", "is not valid JSON"),
        ("[1]", "is not a JSON object"),
        ('{"runtimes": []}', '"runtimes" is not an object'),
    ],
)
def test_a_daemon_json_that_cannot_be_merged_is_left_alone(
    tmp_path: Path, text: str, message: str
) -> None:
    config = tmp_path / "daemon.json"
    config.write_text(text)
    result = _register(config)
    assert result.returncode == 1 and message in result.stderr
    assert config.read_text() == text


def test_a_users_own_runsc_entry_is_not_replaced(tmp_path: Path) -> None:
    config = tmp_path / "daemon.json"
    text = '{"runtimes": {"runsc": {"path": "/opt/gvisor/runsc"}}}'
    config.write_text(text)
    result = _register(config)
    assert result.stdout == "unchanged\n" and config.read_text() == text
    assert "without --network=none" in result.stderr


@pytest.mark.docker
def test_the_suites_engine_has_runsc_registered(docker_client: Any, gvisor: str) -> None:
    runtimes = docker_client.api.info()["Runtimes"]
    assert "--network=none" in runtimes[gvisor].get("runtimeArgs", [])
