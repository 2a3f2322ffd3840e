"""The Docker backend: a RunSpec becomes exactly one engine create call, by image ID.

``create_config`` is the whole translation, as the Engine API body: nothing
else decides how a sandbox is configured, and the tests read it directly. The
container is created with the low-level API by image ID, so nothing can pull
and a re-pointed tag cannot change what runs; ``containers.run()`` is never
used (it pulls a missing image).

``spec_mismatches`` compares an inspect result with the RunSpec: the engine (or
an authorization plugin, or a ``docker update`` after start) must have created
exactly what was asked for. The policy rules judge the same inspect result
separately, through ``sources.container``.

Streams use the attach endpoint, opened before start so no output is lost, and
are demultiplexed here (8-byte frame headers, as the engine sends them without
a TTY). The read loop waits with ``select`` up to the deadline, so a timeout
always fires and a signal handler can interrupt it.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import select
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any, Protocol

from paracle_guard.docker_client import Engine
from paracle_guard.errors import EngineUnavailable, GuardError
from paracle_guard.launcher.runspec import RunSpec

_FRAME_HEADER = struct.Struct(">BxxxL")
_STDOUT, _STDERR = 1, 2
_READ_SIZE = 64 * 1024
# After a kill, how long the engine gets to close the streams before we stop reading.
DRAIN_SECONDS = 10.0


class LaunchError(GuardError):
    """The engine refused or failed an operation of the launch."""

    exit_code = 125


class Sink(Protocol):
    def write(self, data: bytes, /) -> Any: ...

    def flush(self) -> Any: ...


def create_config(spec: RunSpec) -> dict[str, Any]:
    """The Engine API ``POST /containers/create`` body for ``spec``."""
    host_config: dict[str, Any] = {
        "ReadonlyRootfs": spec.read_only_rootfs,
        "Privileged": False,
        "CapDrop": list(spec.cap_drop),
        "SecurityOpt": list(spec.security_opt),
        "NetworkMode": spec.network_mode,
        "IpcMode": spec.ipc_mode,
        # Empty means private for pid, uts and userns; cgroupns must be said explicitly
        # because the engine's default on cgroup v1 is the host's.
        "PidMode": "",
        "UTSMode": "",
        "UsernsMode": "",
        "CgroupnsMode": spec.cgroupns_mode,
        "Tmpfs": {mount.target: mount.options for mount in spec.tmpfs},
        "Mounts": [
            {
                "Type": "bind",
                "Source": bind.source,
                "Target": bind.target,
                "ReadOnly": False,
                "BindOptions": {"Propagation": "rprivate"},
            }
            for bind in spec.binds
        ],
        "Ulimits": [{"Name": u.name, "Soft": u.soft, "Hard": u.hard} for u in spec.ulimits],
        "Init": spec.init,
        "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
        "AutoRemove": False,  # removed by the launcher, after it has read the exit code
        "LogConfig": {
            "Type": "json-file",
            "Config": {"max-size": spec.log_max_size, "max-file": spec.log_max_files},
        },
    }
    if spec.memory_bytes is not None:
        host_config["Memory"] = spec.memory_bytes
        host_config["MemorySwap"] = spec.memory_bytes  # equal: no swap on top of memory
    if spec.nano_cpus is not None:
        host_config["NanoCpus"] = spec.nano_cpus
    if spec.pids_limit is not None:
        host_config["PidsLimit"] = spec.pids_limit
    return {
        "Image": spec.image_id,
        "Cmd": list(spec.command),
        "User": spec.user,
        "Env": [f"{name}={value}" for name, value in spec.env],
        "WorkingDir": spec.working_dir or "",
        "Labels": dict(spec.labels),
        "Tty": False,
        "AttachStdin": spec.open_stdin,
        "AttachStdout": True,
        "AttachStderr": True,
        "OpenStdin": spec.open_stdin,
        # The command sees end-of-file when the caller's input ends.
        "StdinOnce": spec.open_stdin,
        "HostConfig": host_config,
    }


def spec_mismatches(
    spec: RunSpec, container: dict[str, Any], image: dict[str, Any]
) -> list[str]:
    """Every way the inspected ``container`` differs from what ``spec`` asked for."""
    config = container.get("Config") or {}
    host = container.get("HostConfig") or {}
    problems: list[str] = []

    def expect(what: str, actual: object, wanted: object) -> None:
        if actual != wanted:
            problems.append(f"{what} is {actual!r}, expected {wanted!r}")

    expect("Image", container.get("Image"), spec.image_id)
    expect("Config.User", config.get("User"), spec.user)
    expect("HostConfig.ReadonlyRootfs", host.get("ReadonlyRootfs"), spec.read_only_rootfs)
    expect("HostConfig.Privileged", host.get("Privileged"), False)
    expect("HostConfig.CapDrop", host.get("CapDrop"), list(spec.cap_drop))
    expect("HostConfig.CapAdd", host.get("CapAdd") or [], [])
    expect("HostConfig.SecurityOpt", host.get("SecurityOpt"), list(spec.security_opt))
    expect("HostConfig.NetworkMode", host.get("NetworkMode"), spec.network_mode)
    expect("HostConfig.IpcMode", host.get("IpcMode"), spec.ipc_mode)
    for key in ("PidMode", "UTSMode", "UsernsMode"):
        expect(f"HostConfig.{key}", host.get(key) or "", "")
    expect("HostConfig.CgroupnsMode", host.get("CgroupnsMode"), spec.cgroupns_mode)
    expect("HostConfig.Tmpfs", host.get("Tmpfs") or {}, {m.target: m.options for m in spec.tmpfs})
    binds = sorted((b.source, b.target) for b in spec.binds)
    expect("HostConfig.Mounts", sorted(
        (str(m.get("Source")), str(m.get("Target")))
        for m in host.get("Mounts") or []
        if m.get("Type") == "bind" and not m.get("ReadOnly")
    ), binds)
    expect("HostConfig.Mounts (count)", len(host.get("Mounts") or []), len(spec.binds))
    # What the container really mounts: an anonymous volume here would be writable.
    expect("Mounts", sorted(
        (str(m.get("Type")), str(m.get("Source")), str(m.get("Destination")))
        for m in container.get("Mounts") or []
    ), sorted(("bind", source, target) for source, target in binds))
    for key in ("Binds", "Devices", "DeviceRequests", "DeviceCgroupRules", "GroupAdd",
                "VolumesFrom", "Links", "ExtraHosts"):
        expect(f"HostConfig.{key}", host.get(key) or [], [])
    for key in ("PortBindings", "Sysctls", "StorageOpt"):
        expect(f"HostConfig.{key}", host.get(key) or {}, {})
    expect("HostConfig.PublishAllPorts", bool(host.get("PublishAllPorts")), False)
    if spec.memory_bytes is not None:
        expect("HostConfig.Memory", host.get("Memory"), spec.memory_bytes)
        expect("HostConfig.MemorySwap", host.get("MemorySwap"), spec.memory_bytes)
    if spec.nano_cpus is not None:
        expect("HostConfig.NanoCpus", host.get("NanoCpus"), spec.nano_cpus)
        expect("HostConfig.CpuQuota", host.get("CpuQuota") or 0, 0)
    if spec.pids_limit is not None:
        expect("HostConfig.PidsLimit", host.get("PidsLimit"), spec.pids_limit)
    expect("HostConfig.Ulimits", sorted(
        (str(u.get("Name")), u.get("Soft"), u.get("Hard")) for u in host.get("Ulimits") or []
    ), sorted((u.name, u.soft, u.hard) for u in spec.ulimits))
    expect("HostConfig.Init", host.get("Init"), spec.init)
    expect("HostConfig.RestartPolicy.Name",
           ((host.get("RestartPolicy") or {}).get("Name") or "no"), "no")
    expect("HostConfig.OomKillDisable", bool(host.get("OomKillDisable")), False)

    # The environment is the image's, overridden by what the caller set, and nothing else.
    wanted_env = _env_dict((image.get("Config") or {}).get("Env"))
    wanted_env.update(dict(spec.env))
    expect("Config.Env", _env_dict(config.get("Env")), wanted_env)
    labels = config.get("Labels") or {}
    for name, value in spec.labels:
        expect(f"Config.Labels[{name}]", labels.get(name), value)
    return problems


def _env_dict(raw: object) -> dict[str, str]:
    pairs = (str(item).partition("=") for item in raw) if isinstance(raw, list) else ()
    return {name: value for name, _, value in pairs}


@dataclass
class StreamResult:
    timed_out: bool


class DockerBackend:
    """Engine operations of one launch, each turned into a one-line error when it fails."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.api = engine.client.api
        self._errors = importlib.import_module("docker.errors")
        self._requests = importlib.import_module("requests")

    @contextlib.contextmanager
    def _call(self, what: str) -> Iterator[None]:
        try:
            yield
        except self._errors.APIError as exc:
            explanation = exc.explanation or str(exc)
            if isinstance(explanation, bytes):
                explanation = explanation.decode("utf-8", "replace")
            raise LaunchError(f"{what}: the engine said: {explanation.strip()}") from exc
        except (self._errors.DockerException, self._requests.RequestException, OSError) as exc:
            raise EngineUnavailable(
                f"{what}: lost the Docker Engine at {self.engine.host}: {exc}"
            ) from exc

    def create(self, spec: RunSpec) -> tuple[str, list[str]]:
        """Create the container; its ID and the engine's warnings (a dropped setting...)."""
        with self._call(f"creating the container from image {spec.image_id}"):
            created = self.api.create_container_from_config(create_config(spec), name=spec.name)
        return str(created["Id"]), [str(w) for w in created.get("Warnings") or [] if w]

    def inspect(self, container: str) -> dict[str, Any]:
        with self._call(f"inspecting container {container}"):
            return dict(self.api.inspect_container(container))

    def inspect_image(self, image_id: str) -> dict[str, Any]:
        with self._call(f"inspecting image {image_id}"):
            return dict(self.api.inspect_image(image_id))

    def attach(self, container: str, *, stdin: bool) -> Any:
        """The attached stream socket; call before ``start`` so no output can be missed."""
        params = {"stdout": 1, "stderr": 1, "stream": 1, "stdin": 1 if stdin else 0}
        with self._call(f"attaching to container {container}"):
            return self.api.attach_socket(container, params=params)

    def start(self, container: str) -> None:
        with self._call(f"starting container {container}"):
            self.api.start(container)

    def wait(self, container: str, timeout: float | None = None) -> int | None:
        """The container's exit code, or None when it is still running after ``timeout``."""
        try:
            with self._call(f"waiting for container {container}"):
                # None here is "no timeout", not the client's operation timeout: a
                # command may run for longer than any request should.
                status = self.api.wait(container, timeout=timeout)
        except EngineUnavailable as exc:
            if isinstance(exc.__cause__, self._requests.exceptions.ReadTimeout):
                return None
            raise
        error = (status.get("Error") or {}).get("Message")
        if error:
            raise LaunchError(f"container {container} ended with an engine error: {error}")
        return int(status["StatusCode"])

    def kill(self, container: str) -> None:
        """SIGKILL the container; one that has already stopped is fine."""
        try:
            self.api.kill(container)
        except self._errors.APIError as exc:
            if exc.status_code in (404, 409):  # gone, or not running any more
                return
            raise LaunchError(f"killing container {container}: {exc.explanation or exc}") from exc

    def remove(self, container: str) -> bool:
        """Force-remove the container and its anonymous volumes; False when it was not there."""
        try:
            self.api.remove_container(container, v=True, force=True)
        except self._errors.NotFound:
            return False
        except self._errors.APIError as exc:
            # 409: removal already in progress (a kill racing the end of the command).
            if exc.status_code == 409:
                return True
            raise LaunchError(f"removing container {container}: {exc.explanation or exc}") from exc
        except (self._errors.DockerException, self._requests.RequestException, OSError) as exc:
            raise EngineUnavailable(
                f"removing container {container}: lost the Docker Engine: {exc}"
            ) from exc
        return True


def raw_socket(attached: Any) -> socket.socket:
    """The socket under what the SDK's ``attach_socket`` returns (a SocketIO on unix sockets)."""
    if isinstance(attached, socket.socket):
        return attached
    inner = getattr(attached, "_sock", None)
    if isinstance(inner, socket.socket):
        return inner
    raise LaunchError(f"cannot stream over this engine connection ({type(attached).__name__})")


def feed_stdin(sock: socket.socket, source: bytes | IO[bytes]) -> threading.Thread:
    """Send ``source`` to the command in the background, then close the write half (EOF)."""

    def pump() -> None:
        try:
            if isinstance(source, bytes):
                sock.sendall(source)
            else:
                fileno = source.fileno()
                while chunk := os.read(fileno, _READ_SIZE):
                    sock.sendall(chunk)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            # The command exited (or was killed) without reading all of its input.
            return

    thread = threading.Thread(target=pump, name="paracle-guard-stdin", daemon=True)
    thread.start()
    return thread


class _Demux:
    """Turns the engine's multiplexed frames back into stdout and stderr bytes."""

    def __init__(self, stdout: Sink, stderr: Sink) -> None:
        self._sinks = {_STDOUT: stdout, _STDERR: stderr}
        self._pending = bytearray()

    def feed(self, data: bytes) -> None:
        self._pending += data
        touched: set[int] = set()
        while len(self._pending) >= _FRAME_HEADER.size:
            kind, size = _FRAME_HEADER.unpack_from(self._pending)
            end = _FRAME_HEADER.size + size
            if len(self._pending) < end:
                break
            # Frame kind 0 is stdin echoed back; it never occurs without a TTY.
            sink = self._sinks.get(kind, self._sinks[_STDERR])
            sink.write(bytes(self._pending[_FRAME_HEADER.size:end]))
            touched.add(kind)
            del self._pending[:end]
        for kind in touched:
            self._sinks.get(kind, self._sinks[_STDERR]).flush()


def stream(
    sock: socket.socket,
    stdout: Sink,
    stderr: Sink,
    *,
    deadline: float | None,
    on_timeout: Callable[[], None],
) -> StreamResult:
    """Copy the container's output to the sinks as it arrives, until the streams close.

    At ``deadline`` (a ``time.monotonic()`` value) ``on_timeout()`` is called once
    (it kills the container); output then drains for at most DRAIN_SECONDS.
    """
    demux = _Demux(stdout, stderr)
    timed_out = False
    drain_until = 0.0
    while True:
        now = time.monotonic()
        # Checked before every read, so a command that never stops writing still times out.
        if not timed_out and deadline is not None and now >= deadline:
            timed_out = True
            on_timeout()
            drain_until = now + DRAIN_SECONDS
        if timed_out and now >= drain_until:
            break  # the engine did not close the streams in time; give up on them
        limit = drain_until if timed_out else deadline
        readable, _, _ = select.select([sock], [], [], None if limit is None else limit - now)
        if not readable:
            continue
        try:
            data = sock.recv(_READ_SIZE)
        except OSError:
            break
        if not data:
            break
        demux.feed(data)
    return StreamResult(timed_out=timed_out)
