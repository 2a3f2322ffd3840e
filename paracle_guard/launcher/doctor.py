"""``paracle-guard doctor``: can this engine enforce the policy?

``assess`` is pure: it judges the engine's ``/version`` and ``/info`` documents
(and the runtime versions read on the host), so every verdict is testable
without an engine. A ``fail`` means a launch under the policy would be refused
or could not hold (a limit the kernel cannot enforce, an API too old to ask for
a private cgroup namespace, a runtime the policy requires that the engine does
not have); a ``warn`` is worth fixing but does not stop a launch; ``info`` is
context. ``diagnose(probe=True)`` also runs a trivial container under each
runtime it checks (``doctor --probe``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

from paracle_guard.docker_client import Engine, engine_host
from paracle_guard.engine_protocol import ContainerEngine
from paracle_guard.errors import GuardError
from paracle_guard.launcher.runtimes import (
    GVISOR,
    INFO_SECONDS,
    RUNSC_MINIMUM,
    Runtime,
    engine_runtimes,
    how_to_register,
    missing_runtime,
    probe_runtime,
    release_text,
    runsc_release,
    runtime_version,
)
from paracle_guard.policy.models import RuntimeControl

Status = Literal["ok", "warn", "fail", "info"]

# runc 1.1.12 fixed CVE-2024-21626 (a working directory under /proc/self/fd leaks a
# host file descriptor into the container).
RUNC_FIXED = (1, 1, 12)
# API 1.41 added CgroupnsMode; without it a cgroup v1 engine puts containers in the
# host's cgroup namespace, which the container rules refuse.
MIN_API = (1, 41)
# Kernel features the RunSpec's limits need, as /info names them.
LIMIT_FEATURES = {
    "MemoryLimit": "memory limit",
    "SwapLimit": "swap limit (memory and swap are set equal)",
    "PidsLimit": "pids limit",
    "CpuCfsQuota": "CPU limit (CFS quota)",
}


@dataclass(frozen=True)
class EngineCheck:
    """One line of ``doctor``: a fact about the engine and whether it lets the policy hold."""

    name: str
    status: Status
    detail: str


@dataclass(frozen=True)
class Diagnosis:
    checks: list[EngineCheck]
    policy: str = "the default policy"

    @property
    def ok(self) -> bool:
        return not any(check.status == "fail" for check in self.checks)

    def render_text(self) -> str:
        width = max(len(check.name) for check in self.checks)
        lines = [f"{c.status:<5} {c.name:<{width}}  {c.detail}" for c in self.checks]
        failures = [c.name for c in self.checks if c.status == "fail"]
        warnings = sum(1 for c in self.checks if c.status == "warn")
        if failures:
            lines.append(f"paracle-guard doctor: this engine cannot enforce {self.policy} "
                         f"({', '.join(failures)})")
        else:
            lines.append(f"paracle-guard doctor: this engine can enforce {self.policy}"
                         + (f" ({warnings} warning{'s' if warnings != 1 else ''})"
                            if warnings else ""))
        return "\n".join(lines) + "\n"

    def render_json(self) -> str:
        document = {"ok": self.ok, "checks": [asdict(check) for check in self.checks]}
        return json.dumps(document, indent=2) + "\n"


def version_tuple(text: str) -> tuple[int, ...] | None:
    """The leading numeric part of a version (``1.1.5+ds1`` -> (1, 1, 5)); None if there is none."""
    match = re.match(r"v?(\d+(?:\.\d+)*)", text.strip())
    return tuple(int(part) for part in match.group(1).split(".")) if match else None


def _component(version: Mapping[str, Any], name: str) -> str | None:
    for component in version.get("Components") or []:
        if isinstance(component, Mapping) and component.get("Name") == name:
            return str(component.get("Version") or "") or None
    return None


def _security_options(info: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """``["name=seccomp,profile=default", "name=rootless"]`` -> {"seccomp": {"profile": ...}}."""
    options: dict[str, dict[str, str]] = {}
    for raw in info.get("SecurityOptions") or []:
        fields = dict(part.partition("=")[::2] for part in str(raw).split(","))
        name = fields.pop("name", "")
        if name:
            options[name] = fields
    return options


def assess(
    version: Mapping[str, Any],
    info: Mapping[str, Any],
    host: str,
    *,
    runtime: RuntimeControl | None = None,
    versions: Mapping[str, str | None] | None = None,
) -> list[EngineCheck]:
    """Every check of an engine, from its /version and /info documents.

    ``runtime`` is the policy's runtime control (None: the default, any runtime);
    ``versions`` maps runtime names to their ``--version`` line, for the runtimes
    whose binary could be run on this host.
    """
    return [
        *_engine_checks(version, host),
        *_runtime_checks(engine_runtimes(info), runtime or RuntimeControl(), versions or {}),
        _runc_check(version, info, runtime),
        _init_check(version),
        *_kernel_checks(info),
        *_security_checks(_security_options(info), host),
    ]


def _engine_checks(version: Mapping[str, Any], host: str) -> list[EngineCheck]:
    """The engine is reachable, speaks a recent enough API, and runs Linux containers."""
    engine_version = str(version.get("Version") or "unknown")
    api = str(version.get("ApiVersion") or "")
    platform = f"{version.get('Os') or '?'}/{version.get('Arch') or '?'}"
    checks = [EngineCheck("engine", "ok",
                          f"reachable at {host}: Docker Engine {engine_version}, "
                          f"API {api or '?'}, {platform}, "
                          f"kernel {version.get('KernelVersion') or '?'}")]
    api_tuple = version_tuple(api)
    if api_tuple is None or api_tuple < MIN_API:
        checks.append(EngineCheck("api", "fail",
                                  f"API {api or 'unknown'} is older than "
                                  f"{'.'.join(map(str, MIN_API))}: a private cgroup namespace "
                                  "cannot be asked for"))
    if str(version.get("Os") or "linux") != "linux":
        checks.append(EngineCheck("os", "fail",
                                  f"the engine runs {version.get('Os')} containers; the sandbox "
                                  "controls are Linux ones"))
    return checks


def _runc_check(version: Mapping[str, Any], info: Mapping[str, Any],
                runtime: RuntimeControl | None) -> EngineCheck:
    runc = _component(version, "runc") or str((info.get("RuncCommit") or {}).get("ID") or "")
    runc_tuple = version_tuple(runc) if runc else None
    if runc_tuple is None:
        return EngineCheck("runc", "warn",
                           f"cannot tell the runc version ({runc or 'not reported'}); "
                           "runc 1.1.12 or later fixes CVE-2024-21626")
    if runc_tuple < RUNC_FIXED:
        # A policy that allows only other runtimes never starts a sandbox with runc.
        spared = bool(runtime and runtime.allowed and "runc" not in runtime.allowed)
        return EngineCheck("runc", "info" if spared else "warn",
                           f"runc {runc} is older than 1.1.12, which fixes CVE-2024-21626 "
                           "(container breakout through a working directory under "
                           "/proc/self/fd); upgrade, or confirm your distribution backported "
                           "the fix" + ("; this policy's sandboxes do not run under runc"
                                        if spared else ""))
    return EngineCheck("runc", "ok", f"runc {runc} (CVE-2024-21626 fixed)")


def _init_check(version: Mapping[str, Any]) -> EngineCheck:
    init = _component(version, "docker-init")
    if init:
        return EngineCheck("init", "ok", f"docker-init {init} (the sandbox's init process)")
    return EngineCheck("init", "warn", "the engine does not report docker-init; launches ask "
                       "for an init process and fail to start without one")


def _kernel_checks(info: Mapping[str, Any]) -> list[EngineCheck]:
    """The cgroup setup, and whether the kernel enforces every limit the RunSpec sets."""
    cgroup = str(info.get("CgroupVersion") or "?")
    checks = [EngineCheck("cgroup", "info",
                          f"cgroup v{cgroup}, driver {info.get('CgroupDriver') or '?'}")]
    missing = [what for key, what in LIMIT_FEATURES.items() if info.get(key) is False]
    if missing:
        checks.append(EngineCheck("limits", "fail",
                                  "the kernel cannot enforce: " + ", ".join(missing)))
    else:
        checks.append(EngineCheck("limits", "ok",
                                  "memory, swap, pids and CPU limits are enforced"))
    return checks


def _security_checks(security: Mapping[str, Mapping[str, str]], host: str) -> list[EngineCheck]:
    """The engine's security options (``SecurityOptions`` in /info), and the host proof."""
    checks: list[EngineCheck] = []
    if "seccomp" in security:
        profile = security["seccomp"].get("profile", "default")
        checks.append(EngineCheck("seccomp", "ok", f"active (profile {profile})"))
    else:
        checks.append(EngineCheck("seccomp", "warn",
                                  "not active: containers run without a system-call filter"))
    checks.append(EngineCheck("apparmor", "info",
                              "active" if "apparmor" in security else "not active"))
    if "selinux" in security:
        checks.append(EngineCheck("selinux", "info", "active"))
    checks.append(EngineCheck("userns-remap", "info",
                              "on (container root maps to an unprivileged host uid)"
                              if "userns" in security else "off"))
    checks.append(EngineCheck("rootless", "info", "on (the engine itself runs unprivileged)"
                              if "rootless" in security else "off"))
    checks.append(_host_proof(host, rootless="rootless" in security))
    return checks


def _host_proof(host: str, *, rootless: bool) -> EngineCheck:
    """Whether `run` can prove containers from this host, as it insists on doing."""
    from paracle_guard.sources.container import engine_is_local

    if not engine_is_local(host):
        return EngineCheck("host-proof", "fail",
                           f"the engine at {host} is not on this machine: run refuses, since "
                           "it proves each container's mounts from the host's /proc")
    if rootless:
        return EngineCheck("host-proof", "warn",
                           "a rootless engine: run proves containers through /proc only if "
                           "their processes are visible here, and refuses otherwise")
    return EngineCheck("host-proof", "ok",
                       "run proves each container from this host (/proc/PID/mountinfo; bind "
                       "inodes through /proc/PID/root, which needs root)")


def _runtime_checks(runtimes: list[Runtime], wanted: RuntimeControl,
                    versions: Mapping[str, str | None]) -> list[EngineCheck]:
    checks = [EngineCheck("runtimes", "info",
                          ", ".join(runtime.describe() for runtime in runtimes) or "none reported")]
    sandboxes = [runtime for runtime in runtimes if runtime.sandbox]
    missing = missing_runtime(wanted.allowed, runtimes)
    if missing is not None:
        checks.append(EngineCheck("sandbox-runtime", "fail", missing))
    elif wanted.allowed:
        usable = [runtime for runtime in runtimes if runtime.name in wanted.allowed]
        checks.append(EngineCheck("sandbox-runtime", "ok", "allowed and registered: " + ", ".join(
            f"{r.name} ({r.sandbox or 'shares the host kernel'})" for r in usable)))
    elif sandboxes:
        checks.append(EngineCheck("sandbox-runtime", "info", ", ".join(
            f"{r.name} ({r.sandbox})" for r in sandboxes) + " registered; a policy that "
            "allows it (sandbox-gvisor for runsc) runs every sandbox under it"))
    else:
        checks.append(EngineCheck("sandbox-runtime", "info",
                                  "no sandboxed runtime is registered, so sandboxes share the host "
                                  f"kernel; for gVisor: {how_to_register('runsc')}"))
    for runtime in sandboxes:
        if runtime.sandbox == GVISOR:
            checks.append(_gvisor_release(runtime, versions.get(runtime.name)))
    return checks


def _gvisor_release(runtime: Runtime, version: str | None) -> EngineCheck:
    minimum = release_text(RUNSC_MINIMUM)
    release = runsc_release(version) if version else None
    if release is None:
        return EngineCheck(runtime.name, "warn",
                           f"cannot tell which gVisor release {runtime.path} is "
                           f"({version or 'could not run it here'}); {minimum} or later is tested")
    if release < RUNSC_MINIMUM:
        return EngineCheck(runtime.name, "warn",
                           f"gVisor {release_text(release)} is older than {minimum}, the oldest "
                           "release paracle-guard is tested with; gVisor fixes bugs only in "
                           "new releases, so upgrade runsc")
    return EngineCheck(runtime.name, "ok", f"gVisor {release_text(release)} (at least {minimum})")


def probed_runtimes(runtimes: list[Runtime], wanted: RuntimeControl) -> list[str]:
    """What ``--probe`` runs: the policy's registered runtimes, else every sandboxed one."""
    if wanted.allowed:
        return [r.name for r in runtimes if r.name in wanted.allowed]
    return [r.name for r in runtimes if r.sandbox]


def diagnose(
    engine: ContainerEngine | None = None,
    *,
    runtime: RuntimeControl | None = None,
    policy_name: str | None = None,
    probe: bool = False,
) -> Diagnosis:
    """Ask the engine (or a fresh connection) and assess it; unreachable is one failed check."""
    subject = f"policy {policy_name}" if policy_name else "the default policy"
    try:
        if engine is None:
            with Engine.connect() as fresh:
                return diagnose(fresh, runtime=runtime, policy_name=policy_name, probe=probe)
        version = engine.version()
        info = engine.info(timeout=INFO_SECONDS)
    except GuardError as error:
        return Diagnosis([EngineCheck("engine", "fail", str(error))], subject)
    except Exception as error:  # the SDK's many failures: all mean "cannot ask the engine"
        detail = f"cannot query the Docker Engine at {engine_host()}: {error}"
        return Diagnosis([EngineCheck("engine", "fail", detail)], subject)
    runtimes = engine_runtimes(info)
    from paracle_guard.sources.container import engine_is_local

    # A runtime's binary is on the engine's host: only a local engine's can be asked.
    versions = ({r.name: runtime_version(r.path) for r in runtimes if r.sandbox}
                if engine_is_local(engine.host) else {})
    checks = [*assess(version, info, engine.host, runtime=runtime, versions=versions),
              _guard(info)]
    if probe:
        wanted = runtime or RuntimeControl()
        names = probed_runtimes(runtimes, wanted)
        for name in names:
            outcome = probe_runtime(engine, name)
            checks.append(EngineCheck(f"probe {name}", "ok" if outcome.works else "fail",
                                      outcome.detail))
        if not names:
            checks.append(EngineCheck("probe", "info", "nothing to run: "
                                      + ("none of the policy's runtimes is registered"
                                         if wanted.allowed
                                         else "no sandboxed runtime is registered")))
    return Diagnosis(checks, subject)


def _guard(info: Mapping[str, Any]) -> EngineCheck:
    """Whether the engine enforces the policy for every client (paracle-guard authz serve)."""
    from paracle_guard.authz.status import authorization_plugins, guard_check, probe

    status, detail = guard_check(info, [probe(name) for name in authorization_plugins(info)])
    return EngineCheck("guard", status, detail)
