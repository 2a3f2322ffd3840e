"""The Docker backend's pure parts (the create body, the inspect comparison) and the streams."""

from __future__ import annotations

import copy
import io
import socket
import struct
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from paracle_guard.launcher.docker_backend import create_config, spec_mismatches
from paracle_guard.launcher.runspec import (
    BindMount,
    RunSpec,
    TmpfsMount,
    Ulimit,
)
from paracle_guard.launcher.streams import feed_stdin, stream

IMAGE_ID = "sha256:" + "cd" * 32

SPEC = RunSpec(
    name="paracle-guard-abc",
    image_id=IMAGE_ID,
    command=("sh", "-c", "echo hi"),
    uid=1000,
    gid=1000,
    env=(("MODE", "fast"),),
    working_dir="/workspace",
    tmpfs=(
        TmpfsMount(target="/data", options="ro,noexec,nosuid,nodev,size=4k"),
        TmpfsMount(target="/tmp", options="rw,noexec,nosuid,nodev,size=64m"),
    ),
    binds=(BindMount(source="/srv/ws", target="/workspace", identity=(1, 2)),
           BindMount(source="/srv/in", target="/input", identity=(1, 3), read_only=True)),
    memory_bytes=256 * 2**20,
    nano_cpus=500_000_000,
    pids_limit=64,
    ulimits=(Ulimit(name="core", soft=0, hard=0), Ulimit(name="nofile", soft=1024, hard=1024)),
    labels=(("paracle-guard.launcher", "1"),),
)


def test_create_body_is_the_hardened_sandbox() -> None:
    body = create_config(SPEC)
    host = body["HostConfig"]
    assert body["Image"] == IMAGE_ID  # by ID: nothing to pull, no tag to re-point
    assert body["Cmd"] == ["sh", "-c", "echo hi"]
    assert body["User"] == "1000:1000"
    assert body["Env"] == ["MODE=fast"]
    assert body["WorkingDir"] == "/workspace"
    assert body["Labels"] == {"paracle-guard.launcher": "1"}
    assert body["Tty"] is False and body["OpenStdin"] is False
    assert host["ReadonlyRootfs"] is True
    assert host["Privileged"] is False
    assert host["CapDrop"] == ["ALL"] and "CapAdd" not in host
    assert host["SecurityOpt"] == ["no-new-privileges:true"]
    assert host["NetworkMode"] == "none"
    assert host["IpcMode"] == "none"
    assert host["CgroupnsMode"] == "private"
    assert (host["PidMode"], host["UTSMode"], host["UsernsMode"]) == ("", "", "")
    assert host["Tmpfs"] == {"/data": "ro,noexec,nosuid,nodev,size=4k",
                             "/tmp": "rw,noexec,nosuid,nodev,size=64m"}
    # Only the folders themselves (no host mounts below them), the inputs read-only.
    options = {"Propagation": "rprivate", "NonRecursive": True}
    assert host["Mounts"] == [
        {"Type": "bind", "Source": "/srv/ws", "Target": "/workspace", "ReadOnly": False,
         "BindOptions": options},
        {"Type": "bind", "Source": "/srv/in", "Target": "/input", "ReadOnly": True,
         "BindOptions": options},
    ]
    assert host["Memory"] == host["MemorySwap"] == 256 * 2**20
    assert host["NanoCpus"] == 500_000_000
    assert host["PidsLimit"] == 64
    assert host["Ulimits"] == [{"Name": "core", "Soft": 0, "Hard": 0},
                               {"Name": "nofile", "Soft": 1024, "Hard": 1024}]
    assert host["Init"] is True
    assert host["RestartPolicy"] == {"Name": "no", "MaximumRetryCount": 0}
    assert host["AutoRemove"] is False
    assert host["LogConfig"] == {"Type": "json-file",
                                 "Config": {"max-size": "1m", "max-file": "1"}}
    for absent in ("Binds", "Devices", "DeviceRequests", "PortBindings", "Sysctls", "GroupAdd",
                   "PublishAllPorts", "VolumesFrom", "Links", "ExtraHosts"):
        assert absent not in host


def test_stdin_opens_once() -> None:
    body = create_config(SPEC.model_copy(update={"open_stdin": True}))
    assert body["OpenStdin"] is body["StdinOnce"] is body["AttachStdin"] is True


IMAGE = {"Config": {"Env": ["PATH=/bin", "MODE=slow"]}}


def inspected(spec: RunSpec) -> dict[str, Any]:
    """What the engine stores for ``create_config(spec)``, with the defaults it fills in."""
    body = create_config(spec)
    host = dict(body["HostConfig"])
    host.update({"CapAdd": None, "Binds": None, "Devices": [], "PortBindings": {},
                 "OomKillDisable": False, "CpuQuota": 0})
    env = dict(item.partition("=")[::2] for item in IMAGE["Config"]["Env"])
    env.update(dict(spec.env))
    return {
        "Image": spec.image_id,
        "Config": {"User": body["User"], "Env": [f"{k}={v}" for k, v in env.items()],
                   "Labels": body["Labels"]},
        "HostConfig": host,
        "Mounts": [{"Type": "bind", "Source": b.source, "Destination": b.target,
                    "RW": not b.read_only} for b in spec.binds],
    }


def test_an_exact_container_has_no_mismatches() -> None:
    assert spec_mismatches(SPEC, inspected(SPEC), IMAGE) == []


def _set(document: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for part in parents:
        document = document[part]
    document[last] = value


@pytest.mark.parametrize(
    ("path", "value", "named"),
    [
        ("Image", "sha256:" + "ee" * 32, "Image"),
        ("Config.User", "0", "Config.User"),
        ("HostConfig.SecurityOpt", ["no-new-privileges:true", "no-new-privileges:false"],
         "SecurityOpt"),
        ("HostConfig.CapAdd", ["SYS_ADMIN"], "CapAdd"),
        ("HostConfig.NetworkMode", "container:abc", "NetworkMode"),
        ("HostConfig.CgroupnsMode", "host", "CgroupnsMode"),
        ("HostConfig.Memory", 1 << 30, "Memory"),
        ("HostConfig.MemorySwap", -1, "MemorySwap"),
        ("HostConfig.PidsLimit", None, "PidsLimit"),
        ("HostConfig.RestartPolicy", {"Name": "always"}, "RestartPolicy"),
        ("HostConfig.Devices", [{"PathOnHost": "/dev/kmsg"}], "Devices"),
        ("HostConfig.Tmpfs", {"/tmp": "rw,exec"}, "Tmpfs"),
        ("HostConfig.ReadonlyRootfs", False, "ReadonlyRootfs"),
        ("Config.Env", ["PATH=/bin", "MODE=fast", "HTTP_PROXY=http://x"], "Config.Env"),
        ("Mounts", [{"Type": "bind", "Source": "/srv/ws", "Destination": "/workspace"},
                    {"Type": "bind", "Source": "/srv/in", "Destination": "/input", "RW": False},
                    {"Type": "volume", "Source": "", "Destination": "/data"}], "Mounts"),
        # An input mounted writable, or a bind that takes the host's mounts below it along.
        ("Mounts", [{"Type": "bind", "Source": "/srv/ws", "Destination": "/workspace"},
                    {"Type": "bind", "Source": "/srv/in", "Destination": "/input",
                     "RW": True}], "Mounts"),
        ("HostConfig.Mounts", [{"Type": "bind", "Source": "/srv/ws", "Target": "/workspace",
                                "BindOptions": {"Propagation": "rprivate"}},
                               {"Type": "bind", "Source": "/srv/in", "Target": "/input",
                                "ReadOnly": True, "BindOptions": {"NonRecursive": True}}],
         "HostConfig.Mounts"),
    ],
)
def test_every_drift_is_named(path: str, value: Any, named: str) -> None:
    document = copy.deepcopy(inspected(SPEC))
    _set(document, path, value)
    problems = spec_mismatches(SPEC, document, IMAGE)
    assert problems, f"{path} = {value!r} went unnoticed"
    assert any(named in problem for problem in problems)


def test_the_policys_runtime_is_asked_for_and_checked() -> None:
    gvisor = SPEC.model_copy(update={"runtime": "runsc"})
    assert create_config(gvisor)["HostConfig"]["Runtime"] == "runsc"
    assert "Runtime" not in create_config(SPEC)["HostConfig"]  # the engine's default
    assert spec_mismatches(gvisor, inspected(gvisor), IMAGE) == []
    # An authorization plugin, or anything between create and start, that swaps the runtime.
    swapped = copy.deepcopy(inspected(gvisor))
    swapped["HostConfig"]["Runtime"] = "runc"
    assert spec_mismatches(gvisor, swapped, IMAGE) == [
        "HostConfig.Runtime is 'runc', expected 'runsc'"]


# --- streams ---------------------------------------------------------------------------


def frame(kind: int, data: bytes) -> bytes:
    return struct.pack(">BxxxL", kind, len(data)) + data


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    ours, engine = socket.socketpair()
    yield ours, engine
    ours.close()
    engine.close()


def test_frames_are_split_into_stdout_and_stderr(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, engine = pair
    payload = frame(1, b"out-1\n") + frame(2, b"err\n") + frame(1, b"x" * 100_000)
    # Sent in awkward pieces: a header split across reads must still parse.
    for start in range(0, len(payload), 7_001):
        engine.sendall(payload[start:start + 7_001])
    engine.shutdown(socket.SHUT_WR)
    out, err = io.BytesIO(), io.BytesIO()
    timed_out = stream(ours, out, err, deadline=None, on_timeout=lambda: None)
    assert not timed_out
    assert out.getvalue() == b"out-1\n" + b"x" * 100_000
    assert err.getvalue() == b"err\n"


def test_the_deadline_fires_even_while_output_never_stops(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    ours, engine = pair
    stop = threading.Event()
    killed = threading.Event()

    def chatter() -> None:
        while not stop.is_set():
            try:
                engine.sendall(frame(1, b"y" * 512))
            except OSError:
                return
            time.sleep(0.001)
        engine.shutdown(socket.SHUT_WR)

    writer = threading.Thread(target=chatter, daemon=True)
    writer.start()

    def kill() -> None:
        killed.set()
        stop.set()  # the engine closes the streams once the container is killed

    started = time.monotonic()
    timed_out = stream(ours, io.BytesIO(), io.BytesIO(), deadline=started + 0.5, on_timeout=kill)
    assert timed_out and killed.is_set()
    assert time.monotonic() - started < 5
    writer.join(5)


def test_stdin_is_sent_then_closed(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, engine = pair
    feed_stdin(ours, b"line 1\nline 2\n").join(5)
    received = b""
    while chunk := engine.recv(1024):
        received += chunk
    assert received == b"line 1\nline 2\n"  # and then end-of-file
