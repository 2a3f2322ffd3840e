"""What the checked host's engine fills in where a compose file says nothing.

Compose passes an absent ``cgroup:`` on as nothing, and the engine applies its
default cgroup namespace mode: the host's on cgroup v1, a private one on v2
(moby ``daemon/config/config_linux.go``), or whatever ``--default-cgroupns-mode``
set. ``docker info`` lists ``name=cgroupns`` among the security options exactly
when that default is private (moby ``daemon/info.go``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class EngineDefaults:
    """What the checked host's engine does with a setting a compose file leaves out."""

    cgroupns_mode: str  # "host" (the default on cgroup v1) or "private" (on v2)
    reason: str  # said in findings: where the value comes from
    notice: str | None = None  # said once: what was assumed, and how to say otherwise


ASSUMED_CGROUP_V1 = EngineDefaults(
    cgroupns_mode="host",
    reason="no cgroup: is set, and on a cgroup v1 host the engine's default is the host's "
           "cgroup namespace (assumed: no Docker Engine answered)",
    notice="no Docker Engine answered, so an absent cgroup: is read as on a cgroup v1 host "
           "(the host's cgroup namespace); --cgroup-version 2 says the hosts use cgroup v2",
)


def engine_defaults(cgroup_version: int) -> EngineDefaults:
    """The defaults of an engine on a host of the cgroup version the user gave."""
    if cgroup_version == 1:
        return EngineDefaults("host", "no cgroup: is set, and on a cgroup v1 host (as "
                                      "--cgroup-version says) the engine's default is the host's "
                                      "cgroup namespace")
    return EngineDefaults("private", "no cgroup: is set; on a cgroup v2 host (as "
                                     "--cgroup-version says) the engine's default is a private "
                                     "cgroup namespace")


def defaults_from_info(info: Mapping[str, object]) -> EngineDefaults:
    """The defaults ``docker info`` shows. The engine lists ``name=cgroupns`` among its
    security options exactly when its default cgroup namespace mode is private
    (moby ``daemon/info.go``), whatever the cgroup version or --default-cgroupns-mode."""
    options = info.get("SecurityOptions")
    listed = [str(o) for o in options] if isinstance(options, list) else []
    private = any(o == "name=cgroupns" or o.startswith("name=cgroupns,") for o in listed)
    version = info.get("CgroupVersion") or "unknown"
    if private:
        return EngineDefaults("private", "no cgroup: is set; the Docker Engine's default here "
                                         f"is a private cgroup namespace (cgroup v{version})")
    return EngineDefaults("host", "no cgroup: is set, and the Docker Engine's default here is "
                                  f"the host's cgroup namespace (cgroup v{version})")
