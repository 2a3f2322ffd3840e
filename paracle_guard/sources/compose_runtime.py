"""A Compose service's keys read into its run-time configuration.

``ServiceRuntimeReader`` holds one service of a loaded project (its merged,
prepared node) and reads the keys ``docker compose up`` turns into the
container's HostConfig: user, read_only, privileged, capabilities,
security_opt, namespaces, networks, mounts, devices, sysctls, ports,
resources, ulimits, restart and runtime. ``compose._ServiceReader`` adds the
user, environment, images and metadata.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable

from paracle_guard.location import Location
from paracle_guard.sources.compose_engine import EngineDefaults
from paracle_guard.sources.compose_merge import prepared
from paracle_guard.sources.compose_mounts import MountReader
from paracle_guard.sources.compose_project import Project
from paracle_guard.sources.compose_values import boolean as _bool
from paracle_guard.sources.compose_values import check_service_keys, expand_user
from paracle_guard.sources.compose_values import integer as _int
from paracle_guard.sources.compose_values import location as _location
from paracle_guard.sources.compose_values import mapping as _mapping
from paracle_guard.sources.compose_values import number as _float
from paracle_guard.sources.compose_values import pairs as _pairs
from paracle_guard.sources.compose_values import port as _port_spec
from paracle_guard.sources.compose_values import sequence as _sequence
from paracle_guard.sources.compose_values import size as _size
from paracle_guard.sources.compose_values import text as _text
from paracle_guard.sources.located_yaml import Node
from paracle_guard.sources.runtime_options import (
    SYSTEM_PATHS,
    normalise_capability,
    parse_security_opt,
)
from paracle_guard.sources.seccomp_profile import profile_weakness
from paracle_guard.subject_runtime import (
    Capability,
    Device,
    DeviceRequest,
    PublishedPort,
    RuntimeConfig,
    SecurityOption,
    Setting,
    Sysctl,
    Ulimit,
)

# A seccomp profile is a few tens of KiB (the engine's default is about 20); anything
# far larger is not a profile this reader should hold in memory.
SECCOMP_PROFILE_LIMIT = 4 << 20
_RESTART_CONDITIONS = {"none": "no", "on-failure": "on-failure", "any": "always"}


class ServiceRuntimeReader:
    """One service's keys, and the RuntimeConfig they make."""

    def __init__(self, project: Project, name: str, node: Node,
                 defaults: Callable[[], EngineDefaults]) -> None:
        self.project = project
        self.name = name
        self.node = prepared(node)
        check_service_keys(self.node)
        self.keys = _mapping(self.node)
        self.defaults = defaults
        self.locations: dict[str, Location] = {}
        self.notices: list[str] = list(project.files.notices)

    def _get(self, *path: str) -> Node | None:
        node: Node | None = self.node
        for key in path:
            if node is None or node.value is None:
                return None
            node = _mapping(node).get(key)
        return node if node is not None and node.value is not None else None

    def _items(self, key: str) -> list[Node]:
        node = self._get(key)
        return _sequence(node) if node is not None else []

    def _mark(self, field: str, node: Node) -> None:
        self.locations[field] = _location(node)

    def runtime(self) -> RuntimeConfig:
        config = RuntimeConfig(location=_location(self.node))
        for key in ("user", "working_dir"):
            node = self._get(key)
            if node is not None:
                self._mark("workdir" if key == "working_dir" else key, node)
                if key == "user":
                    config.user = _text(node)
        for key, field in (("read_only", "read_only"), ("privileged", "privileged")):
            node = self._get(key)
            if node is not None:
                setattr(config, field, _bool(node))
                self._mark(field, node)
        config.cap_add = self._capabilities("cap_add")
        config.cap_drop = self._capabilities("cap_drop")
        config.security_opt = self._security_options()
        if any(o.key == "systempaths" and o.value == "unconfined" for o in config.security_opt):
            config.unmasked_system_paths = list(SYSTEM_PATHS)
            self.locations["unmasked_system_paths"] = next(
                o.location for o in reversed(config.security_opt) if o.key == "systempaths")
        self._namespaces(config)
        config.networks = self._networks(config.network_mode)
        mounts = MountReader(self.project, self.name, self.node).read()
        config.mounts, config.unresolved_mounts = mounts.mounts, mounts.unresolved
        volumes = self._get("volumes")
        if volumes is not None:
            self._mark("mounts", volumes)
        config.volumes_from = [
            Setting(value=_text(item), location=_location(item))
            for item in self._items("volumes_from")
        ]
        config.devices = self._devices()
        config.device_requests = self._device_requests()
        config.device_cgroup_rules = [
            Setting(value=_text(item), location=_location(item))
            for item in self._items("device_cgroup_rules")
        ]
        config.sysctls = self._sysctls()
        config.ports = self._ports()
        self._resources(config)
        config.ulimits = self._ulimits()
        config.restart_policy = self._restart()
        runtime = self._get("runtime")
        if runtime is not None:
            config.oci_runtime = _text(runtime) or None  # "": the engine's default
            self._mark("oci_runtime", runtime)
        config.locations = self.locations
        return config

    def _namespaces(self, config: RuntimeConfig) -> None:
        for key, field in (("pid", "pid_mode"), ("ipc", "ipc_mode"), ("uts", "uts_mode"),
                           ("userns_mode", "userns_mode"), ("cgroup", "cgroupns_mode"),
                           ("network_mode", "network_mode")):
            node = self._get(key)
            if node is not None:
                setattr(config, field, _text(node))
                self._mark(field, node)
        if self._get("cgroup") is None:
            self._engine_default_cgroup(config)

    def _sysctls(self) -> list[Sysctl]:
        sysctls = self._get("sysctls")
        if sysctls is None:
            return []
        self._mark("sysctls", sysctls)
        return [Sysctl(name=name, value=value or "", location=_location(node))
                for name, value, node in _pairs(sysctls)]

    def _capabilities(self, key: str) -> list[Capability]:
        node = self._get(key)
        if node is None:
            return []
        self._mark(key, node)
        return [
            Capability(name=normalise_capability(_text(item)), raw=_text(item),
                       location=_location(item))
            for item in _sequence(node)
        ]

    def _security_options(self) -> list[SecurityOption]:
        node = self._get("security_opt")
        if node is None:
            return []
        self._mark("security_opt", node)
        options = []
        for item in _sequence(node):
            raw = _text(item)
            try:
                key, value = parse_security_opt(raw)
            except ValueError as exc:
                raise item.error(str(exc)) from None
            weakness = self._seccomp_file_weakness(value) if key == "seccomp" else None
            options.append(SecurityOption(raw=raw, key=key, value=value,
                                          location=_location(item), weakness=weakness))
        return options

    def _seccomp_file_weakness(self, value: str) -> str | None:
        """How the profile file ``seccomp=FILE`` names is weaker than the engine's default.

        Compose reads the file itself and sends its JSON (compose ``parseSecurityOpts``,
        the path through compose-go ``Project.RelativePath``: ``~`` is the home folder,
        a relative path is joined to the project's working folder), so the engine
        judges the content, never the name.
        """
        if value in ("unconfined", "builtin"):
            return None
        path = expand_user(value)
        path = path if os.path.isabs(path) else os.path.join(self.project.files.folder, path)
        try:
            # Non-blocking: a FIFO or a device named here must not hang the scan.
            descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        except OSError as exc:
            return f"cannot be read here ({exc.strerror or exc}), so nothing says what it allows"
        with os.fdopen(descriptor, "rb") as profile:
            if not stat.S_ISREG(os.fstat(descriptor).st_mode):
                return "is not a regular file, so nothing says what it allows"
            content = profile.read(SECCOMP_PROFILE_LIMIT + 1)
        if len(content) > SECCOMP_PROFILE_LIMIT:
            return f"is over {SECCOMP_PROFILE_LIMIT} bytes, more than this reader reads"
        return profile_weakness(content.decode("utf-8", "surrogateescape"))

    def _networks(self, network_mode: str) -> list[Setting]:
        node = self._get("networks")
        if network_mode:
            if node is not None:
                raise node.error("network_mode and networks cannot both be set")
            return []
        if node is None:
            # Compose attaches a service to the project's "default" bridge network.
            return [Setting(value="default", location=_location(self.node))]
        self._mark("networks", node)
        if isinstance(node.value, dict):
            return [Setting(value=key, location=_location(value))
                    for key, value in node.value.items()]
        return [Setting(value=_text(item), location=_location(item)) for item in _sequence(node)]

    def _engine_default_cgroup(self, config: RuntimeConfig) -> None:
        defaults = self.defaults()
        config.cgroupns_mode = defaults.cgroupns_mode
        config.reasons["cgroupns_mode"] = defaults.reason
        if defaults.notice is not None and defaults.notice not in self.notices:
            self.notices.append(defaults.notice)

    # -- devices --

    def _devices(self) -> list[Device]:
        node = self._get("devices")
        if node is None:
            return []
        self._mark("devices", node)
        devices = []
        for item in _sequence(node):
            if isinstance(item.value, dict):
                spec = _mapping(item)
                if "source" not in spec:
                    raise item.error("a device needs a source")
                source = _text(spec["source"])
                devices.append(Device(
                    host_path=source,
                    container_path=_text(spec["target"]) if "target" in spec else source,
                    permissions=_text(spec["permissions"]) if "permissions" in spec else "rwm",
                    location=_location(item),
                ))
                continue
            text = _text(item)
            parts = text.split(":")
            if len(parts) > 3 or not parts[0]:
                raise item.error(f"invalid device {text!r}: expected HOST[:CONTAINER[:PERMS]]")
            devices.append(Device(
                host_path=parts[0],
                container_path=parts[1] if len(parts) > 1 and parts[1] else parts[0],
                permissions=parts[2] if len(parts) > 2 else "rwm",
                location=_location(item),
            ))
        return devices

    def _device_requests(self) -> list[DeviceRequest]:
        requests: list[DeviceRequest] = []
        gpus = self._get("gpus")
        if gpus is not None:
            self._mark("device_requests", gpus)
            if isinstance(gpus.value, str):
                if gpus.value != "all":
                    raise gpus.error(f"gpus must be 'all' or a list, got {gpus.value!r}")
                requests.append(DeviceRequest(count=-1, capabilities=["gpu"],
                                              location=_location(gpus)))
            else:
                requests.extend(self._device_request(item, ["gpu"]) for item in _sequence(gpus))
        reserved = self._get("deploy", "resources", "reservations", "devices")
        if reserved is not None:
            self.locations.setdefault("device_requests", _location(reserved))
            requests.extend(self._device_request(item, []) for item in _sequence(reserved))
        return requests

    def _device_request(self, item: Node, default_capabilities: list[str]) -> DeviceRequest:
        spec = _mapping(item)
        count: int | None = None
        if "count" in spec:
            count = -1 if spec["count"].value == "all" else _int(spec["count"])
        capabilities = default_capabilities
        if "capabilities" in spec:
            capabilities = []
            for entry in _sequence(spec["capabilities"]):
                if isinstance(entry.value, list):
                    capabilities.extend(_text(c) for c in _sequence(entry))
                else:
                    capabilities.append(_text(entry))
        return DeviceRequest(
            driver=_text(spec["driver"]) if "driver" in spec else "",
            count=count,
            device_ids=[_text(i) for i in _sequence(spec["device_ids"])]
            if "device_ids" in spec else [],
            capabilities=capabilities,
            location=_location(item),
        )

    # -- ports --

    def _ports(self) -> list[PublishedPort]:
        node = self._get("ports")
        if node is None:
            return []
        self._mark("ports", node)
        return [self._port(item) for item in _sequence(node)]

    def _port(self, item: Node) -> PublishedPort:
        container_port, protocol, host_ip, host_port = _port_spec(item)
        return PublishedPort(container_port=container_port, protocol=protocol, host_ip=host_ip,
                             host_port=host_port, location=_location(item))

    # -- resources --

    def _resources(self, config: RuntimeConfig) -> None:
        # Compose applies the service keys, then lets deploy.resources.limits override.
        for node in (self._get("mem_limit"), self._get("deploy", "resources", "limits", "memory")):
            if node is not None and _size(node) > 0:
                config.memory = _size(node)
                self._mark("memory", node)
        swap = self._get("memswap_limit")
        if swap is not None:
            config.memory_swap = -1 if swap.value in (-1, "-1") else _size(swap)
            self._mark("memory_swap", swap)
        quota, period = self._get("cpu_quota"), self._get("cpu_period")
        if quota is not None and _int(quota) > 0:
            config.cpus = _int(quota) / (_int(period) if period is not None and _int(period) > 0
                                         else 100_000)
            self._mark("cpus", quota)
        for node in (self._get("cpus"), self._get("deploy", "resources", "limits", "cpus")):
            if node is not None and _float(node) > 0:
                config.cpus = _float(node)
                self._mark("cpus", node)
        for node in (self._get("pids_limit"), self._get("deploy", "resources", "limits", "pids")):
            if node is not None:
                value = _int(node)
                config.pids_limit = value if value > 0 else None
                self._mark("pids_limit", node)
        shm = self._get("shm_size")
        if shm is not None:
            config.shm_size = _size(shm)
            self._mark("shm_size", shm)

    def _ulimits(self) -> list[Ulimit]:
        node = self._get("ulimits")
        if node is None:
            return []
        self._mark("ulimits", node)
        limits = []
        for name, value in _mapping(node).items():
            if isinstance(value.value, dict):
                spec = _mapping(value)
                if "soft" not in spec or "hard" not in spec:
                    raise value.error("a ulimit mapping needs soft and hard")
                soft, hard = _int(spec["soft"]), _int(spec["hard"])
            else:
                soft = hard = _int(value)
            limits.append(Ulimit(name=name, soft=soft, hard=hard, location=_location(value)))
        return limits

    def _restart(self) -> str | None:
        node = self._get("restart")
        if node is not None:
            self._mark("restart_policy", node)
            return _text(node).partition(":")[0]
        condition = self._get("deploy", "restart_policy", "condition")
        if condition is not None:
            self._mark("restart_policy", condition)
            return _RESTART_CONDITIONS.get(_text(condition), _text(condition))
        return None
