"""The Docker backend: a RunSpec becomes exactly one engine create call, by image ID.

``create_config`` is the whole translation, as the Engine API body: nothing
else decides how a sandbox is configured, and the tests read it directly. The
container is created with the low-level API by image ID, so nothing can pull
and a re-pointed tag cannot change what runs; ``containers.run()`` is never
used (it pulls a missing image).

``spec_mismatches`` compares an inspect result with the RunSpec: the engine (or
an authorization plugin, or a ``docker update`` after start) must have created
exactly what was asked for. The policy rules judge the same inspect result
separately, through ``sources.container``. After start, ``hostproof`` reads what
the kernel did from this host; an engine elsewhere (``DOCKER_HOST=tcp://``,
``ssh://``) cannot be proved that way, so it is refused before anything runs.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from paracle_guard.engine_protocol import ContainerEngine, EngineNotFound, EngineRefused
from paracle_guard.errors import EngineUnavailable, GuardError
from paracle_guard.launcher.backend import CheckedImage, Ended, Observation, Removal
from paracle_guard.launcher.gvisor import (
    gofer_mounts,
    judge_gvisor,
    promises,
    prove_gvisor,
    read_oci_spec,
    sentry_processes,
)
from paracle_guard.launcher.hostproof import (
    HostFacts,
    ProofUnavailable,
    judge,
    read_host_facts,
)
from paracle_guard.launcher.refusal import LaunchError, PolicyViolation
from paracle_guard.launcher.runspec import RunSpec
from paracle_guard.launcher.runtimes import (
    GVISOR,
    GVISOR_MIN_PIDS,
    INFO_SECONDS,
    Runtime,
    engine_runtimes,
    missing_runtime,
)
from paracle_guard.launcher.streams import (
    DRAIN_SECONDS,
    Sink,
    feed_stdin,
    raw_socket,
    stream,
)
from paracle_guard.subject import Subject

if TYPE_CHECKING:
    from paracle_guard.disk_cache import DiskCache
    from paracle_guard.progress import ReadProgress

# Removal is retried this often, waiting twice as long each time (0.2 s first): an
# engine under load may still be finishing the create, or a kill, when asked.
REMOVE_ATTEMPTS = 6
REMOVE_BACKOFF = 0.2
# How long a container whose first process could not be read may take to show as ended.
ENDING_SECONDS = 2.0

# Records one difference between what the container has and what the spec asked for.
_Expect = Callable[[str, object, object], None]


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
        "Mounts": _bind_mounts(spec),
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
    if spec.runtime is not None:
        host_config["Runtime"] = spec.runtime
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


def _bind_mounts(spec: RunSpec) -> list[dict[str, Any]]:
    return [
        {
            "Type": "bind",
            "Source": bind.source,
            "Target": bind.target,
            "ReadOnly": bind.read_only,
            # Only the folder itself: mounts below it on the host (a USB stick, a
            # FUSE folder) would otherwise come along, writable.
            "BindOptions": {"Propagation": "rprivate", "NonRecursive": True},
        }
        for bind in spec.binds
    ]


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
    _expect_mounts(expect, spec, container)
    for key in ("Binds", "Devices", "DeviceRequests", "DeviceCgroupRules", "GroupAdd",
                "VolumesFrom", "Links", "ExtraHosts"):
        expect(f"HostConfig.{key}", host.get(key) or [], [])
    for key in ("PortBindings", "Sysctls", "StorageOpt"):
        expect(f"HostConfig.{key}", host.get(key) or {}, {})
    expect("HostConfig.PublishAllPorts", bool(host.get("PublishAllPorts")), False)
    _expect_limits(expect, spec, host)
    # The environment is the image's, overridden by what the caller set, and nothing else.
    wanted_env = _env_dict((image.get("Config") or {}).get("Env"))
    wanted_env.update(dict(spec.env))
    expect("Config.Env", _env_dict(config.get("Env")), wanted_env)
    labels = config.get("Labels") or {}
    for name, value in spec.labels:
        expect(f"Config.Labels[{name}]", labels.get(name), value)
    return problems


def _expect_mounts(expect: _Expect, spec: RunSpec, container: dict[str, Any]) -> None:
    """The tmpfs mounts and binds asked for, and no other mount (an anonymous volume)."""
    host = container.get("HostConfig") or {}
    expect("HostConfig.Tmpfs", host.get("Tmpfs") or {}, {m.target: m.options for m in spec.tmpfs})
    binds = sorted((b.source, b.target, b.read_only) for b in spec.binds)
    expect("HostConfig.Mounts", sorted(
        (str(m.get("Source")), str(m.get("Target")), bool(m.get("ReadOnly")))
        for m in host.get("Mounts") or []
        if m.get("Type") == "bind"
        and (m.get("BindOptions") or {}).get("NonRecursive") is True
    ), binds)
    expect("HostConfig.Mounts (count)", len(host.get("Mounts") or []), len(spec.binds))
    # What the container really mounts: an anonymous volume here would be writable.
    expect("Mounts", sorted(
        (str(m.get("Type")), str(m.get("Source")), str(m.get("Destination")),
         not m.get("RW", True))
        for m in container.get("Mounts") or []
    ), sorted(("bind", source, target, read_only) for source, target, read_only in binds))


def _expect_limits(expect: _Expect, spec: RunSpec, host: dict[str, Any]) -> None:
    """Memory without swap, CPU, pids, runtime, ulimits, init, no restarts, the OOM killer on."""
    if spec.memory_bytes is not None:
        expect("HostConfig.Memory", host.get("Memory"), spec.memory_bytes)
        expect("HostConfig.MemorySwap", host.get("MemorySwap"), spec.memory_bytes)
    if spec.nano_cpus is not None:
        expect("HostConfig.NanoCpus", host.get("NanoCpus"), spec.nano_cpus)
        expect("HostConfig.CpuQuota", host.get("CpuQuota") or 0, 0)
    if spec.pids_limit is not None:
        expect("HostConfig.PidsLimit", host.get("PidsLimit"), spec.pids_limit)
    if spec.runtime is not None:
        expect("HostConfig.Runtime", host.get("Runtime"), spec.runtime)
    expect("HostConfig.Ulimits", sorted(
        (str(u.get("Name")), u.get("Soft"), u.get("Hard")) for u in host.get("Ulimits") or []
    ), sorted((u.name, u.soft, u.hard) for u in spec.ulimits))
    expect("HostConfig.Init", host.get("Init"), spec.init)
    expect("HostConfig.RestartPolicy.Name",
           ((host.get("RestartPolicy") or {}).get("Name") or "no"), "no")
    expect("HostConfig.OomKillDisable", bool(host.get("OomKillDisable")), False)


def _env_dict(raw: object) -> dict[str, str]:
    pairs = (str(item).partition("=") for item in raw) if isinstance(raw, list) else ()
    return {name: value for name, _, value in pairs}


class DockerBackend:
    """One launch on a Docker-API engine (``ContainerEngine``); every engine failure becomes a
    one-line error."""

    name = "docker"

    def __init__(
        self,
        engine: ContainerEngine,
        *,
        image_cache: dict[str, Subject] | None = None,
        facts_cache: DiskCache | None = None,
        progress: ReadProgress | None = None,
    ) -> None:
        self.engine = engine
        self._facts_cache = facts_cache
        self._progress = progress
        self.engine_host: str | None = engine.host
        self._image_cache = image_cache if image_cache is not None else {}
        self._image_documents: dict[str, dict[str, Any]] = {}
        self._warnings: dict[str, list[str]] = {}
        self._runtimes: dict[str, Runtime] | None = None
        self._attached: Any = None

    @contextlib.contextmanager
    def _call(self, what: str) -> Iterator[None]:
        try:
            yield
        except EngineRefused as exc:
            raise LaunchError(f"{what}: the engine said: {exc.explanation}") from exc
        except EngineUnavailable as exc:
            raise EngineUnavailable(f"{what}: {exc}") from exc

    def preflight(self) -> None:
        from paracle_guard.sources.container import engine_is_local

        if not engine_is_local(self.engine.host):
            raise LaunchError(
                f"the Docker Engine at {self.engine.host} is not on this machine, so the "
                "launcher cannot prove from the host what runs (it reads each container's "
                "mounts in /proc); run paracle-guard on the engine's machine")

    def image(self, ref: str) -> CheckedImage:
        """The image by ID, read once per ID (an ID names immutable content): in memory for
        this backend's launcher, and through the facts cache across processes."""
        from paracle_guard.sources.image import load_resolved_image

        info = self.engine.resolve_image(ref)
        subject = self._image_cache.get(info.id)
        if subject is None:
            subject = load_resolved_image(self.engine, info, info.id, cache=self._facts_cache,
                                          progress=self._progress)
            self._image_cache[info.id] = subject
        # Named as the user named it, so waivers written for the reference apply.
        return CheckedImage(ref=ref, id=info.id, repo_digests=tuple(info.repo_digests),
                            subject=replace(subject, target=ref))

    def runtimes(self) -> dict[str, Runtime]:
        """The engine's registered runtimes by name, asked once per launch."""
        if self._runtimes is None:
            with self._call("asking the engine for its runtimes"):
                self._runtimes = {r.name: r for r in engine_runtimes(
                    self.engine.info(timeout=INFO_SECONDS))}
        return self._runtimes

    def _check_runtime(self, spec: RunSpec) -> None:
        """Refuse a runtime the engine lacks (saying how to add it) or cannot run as asked."""
        if spec.runtime is None:
            return
        registered = self.runtimes()
        missing = missing_runtime([spec.runtime], list(registered.values()))
        if missing is not None:
            raise PolicyViolation(f"refused: {missing}", key="controls.runtime.allowed")
        if (registered[spec.runtime].sandbox == GVISOR and spec.pids_limit is not None
                and spec.pids_limit < GVISOR_MIN_PIDS):
            raise PolicyViolation(
                f"refused: a pids limit of {spec.pids_limit} is below {GVISOR_MIN_PIDS}: under "
                "gVisor the limit also counts gVisor's own threads on the host (about 40 for "
                "an idle sandbox), and a sandbox below it fails or hangs at start",
                key="controls.resources.pids")

    def create(self, spec: RunSpec) -> str:
        self._check_runtime(spec)
        with self._call(f"creating the container from image {spec.image_id}"):
            created = self.engine.create_container(create_config(spec), name=spec.name)
        handle = str(created["Id"])
        self._warnings[handle] = [str(w) for w in created.get("Warnings") or [] if w]
        return handle

    def find(self, spec: RunSpec) -> str | None:
        found = self.engine.find_container(spec.name)
        return None if found is None else str(found["Id"])

    def inspect(self, container: str) -> dict[str, Any]:
        with self._call(f"inspecting container {container}"):
            found = self.engine.find_container(container)
        if found is None:
            raise LaunchError(f"inspecting container {container}: the engine has no such "
                              "container")
        return found

    def _image_document(self, image_id: str) -> dict[str, Any]:
        if image_id not in self._image_documents:
            with self._call(f"inspecting image {image_id}"):
                document = self.engine.inspect_image_document(image_id)
            if document is None:
                raise LaunchError(f"inspecting image {image_id}: the engine has no such image")
            self._image_documents[image_id] = document
        return self._image_documents[image_id]

    def verify(self, handle: str, spec: RunSpec, *, started: bool) -> Observation:
        """The container as the engine stores it and, once started, as the kernel runs it."""
        from paracle_guard.sources.container import host_paths, subject_from_inspect

        document = self.inspect(handle)
        image_document = self._image_document(spec.image_id)
        problems = [f"the engine warned: {warning}" for warning in self._warnings.pop(handle, [])]
        problems += spec_mismatches(spec, document, image_document)
        realpaths = {path: _realpath(path) for path in host_paths(document, {})}
        subject = subject_from_inspect(document, image_document,
                                       target=f"container:{spec.name}", realpaths=realpaths)
        observation = Observation(subjects=[subject], problems=problems)
        if started:
            self._prove(handle, spec, document, observation)
        return observation

    def _prove(self, handle: str, spec: RunSpec, document: dict[str, Any],
               observation: Observation) -> None:
        state = document.get("State") or {}
        host = document.get("HostConfig") or {}
        try:
            facts = read_host_facts(handle, int(state.get("Pid") or 0),
                                    [bind.target for bind in spec.binds])
        except ProofUnavailable as unavailable:
            # An exiting process reads as gone (EINVAL, ESRCH) a moment before the engine
            # notices; only one that is still running after ENDING_SECONDS is unreadable.
            if self._wait_once(handle, ENDING_SECONDS) is not None:
                observation.unproved = (f"the command ended before the host could read its "
                                        f"mounts ({unavailable})")
                return
            raise LaunchError(f"cannot prove container {handle[:12]} from this host: "
                              f"{unavailable}") from None
        observation.host = facts
        runtime = self.runtimes().get(str(host.get("Runtime") or ""))
        if runtime is not None and runtime.sandbox == GVISOR:
            # The first process is gVisor's kernel, not the code: prove the sandbox instead.
            self._prove_gvisor(handle, spec, document, runtime, facts, observation)
            return
        observation.proof = judge(spec, facts, list(host.get("MaskedPaths") or []))

    def _prove_gvisor(self, handle: str, spec: RunSpec, document: dict[str, Any],
                      runtime: Runtime, facts: HostFacts, observation: Observation) -> None:
        pid = int((document.get("State") or {}).get("Pid") or 0)
        oci = read_oci_spec(pid)
        writable = [m.target for m in spec.tmpfs if "ro" not in m.options.split(",")]
        found = promises(prove_gvisor(document, runtime), oci,
                         sentry_processes(runtime, pid, handle), uid=spec.uid, gid=spec.gid,
                         writable=writable)
        problems = judge_gvisor(spec, facts, found, oci, gofer_mounts(Path("/proc"), pid, handle))
        if problems and self._wait_once(handle, ENDING_SECONDS) is not None:
            # A command that has already ended takes its sandbox (and runsc's records)
            # with it: what could not be read was not there to prove any more.
            observation.unproved = ("the command ended before the host could prove its gVisor "
                                    "sandbox")
            return
        observation.sandbox = found
        observation.proof = problems

    def start(self, handle: str, spec: RunSpec) -> None:
        with self._call(f"attaching to container {handle}"):
            self._attached = self.engine.attach(handle, stdin=spec.open_stdin)
        with self._call(f"starting container {handle}"):
            self.engine.start(handle)

    def stream(
        self, handle: str, spec: RunSpec, stdout: Sink, stderr: Sink,
        stdin: bytes | IO[bytes] | None, deadline: float | None,
    ) -> Ended:
        sock = raw_socket(self._attached)
        try:
            if stdin is not None:
                feed_stdin(sock, stdin)
            timed_out = stream(sock, stdout, stderr, deadline=deadline,
                               on_timeout=lambda: self.stop(handle))
        finally:
            self.close()
        return self._wait(handle, deadline, timed_out)

    def _wait(self, handle: str, deadline: float | None, timed_out: bool) -> Ended:
        """The exit code and whether the deadline passed.

        The streams can close before the process ends (it may close its own output),
        so the wait is bounded by the same deadline as the streaming was.
        """
        if not timed_out and deadline is not None:
            status = self._wait_once(handle, max(deadline - time.monotonic(), 0.01))
            if status is not None:
                return Ended(status, False)
            self.stop(handle)
            timed_out = True
        status = self._wait_once(handle, DRAIN_SECONDS if timed_out else None)
        if status is None:
            raise LaunchError(f"container {handle} did not stop within {DRAIN_SECONDS:g}s of a "
                              "kill")
        return Ended(status, timed_out)

    def _wait_once(self, container: str, timeout: float | None) -> int | None:
        """The container's exit code, or None when it is still running after ``timeout``."""
        with self._call(f"waiting for container {container}"):
            status = self.engine.wait(container, timeout)
        if status is None:
            return None
        error = (status.get("Error") or {}).get("Message")
        if error:
            raise LaunchError(f"container {container} ended with an engine error: {error}")
        return int(status["StatusCode"])

    def stop(self, handle: str) -> None:
        try:
            self.engine.kill(handle)  # gone, or not running any more, is not an error
        except EngineRefused as exc:
            raise LaunchError(f"killing container {handle}: {exc.explanation}") from exc

    def remove(self, handle: str) -> Removal:
        """Force-remove by ID, then ask again until the engine says 404; never raises."""
        self.close()
        last = "the engine kept it"
        wait = REMOVE_BACKOFF
        for attempt in range(REMOVE_ATTEMPTS):
            try:
                self.engine.remove_container(handle)
            except EngineNotFound:
                pass
            except EngineRefused as exc:  # 409: a removal already in progress
                last = exc.explanation
            except EngineUnavailable as exc:
                last = f"lost the engine: {exc}"
            try:
                if self.engine.find_container(handle) is None:
                    return Removal(True, f"container {handle[:12]} was removed")
            except GuardError as exc:
                last = f"cannot ask the engine: {exc}"
            if attempt < REMOVE_ATTEMPTS - 1:
                time.sleep(wait)
                wait *= 2
        return Removal(False, f"container {handle[:12]} could not be removed ({last}); "
                              f"remove it with: docker rm -f {handle}")

    def close(self) -> None:
        attached, self._attached = self._attached, None
        if attached is None:
            return
        with contextlib.suppress(OSError):
            raw_socket(attached).close()
        with contextlib.suppress(OSError):
            attached.close()


def _realpath(path: str) -> str:
    """The real path for the rules' symlink check; as written when it is changing right now."""
    try:
        return os.path.realpath(path)
    except OSError:
        return path
