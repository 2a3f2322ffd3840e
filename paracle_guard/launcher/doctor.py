"""``paracle-guard doctor``: can this engine enforce the default policy?

``assess`` is pure: it judges the engine's ``/version`` and ``/info`` documents,
so every verdict is testable without an engine. A ``fail`` means a launch under
the built-in ``sandbox`` policy would be refused or could not hold (a limit the
kernel cannot enforce, an API too old to ask for a private cgroup namespace);
a ``warn`` is worth fixing but does not stop a launch; ``info`` is context.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

from paracle_guard.docker_client import Engine, engine_host
from paracle_guard.errors import GuardError

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
class Check:
    name: str
    status: Status
    detail: str


@dataclass(frozen=True)
class Diagnosis:
    checks: list[Check]

    @property
    def ok(self) -> bool:
        return not any(check.status == "fail" for check in self.checks)

    def render_text(self) -> str:
        width = max(len(check.name) for check in self.checks)
        lines = [f"{c.status:<5} {c.name:<{width}}  {c.detail}" for c in self.checks]
        failures = [c.name for c in self.checks if c.status == "fail"]
        warnings = sum(1 for c in self.checks if c.status == "warn")
        if failures:
            lines.append(f"paracle-guard doctor: this engine cannot enforce the default "
                         f"policy ({', '.join(failures)})")
        else:
            lines.append("paracle-guard doctor: this engine can enforce the default policy"
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


def assess(version: Mapping[str, Any], info: Mapping[str, Any], host: str) -> list[Check]:
    """Every check of an engine, from its /version and /info documents."""
    checks: list[Check] = []
    engine_version = str(version.get("Version") or "unknown")
    api = str(version.get("ApiVersion") or "")
    platform = f"{version.get('Os') or '?'}/{version.get('Arch') or '?'}"
    checks.append(Check("engine", "ok",
                        f"reachable at {host}: Docker Engine {engine_version}, API {api or '?'}, "
                        f"{platform}, kernel {version.get('KernelVersion') or '?'}"))

    api_tuple = version_tuple(api)
    if api_tuple is None or api_tuple < MIN_API:
        checks.append(Check("api", "fail", f"API {api or 'unknown'} is older than "
                            f"{'.'.join(map(str, MIN_API))}: a private cgroup namespace cannot "
                            "be asked for"))
    if str(version.get("Os") or "linux") != "linux":
        checks.append(Check("os", "fail", f"the engine runs {version.get('Os')} containers; "
                            "the sandbox controls are Linux ones"))

    runtime = str(info.get("DefaultRuntime") or "runc")
    checks.append(Check("runtime", "info", f"default runtime {runtime}"))
    runc = _component(version, "runc") or str((info.get("RuncCommit") or {}).get("ID") or "")
    runc_tuple = version_tuple(runc) if runc else None
    if runc_tuple is None:
        checks.append(Check("runc", "warn",
                            f"cannot tell the runc version ({runc or 'not reported'}); "
                            "runc 1.1.12 or later fixes CVE-2024-21626"))
    elif runc_tuple < RUNC_FIXED:
        checks.append(Check("runc", "warn",
                            f"runc {runc} is older than 1.1.12, which fixes CVE-2024-21626 "
                            "(container breakout through a working directory under "
                            "/proc/self/fd); upgrade, or confirm your distribution backported "
                            "the fix"))
    else:
        checks.append(Check("runc", "ok", f"runc {runc} (CVE-2024-21626 fixed)"))

    init = _component(version, "docker-init")
    if init:
        checks.append(Check("init", "ok", f"docker-init {init} (the sandbox's init process)"))
    else:
        checks.append(Check("init", "warn", "the engine does not report docker-init; "
                            "launches ask for an init process and fail to start without one"))

    cgroup = str(info.get("CgroupVersion") or "?")
    checks.append(Check("cgroup", "info",
                        f"cgroup v{cgroup}, driver {info.get('CgroupDriver') or '?'}"))
    missing = [what for key, what in LIMIT_FEATURES.items() if info.get(key) is False]
    if missing:
        checks.append(Check("limits", "fail", "the kernel cannot enforce: " + ", ".join(missing)))
    else:
        checks.append(Check("limits", "ok", "memory, swap, pids and CPU limits are enforced"))

    security = _security_options(info)
    if "seccomp" in security:
        profile = security["seccomp"].get("profile", "default")
        checks.append(Check("seccomp", "ok", f"active (profile {profile})"))
    else:
        checks.append(Check("seccomp", "warn", "not active: containers run without a "
                            "system-call filter"))
    checks.append(Check("apparmor", "info", "active" if "apparmor" in security else "not active"))
    if "selinux" in security:
        checks.append(Check("selinux", "info", "active"))
    checks.append(Check("userns-remap", "info", "on (container root maps to an unprivileged "
                        "host uid)" if "userns" in security else "off"))
    checks.append(Check("rootless", "info", "on (the engine itself runs unprivileged)"
                        if "rootless" in security else "off"))
    checks.append(_host_proof(host, rootless="rootless" in security))
    return checks


def _host_proof(host: str, *, rootless: bool) -> Check:
    """Whether `run` can prove containers from this host, as it insists on doing."""
    from paracle_guard.sources.container import engine_is_local

    if not engine_is_local(host):
        return Check("host-proof", "fail", f"the engine at {host} is not on this machine: run "
                     "refuses, since it proves each container's mounts from the host's /proc")
    if rootless:
        return Check("host-proof", "warn", "a rootless engine: run proves containers through "
                     "/proc only if their processes are visible here, and refuses otherwise")
    return Check("host-proof", "ok", "run proves each container from this host "
                 "(/proc/PID/mountinfo; bind inodes through /proc/PID/root, which needs root)")


def diagnose(engine: Engine | None = None) -> Diagnosis:
    """Ask the engine (or a fresh connection) and assess it; unreachable is one failed check."""
    try:
        if engine is None:
            with Engine.connect() as fresh:
                return diagnose(fresh)
        version = engine.client.api.version()
        info = engine.client.api.info()
    except GuardError as error:
        return Diagnosis([Check("engine", "fail", str(error))])
    except Exception as error:  # the SDK's many failures: all mean "cannot ask the engine"
        return Diagnosis([Check("engine", "fail",
                                f"cannot query the Docker Engine at {engine_host()}: {error}")])
    return Diagnosis([*assess(version, info, engine.host), _guard(info)])


def _guard(info: Mapping[str, Any]) -> Check:
    """Whether the engine enforces the policy for every client (paracle-guard authz serve)."""
    from paracle_guard.authz.status import authorization_plugins, guard_check, probe

    status, detail = guard_check(info, [probe(name) for name in authorization_plugins(info)])
    return Check("guard", status, detail)
