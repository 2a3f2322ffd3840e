"""Builders for container and compose Subjects, so run-time rule tests read like their case.

``hardened(**changes)`` is a RuntimeConfig that passes every run-time rule under
the default policy; a test changes one thing and asserts the one rule that fires.
"""

from __future__ import annotations

from typing import Any

from paracle_guard.location import Location
from paracle_guard.sources.runtime_options import parse_security_opt
from paracle_guard.subject import Subject, SubjectKind, UserFact
from paracle_guard.subject_runtime import Capability, Mount, RuntimeConfig, SecurityOption
from paracle_guard.units import parse_size

COMPOSE_FILE = "compose.yaml"


def at(line: int) -> Location:
    """A compose location: the key or item at ``line``."""
    return Location(path=COMPOSE_FILE, line=line)


def cap(name: str, line: int = 10) -> Capability:
    return Capability(name=name.upper().removeprefix("CAP_"), raw=name, location=at(line))


def opt(raw: str, key: str, value: str, line: int = 11) -> SecurityOption:
    return SecurityOption(raw=raw, key=key, value=value, location=at(line))


NNP_TRUE = opt("no-new-privileges:true", "no-new-privileges", "true")


def options(*raws: str) -> list[SecurityOption]:
    """Security options parsed the way the sources parse them, one line each."""
    parsed = []
    for line, raw in enumerate(raws, start=20):
        key, value = parse_security_opt(raw)
        parsed.append(SecurityOption(raw=raw, key=key, value=value, location=at(line)))
    return parsed


def tmpfs(target: str, line: int = 12, **extra: Any) -> Mount:
    return Mount(type="tmpfs", target=target, options=["rw", "noexec", "nosuid", "nodev"],
                 location=at(line), **extra)


def hardened(**changes: Any) -> RuntimeConfig:
    values: dict[str, Any] = {
        "location": at(2),
        "user": "1000:1000",
        "read_only": True,
        "cap_drop": [cap("ALL")],
        "security_opt": [opt("no-new-privileges:true", "no-new-privileges", "true")],
        "network_mode": "none",
        "ipc_mode": "none",
        "cgroupns_mode": "private",
        "mounts": [tmpfs("/tmp"), tmpfs("/workspace", line=13)],
        "memory": parse_size("512m"),
        "memory_swap": parse_size("512m"),
        "cpus": 1.0,
        "pids_limit": 256,
    }
    values.update(changes)
    return RuntimeConfig(**values)


def subject(runtime: RuntimeConfig | None = None, *, kind: SubjectKind = "compose",
            user: UserFact | None = None, **facts: Any) -> Subject:
    config = runtime if runtime is not None else hardened()
    if user is None:
        user = UserFact(spec="1000:1000", uid=1000, gid=1000, location=at(3))
    return Subject(kind=kind, target=f"{COMPOSE_FILE}#sandbox", runtime=config, user=user,
                   **facts)
