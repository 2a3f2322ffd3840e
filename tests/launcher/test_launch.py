"""The launcher against the real engine: what runs inside, what is refused, what is left."""

from __future__ import annotations

import concurrent.futures
import io
import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from paracle_guard.docker_client import Engine
from paracle_guard.launcher import docker_backend
from paracle_guard.launcher.backend import CheckedImage
from paracle_guard.launcher.docker_backend import DockerBackend
from paracle_guard.launcher.launch import Launcher, launch
from paracle_guard.launcher.runspec import PolicyViolation, RunSpec, SandboxConfig
from paracle_guard.policy.loader import load_policy
from paracle_guard.policy.models import Waiver
from paracle_guard.sources.facts_store import open_cache
from paracle_guard.sources.image import load_image
from tests.conftest import RUN_ID
from tests.docker_images import BuiltImage, ImageSpec, TestImages
from tests.launcher.conftest import (
    LABELS,
    RUN_ENV,
    audit_lines,
    cli_command,
    launcher_containers,
    marked,
    probe_spec,
    run_cli,
)

pytestmark = pytest.mark.docker

PROBE = r"""
echo "uid=$(id -u) gid=$(id -g) groups=$(id -G)"
grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status
touch /rootfile 2>/dev/null && echo root=writable || echo root=read-only
touch /tmp/t && echo tmp=writable
mkdir /tmp/x && cp /bin/busybox /tmp/x/busybox
/tmp/x/busybox true 2>/dev/null && echo tmp=exec || echo tmp=noexec
echo from-the-sandbox > /workspace/out.txt && echo workspace=writable
echo "netdev=$(grep ':' /proc/net/dev | cut -d: -f1 | tr -d ' ' | tr '\n' ,)"
echo "classnet=$(ls /sys/class/net | tr '\n' ,)"
ls /dev/shm >/dev/null 2>&1 && echo shm=present || echo shm=absent
touch /dev/mqueue/q 2>/dev/null && echo mqueue=writable || echo mqueue=closed
echo "pwd=$(pwd)"
env | sort | sed 's/^/env:/'
"""


def probe_facts(output: str) -> dict[str, str]:
    facts = {}
    for line in output.splitlines():
        if line.startswith("env:"):
            name, _, value = line[4:].partition("=")
            facts[f"env:{name}"] = value
            continue
        for part in line.replace(":\t", "=").split():
            key, sep, value = part.partition("=")
            if sep:
                facts[key] = value
    return facts


def no_launcher_containers(client: Any) -> None:
    assert launcher_containers(client) == []


# --- inside the sandbox ------------------------------------------------------------------


def test_the_probe_sees_the_hardened_sandbox(
    launcher: Launcher, probe_image: BuiltImage, tmp_path: Path, docker_client: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PARACLE_GUARD_HOST_ONLY", "must-not-leak")
    workspace = tmp_path / "ws"
    workspace.mkdir()
    os.chown(workspace, 1000, 1000)
    result = launcher.run(
        SandboxConfig(image=probe_image.ref, workspace=workspace, env={"MODE": "fast"}),
        ["sh", "-c", PROBE],
    )
    assert result.exit_code == 0, result.stderr
    facts = probe_facts(result.stdout)
    assert facts["uid"] == "1000" and facts["gid"] == "1000" and facts["groups"] == "1000"
    assert int(facts["CapEff"], 16) == 0
    assert facts["NoNewPrivs"] == "1"
    if "seccomp" in json.dumps(docker_client.api.info().get("SecurityOptions")):
        assert facts["Seccomp"] == "2"
    assert facts["root"] == "read-only"
    assert facts["tmp"] == "noexec"  # written, but never executed
    assert "tmp=writable" in result.stdout
    assert facts["workspace"] == "writable"
    assert (workspace / "out.txt").read_text() == "from-the-sandbox\n"
    assert (workspace / "out.txt").stat().st_uid == 1000
    assert facts["netdev"] == "lo,"
    assert facts["classnet"] == "lo,"
    assert facts["shm"] == "absent"
    assert facts["mqueue"] == "closed"
    assert facts["pwd"] == "/workspace"
    assert facts["env:MODE"] == "fast"
    assert "env:PARACLE_GUARD_HOST_ONLY" not in facts
    assert result.decision == "completed"
    assert result.image_id == probe_image.id
    no_launcher_containers(docker_client)


def test_without_a_workspace_folder_the_workspace_tmpfs_runs_builds_and_tmp_does_not(
    launcher: Launcher, probe_image: BuiltImage,
) -> None:
    # The engine adds noexec to every --tmpfs that does not say "exec": the RunSpec says it.
    # (busybox picks its applet by the name it runs under: the copies keep that name.)
    script = ("mkdir /workspace/x /tmp/x && cp /bin/busybox /workspace/x/busybox && "
              "cp /bin/busybox /tmp/x/busybox && /workspace/x/busybox true && "
              "echo workspace=exec; /tmp/x/busybox true 2>/dev/null || echo tmp=noexec; "
              "grep ' /workspace ' /proc/self/mountinfo")
    result = launcher.run(SandboxConfig(image=probe_image.ref), ["sh", "-c", script])
    assert result.exit_code == 0, result.stderr
    assert "workspace=exec" in result.stdout and "tmp=noexec" in result.stdout
    mount_options = result.stdout.split(" /workspace ", 1)[1].split()[0].split(",")
    assert {"rw", "nosuid", "nodev"} <= set(mount_options) and "noexec" not in mount_options


def test_the_memory_limit_kills_an_allocation_above_it(
    launcher: Launcher, probe_image: BuiltImage,
) -> None:
    config = SandboxConfig(image=probe_image.ref, memory="32m")
    above = launcher.run(config, ["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"])
    assert above.exit_code == 137  # SIGKILL from the kernel's OOM killer
    below = launcher.run(config, ["dd", "if=/dev/zero", "of=/dev/null", "bs=8M", "count=1"])
    assert below.exit_code == 0, below.stderr


def test_the_pids_limit_stops_a_fork_bomb(launcher: Launcher, probe_image: BuiltImage) -> None:
    result = launcher.run(
        SandboxConfig(image=probe_image.ref, pids=16, timeout=60),
        ["sh", "-c", "for i in $(seq 64); do sleep 5 & done; wait"],
    )
    assert result.exit_code != 0
    assert "can't fork" in result.stderr
    assert not result.timed_out


def test_a_command_beyond_the_timeout_ends_with_124(
    launcher: Launcher, probe_image: BuiltImage, docker_client: Any,
) -> None:
    started = time.monotonic()
    result = launcher.run(SandboxConfig(image=probe_image.ref, timeout=2),
                          ["sh", "-c", "echo before; sleep 60; echo after"])
    assert result.exit_code == 124
    assert result.timed_out and result.decision == "timed-out"
    assert result.stdout == "before\n"
    assert time.monotonic() - started < 30
    no_launcher_containers(docker_client)


def test_output_streams_stdin_and_exit_codes_pass_through(
    launcher: Launcher, probe_image: BuiltImage,
) -> None:
    result = launcher.run(SandboxConfig(image=probe_image.ref),
                          ["sh", "-c", "cat; echo oops >&2; exit 7"], stdin="line 1\nline 2\n")
    assert (result.exit_code, result.stdout, result.stderr) == (7, "line 1\nline 2\n", "oops\n")


def test_keep_leaves_the_container(
    launcher: Launcher, probe_image: BuiltImage, docker_client: Any,
) -> None:
    result = launcher.run(SandboxConfig(image=probe_image.ref), ["true"], keep=True)
    try:
        kept = docker_client.containers.get(result.container_id)
        assert kept.status == "exited"
    finally:
        docker_client.api.remove_container(result.container_id, force=True)


def test_an_image_volume_stays_read_only_and_creates_no_volume(
    engine: Engine, test_images: TestImages, docker_client: Any,
) -> None:
    """Waiving PG203 lets the image run, but its VOLUME is covered, never a writable volume."""
    spec = probe_spec("launcher-volume", "V")
    built = test_images.get(ImageSpec(spec.name, layers=spec.layers,
                                      instructions=(*spec.instructions, "VOLUME /data")))
    sandbox = load_policy("sandbox")
    waived = sandbox.model_copy(update={"exceptions": [
        Waiver(rule="image-volume", target="*", reason="covered by the launcher"),
    ]})
    with Launcher(waived, labels=LABELS, engine=engine) as launcher:
        result = launcher.run(SandboxConfig(image=built.ref),
                              ["sh", "-c", "touch /data/x || echo data=read-only"])
    assert result.exit_code == 0, result.stderr
    assert "data=read-only" in result.stdout
    assert "Read-only file system" in result.stderr
    no_launcher_containers(docker_client)


# --- refusals ----------------------------------------------------------------------------


@pytest.mark.parametrize(("image", "rule"), [("root-default", "PG101"), ("packages", "PG403")])
def test_an_image_breaking_the_policy_is_refused(
    launcher: Launcher, test_images: TestImages, docker_client: Any, image: str, rule: str,
) -> None:
    built = test_images.get(image)
    with pytest.raises(PolicyViolation) as excinfo:
        launcher.run(SandboxConfig(image=built.ref), ["true"])
    assert rule in {finding.rule for finding in excinfo.value.findings}
    assert rule in str(excinfo.value)
    assert excinfo.value.report is not None
    no_launcher_containers(docker_client)


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"network": "host"}, "controls.network.mode"),
        ({"memory": "1g"}, "controls.resources.memory"),
        ({"workspace": Path("/")}, "--workspace /"),
    ],
)
def test_a_loosening_option_is_refused_naming_the_key(
    launcher: Launcher, probe_image: BuiltImage, docker_client: Any,
    options: dict[str, Any], named: str,
) -> None:
    with pytest.raises(PolicyViolation, match=named):
        launcher.run(SandboxConfig(image=probe_image.ref, **options), ["true"])
    no_launcher_containers(docker_client)


def test_a_symlinked_workspace_is_refused(
    launcher: Launcher, probe_image: BuiltImage, tmp_path: Path,
) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(PolicyViolation, match="is a symlink"):
        launcher.run(SandboxConfig(image=probe_image.ref, workspace=tmp_path / "link"),
                     ["true"])


def test_a_container_the_engine_changed_is_refused_and_removed(
    launcher: Launcher, probe_image: BuiltImage, docker_client: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An authorization plugin (or anything) that alters the create body is caught after create."""
    honest = docker_backend.create_config

    def tampered(spec: RunSpec) -> dict[str, Any]:
        body = honest(spec)
        body["HostConfig"]["CapAdd"] = ["NET_RAW"]
        return body

    monkeypatch.setattr(docker_backend, "create_config", tampered)
    with pytest.raises(PolicyViolation) as excinfo:
        launcher.run(SandboxConfig(image=probe_image.ref), ["true"])
    assert "PG302" in {finding.rule for finding in excinfo.value.findings}
    assert "HostConfig.CapAdd" in str(excinfo.value)
    no_launcher_containers(docker_client)


def test_a_limit_raised_before_start_is_caught_after_start(
    launcher: Launcher, probe_image: BuiltImage, docker_client: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_start = docker_backend.DockerBackend.start

    def start_after_update(self: docker_backend.DockerBackend, container: str,
                           spec: RunSpec) -> None:
        docker_client.api.update_container(container, mem_limit="300m", memswap_limit="300m")
        real_start(self, container, spec)

    monkeypatch.setattr(docker_backend.DockerBackend, "start", start_after_update)
    with pytest.raises(PolicyViolation, match=r"after start.*HostConfig.Memory"):
        launcher.run(SandboxConfig(image=probe_image.ref, memory="256m"),
                     ["sh", "-c", "echo must-not-matter; sleep 5"])
    no_launcher_containers(docker_client)


def test_a_tag_re_pointed_after_the_check_changes_nothing(
    launcher: Launcher, probe_image: BuiltImage, other_image: BuiltImage,
    engine: Engine, docker_client: Any,
) -> None:
    repository = f"paracle-guard-test/swap-{RUN_ID}"
    docker_client.api.tag(probe_image.id, repository, "current")
    ref = f"{repository}:current"

    def re_point(checked: CheckedImage) -> None:
        assert checked.id == probe_image.id
        docker_client.api.tag(other_image.id, repository, "current", force=True)
        assert docker_client.api.inspect_image(ref)["Id"] == other_image.id

    out, err = io.BytesIO(), io.BytesIO()
    try:
        outcome = launch(launcher.plan, SandboxConfig(image=ref), ["cat", "/etc/marker"],
                         backend=DockerBackend(engine), stdout=out, stderr=err, labels=LABELS,
                         after_check=re_point)
    finally:
        docker_client.api.remove_image(ref)
    assert out.getvalue() == b"A\n", err.getvalue()
    assert outcome.image_id == probe_image.id


# --- the command line ----------------------------------------------------------------------


def test_cli_runs_streams_and_exits_with_the_command(probe_image: BuiltImage) -> None:
    done = run_cli("run", "--image", probe_image.ref, *marked(), "--stdin", "--",
                   "sh", "-c", "cat; echo to-stderr >&2; exit 3", input=b"fed\n")
    assert done.returncode == 3, done.stderr
    assert done.stdout == b"fed\n"
    assert done.stderr == b"to-stderr\n"


def test_cli_refusal_exits_125_with_the_report(test_images: TestImages) -> None:
    root = test_images.get("root-default")
    text = run_cli("run", "--image", root.ref, *marked(), "--", "true")
    assert text.returncode == 125
    assert b"PG101" in text.stderr and b"root-user" in text.stderr
    as_json = run_cli("run", "--image", root.ref, "--report", "json", *marked(), "--", "true")
    assert as_json.returncode == 125
    report = json.loads(as_json.stderr)
    assert "PG101" in {f["rule"] for r in report["results"] for f in r["findings"]}


def test_cli_network_host_is_refused_naming_the_key(probe_image: BuiltImage) -> None:
    done = run_cli("run", "--image", probe_image.ref, "--network", "host", *marked(), "--", "true")
    assert done.returncode == 125
    assert b"controls.network.mode" in done.stderr


def test_cli_network_none_is_within_every_policy(probe_image: BuiltImage) -> None:
    # baseline's mode is bridge; none is tighter, so the launch is verified, not refused.
    done = run_cli("run", "--image", probe_image.ref, "--policy", "baseline", "--network", "none",
                   "--memory", "64m", "--cpus", "1", "--pids", "64",
                   *marked(), "--", "sh", "-c", "cat /etc/marker")
    assert done.returncode == 0, done.stderr
    assert done.stdout == b"A\n"


def test_cli_timeout_exits_124(probe_image: BuiltImage) -> None:
    done = run_cli("run", "--image", probe_image.ref, "--timeout", "1", *marked(), "--",
                   "sleep", "60")
    assert done.returncode == 124


def test_cli_missing_image_exits_125_in_one_line() -> None:
    done = run_cli("run", "--image", f"paracle-guard-test/absent:{RUN_ID}", "--", "true")
    assert done.returncode == 125
    assert done.stderr.count(b"\n") == 1 and b"never pulls" in done.stderr


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_mid_run_leaves_no_container(
    probe_image: BuiltImage, docker_client: Any, tmp_path: Path, signum: int,
) -> None:
    audit = tmp_path / "audit.jsonl"
    token = f"signal-{signum}-{RUN_ID}"
    process = subprocess.Popen(
        cli_command("run", "--image", probe_image.ref, "--audit-log", str(audit), *marked(),
                    "--", "sh", "-c", "echo running; sleep 300", token),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == b"running\n"  # the command is really running
        mine = [c for c in launcher_containers(docker_client) if token in c.attrs["Args"]]
        assert len(mine) == 1 and mine[0].status == "running"
        process.send_signal(signum)
        assert process.wait(60) == 128 + signum
    finally:
        process.kill()
        process.wait()
    assert [c for c in launcher_containers(docker_client) if token in c.attrs["Args"]] == []
    (record,) = audit_lines(audit)
    assert record["decision"] == "interrupted"
    assert record["container_id"] == mine[0].id


def test_twenty_concurrent_launches_share_one_cache(
    probe_image: BuiltImage, docker_client: Any, engine: Engine, tmp_path: Path,
) -> None:
    audit = tmp_path / "audit.jsonl"
    cache_home = tmp_path / "cache"  # empty: every launch may be the one that fills it

    def one(index: int) -> subprocess.CompletedProcess[bytes]:
        return run_cli("run", "--image", probe_image.ref, "--audit-log", str(audit), *marked(),
                       "--", "sh", "-c", f"echo launch-{index}", timeout=300,
                       env={"XDG_CACHE_HOME": str(cache_home)})

    with concurrent.futures.ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(one, range(20)))
    for index, done in enumerate(results):
        assert done.returncode == 0, done.stderr
        assert done.stdout == f"launch-{index}\n".encode()
    records = audit_lines(audit)
    assert len(records) == 20
    assert {r["decision"] for r in records} == {"completed"}
    assert {r["exit_code"] for r in records} == {0}
    assert len({r["container_id"] for r in records}) == 20
    assert {r["image_id"] for r in records} == {probe_image.id}
    assert [c for c in launcher_containers(docker_client)
            if f"{RUN_ENV}={RUN_ID}" in (c.attrs["Config"]["Env"] or [])] == []
    # The cache they shared holds whole entries only, with the facts of a full read.
    facts = cache_home / "paracle-guard" / "facts"
    assert list(facts.rglob(".tmp-*")) == []
    info = engine.resolve_image(probe_image.ref)
    with open_cache(facts) as cache:
        image_entry = cache.get("image", info.id)
        layer_entries = [cache.get("layer", diff_id) for diff_id in info.diff_ids]
        assert cache.stats.ignored == 0
        cached = load_image(probe_image.ref, engine, cache=cache)
    assert image_entry is not None and None not in layer_entries
    assert cached == load_image(probe_image.ref, engine)


class _Recorder:
    def __init__(self) -> None:
        self.reads: list[Any] = []

    def update(self, read: Any) -> None:
        pass

    def done(self, read: Any) -> None:
        self.reads.append(read)


def test_a_launcher_reads_an_image_once_and_later_launchers_not_at_all(
    probe_image: BuiltImage, engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    config = SandboxConfig(image=probe_image.ref)
    recorder = _Recorder()
    with Launcher("sandbox", labels=LABELS, engine=engine, progress=recorder) as warm:
        assert warm.run(config, ["true"]).exit_code == 0
        assert warm.run(config, ["true"]).exit_code == 0
    # The second run of the same Launcher reads nothing at all, not even the cache.
    assert len(recorder.reads) == 1 and recorder.reads[0].read_layers > 0
    with Launcher("sandbox", labels=LABELS, engine=engine, progress=recorder) as later:
        assert later.run(config, ["true"]).exit_code == 0
    assert recorder.reads[-1].image_cached
    with Launcher("sandbox", labels=LABELS, engine=engine, progress=recorder,
                  cache=False) as uncached:
        assert uncached.facts_cache is None
        assert uncached.run(config, ["true"]).exit_code == 0
    assert recorder.reads[-1].read_layers == recorder.reads[-1].layers
