"""The engine's OCI runtimes: which it has, which are sandboxes, and whether one works.

Docker registers runtimes by name in daemon.json (``runtimes``) and reports them
in ``/info`` (``Runtimes``: name -> ``path`` and ``runtimeArgs``, and
``DefaultRuntime``). A name proves nothing about the binary behind it, so what
a runtime *is* (gVisor, Kata Containers, plain runc) is read from its path;
``doctor --probe`` and ``sandbox test`` prove that it really runs.

gVisor's runsc needs ``--network=none`` on engines like the test suite's (no
bridge): without it a start fails with "cannot run with network enabled in root
network namespace". ``how_to_register`` and the probe's failure advice say so.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import subprocess
import tarfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from paracle_guard.engine_protocol import EngineNotFound, EngineRefused

if TYPE_CHECKING:
    from paracle_guard.engine_protocol import ContainerRunner

GVISOR = "gVisor"
KATA = "Kata Containers"
# How the README and scripts/docker-engine register Debian's runsc.
RUNSC_ENTRY: dict[str, Any] = {"path": "/usr/bin/runsc", "runtimeArgs": ["--network=none"]}
# The oldest gVisor release paracle-guard is tested with: Debian 12's runsc package
# (0.0~20221219.0). gVisor has no long-term releases and ships fixes only in new
# releases, so an older one is both untested here and missing fixes.
RUNSC_MINIMUM = (20221219, 0)
_RELEASE = re.compile(r"(?:release-|~)(\d{8})\.(\d+)")
NETWORK_ERROR = "cannot run with network enabled in root network namespace"
# The least pids limit a gVisor sandbox starts with: the limit counts gVisor's own host
# threads (about 40 for an idle sandbox here); at 48 a sandbox exited before its command
# ran, at 32 its start hung until the sandbox process was killed (runsc 20221219.0).
GVISOR_MIN_PIDS = 64
# The trivial container: the engine's own init binary, which the engine mounts into
# every container started with an init, prints its version and exits. No image
# content is needed, so the probe imports an empty image and needs nothing local.
PROBE_COMMAND = ("/sbin/docker-init", "--version")
PROBE_LABEL = "paracle-guard.doctor"
PROBE_TIMEOUT = 60.0
# How long to wait on a busy engine's /info, the list of its runtimes (doctor, a launch).
INFO_SECONDS = 60.0


@dataclass(frozen=True)
class Runtime:
    """One runtime the engine has registered."""

    name: str
    path: str  # as registered: "runc" for the stock runtime, an absolute path otherwise
    args: tuple[str, ...] = ()
    default: bool = False

    @property
    def sandbox(self) -> str | None:
        """The sandboxing runtime this is (gVisor, Kata Containers), or None for runc & co."""
        return sandbox_kind(self.name, self.path)

    def describe(self) -> str:
        details = " ".join([self.path, *self.args])
        notes = [note for note in (self.sandbox, "default" if self.default else None) if note]
        return f"{self.name} ({details}{'; ' + ', '.join(notes) if notes else ''})"


def sandbox_kind(name: str, path: str = "") -> str | None:
    """What kind of sandbox the runtime ``name`` (registered with ``path``) puts around a container.

    Read from the binary's name (``runsc``, ``runsc-debug``, ``kata-runtime``); only a
    runtime registered without a path (a containerd shim such as
    ``io.containerd.runsc.v1``) is known by its name.
    """
    text = os.path.basename(path) if path else name
    if "runsc" in text or "gvisor" in text.lower():
        return GVISOR
    if "kata" in text:
        return KATA
    return None


def engine_runtimes(info: Mapping[str, Any]) -> list[Runtime]:
    """The runtimes of an engine's ``/info`` document, sorted by name."""
    default = str(info.get("DefaultRuntime") or "runc")
    found = []
    for name, entry in sorted((info.get("Runtimes") or {}).items()):
        entry = entry if isinstance(entry, Mapping) else {}
        args = entry.get("runtimeArgs") or []
        found.append(Runtime(name=str(name), path=str(entry.get("path") or ""),
                             args=tuple(str(arg) for arg in args if isinstance(arg, str)),
                             default=name == default))
    return found


def how_to_register(name: str) -> str:
    """How a user gives the engine the runtime ``name``, in one sentence."""
    reload = "then reload the engine with kill -HUP $(pidof dockerd) (no restart needed)"
    if sandbox_kind(name) == GVISOR:
        entry = json.dumps({"runtimes": {name: RUNSC_ENTRY}})
        return (f"install gVisor (Debian/Ubuntu: apt-get install runsc), merge {entry} into "
                f"/etc/docker/daemon.json, {reload}")
    entry = json.dumps({"runtimes": {name: {"path": f"/path/to/{name}"}}})
    return f"install it and merge {entry} into /etc/docker/daemon.json, {reload}"


def missing_runtime(allowed: Sequence[str], runtimes: Sequence[Runtime]) -> str | None:
    """Why none of the ``allowed`` runtimes can be used on this engine, or None if one can."""
    if not allowed or any(runtime.name in allowed for runtime in runtimes):
        return None
    names = ", ".join(allowed)
    has = ", ".join(runtime.name for runtime in runtimes) or "none"
    return (f"controls.runtime.allowed names {names}, which the Docker Engine does not have "
            f"(it has: {has}); to add {allowed[0]}: {how_to_register(allowed[0])}")


def runsc_release(version_output: str) -> tuple[int, int] | None:
    """The gVisor release in ``runsc --version`` output (``release-20231009.0``, Debian's
    ``0.0~20221219.0``) as (date, patch); None when it names no release (a dev build)."""
    match = _RELEASE.search(version_output)
    return (int(match.group(1)), int(match.group(2))) if match else None


def release_text(release: tuple[int, int]) -> str:
    return f"release-{release[0]}.{release[1]}"


def runtime_version(path: str) -> str | None:
    """The first line of ``PATH --version`` on this host, or None when it cannot be run."""
    binary = path if os.path.isabs(path) else shutil.which(path)
    if binary is None:
        return None
    try:
        done = subprocess.run([binary, "--version"], capture_output=True, text=True,
                              timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    lines = (done.stdout or done.stderr).strip().splitlines()
    return lines[0] if done.returncode == 0 and lines else None


# --- the trivial container (doctor --probe) -----------------------------------------------


@dataclass(frozen=True)
class ProbeOutcome:
    runtime: str
    works: bool
    detail: str


def _empty_image() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w"):
        pass
    return buffer.getvalue()


def probe_runtime(engine: ContainerRunner, runtime: str) -> ProbeOutcome:
    """Run a trivial, hardened container under ``runtime`` and say whether it worked.

    Everything it makes (an empty image and one container) carries PROBE_LABEL and
    is removed before it returns, whatever happened.
    """
    image_id = container = None
    started = time.monotonic()
    try:
        image_id = engine.import_image(_empty_image(), changes=[f"LABEL {PROBE_LABEL}=1"])
        container = str(engine.create_container({
            "Image": image_id, "Cmd": list(PROBE_COMMAND), "User": "65534:65534",
            "Labels": {PROBE_LABEL: "1"},
            "HostConfig": {
                "Runtime": runtime, "NetworkMode": "none", "Init": True, "ReadonlyRootfs": True,
                "CapDrop": ["ALL"], "SecurityOpt": ["no-new-privileges:true"],
                "IpcMode": "none",
                # gVisor's own threads on the host count against the pids limit (an idle
                # sandbox has about 40), so the limit leaves room for them.
                "Memory": 64 << 20, "MemorySwap": 64 << 20, "PidsLimit": 128,
            },
        })["Id"])
        engine.start(container)
        status = engine.wait(container, PROBE_TIMEOUT)
        if status is None:
            raise TimeoutError(f"it was still running after {PROBE_TIMEOUT:g}s")
        output = engine.logs(container).decode("utf-8", "replace").strip()
        inspected = engine.find_container(container) or {}
        recorded = (inspected.get("HostConfig") or {}).get("Runtime")
    except EngineRefused as exc:
        return ProbeOutcome(runtime, False, _advice(runtime, exc.explanation))
    except Exception as exc:  # an engine's many transport errors: the probe did not work
        return ProbeOutcome(runtime, False, f"the trivial container did not run: {exc}")
    finally:
        _remove(engine, container, image_id)
    seconds = time.monotonic() - started
    code = int(status.get("StatusCode", -1))
    if code != 0 or recorded != runtime:
        return ProbeOutcome(runtime, False, _advice(
            runtime, f"the trivial container exited {code} under runtime {recorded}: "
                     f"{output or 'no output'}"))
    return ProbeOutcome(runtime, True, f"a trivial hardened container ran under {runtime} "
                                       f"in {seconds:.1f}s ({output.splitlines()[0]})")


def _advice(runtime: str, error: str) -> str:
    if NETWORK_ERROR in error:
        return (f"{error.strip()}; add \"runtimeArgs\": [\"--network=none\"] to {runtime}'s "
                "entry in /etc/docker/daemon.json and reload the engine (kill -HUP)")
    return error.strip()


def _remove(engine: ContainerRunner, container: str | None, image_id: str | None) -> None:
    if container is not None:
        with contextlib.suppress(EngineNotFound):
            engine.remove_container(container)
    if image_id is not None:
        with contextlib.suppress(EngineNotFound):
            engine.remove_image(image_id)

