"""A container's inspect document read field by field into the Subject's facts.

``InspectedContainer`` reads what the engine stored (``HostConfig``, ``Config``,
``Mounts``, ``NetworkSettings``) and the image's inspect into the run-time
configuration, the user, the environment and the metadata;
``container.subject_from_inspect`` puts them together. The ``as_*`` readers
take a field as the engine's JSON gives it and fall back to the empty value
when a hand-made document gives something else.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from paracle_guard.location import Location
from paracle_guard.sources.account_files import AccountFile
from paracle_guard.sources.identity import resolve, user_fact
from paracle_guard.sources.runtime_options import (
    CORE_MASKED_PATHS,
    CORE_READONLY_PATHS,
    differing_realpath,
    local_volume_host_path,
    normalise_capability,
    normalise_host_path,
    parse_security_opt,
    split_key_value,
)
from paracle_guard.sources.seccomp_profile import profile_weakness
from paracle_guard.subject import EnvVar, ParseProblem, UserFact
from paracle_guard.subject_runtime import (
    Capability,
    Device,
    DeviceRequest,
    Mount,
    PublishedPort,
    RuntimeConfig,
    SecurityOption,
    Setting,
    Sysctl,
    Ulimit,
    mount_type,
)

_DEFAULT_CPU_PERIOD = 100_000  # microseconds, the kernel's and the engine's default
# The real path of a host path this process cannot resolve: the rules cannot tell where
# the mount leads, so the container is a parse problem (refused, as anything unreadable).
UNRESOLVABLE = ""


def _at(hint: str) -> Location:
    return Location(path=hint)


def as_dict(value: object) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}


def as_list(value: object) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else []


def as_int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def as_text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _key_hint(field: str, key: str) -> str:
    return f"{field}[{key!r}]" if not re.fullmatch(r"[A-Za-z0-9_.-]+", key) else f"{field}.{key}"


# Where each run-time setting is read in the inspect document.
_FIELD_HINTS = {
        "user": "Config.User",
        "workdir": "Config.WorkingDir",
        "read_only": "HostConfig.ReadonlyRootfs",
        "privileged": "HostConfig.Privileged",
        "cap_add": "HostConfig.CapAdd",
        "cap_drop": "HostConfig.CapDrop",
        "security_opt": "HostConfig.SecurityOpt",
        "unmasked_system_paths": "HostConfig.MaskedPaths",
        "pid_mode": "HostConfig.PidMode",
        "ipc_mode": "HostConfig.IpcMode",
        "uts_mode": "HostConfig.UTSMode",
        "userns_mode": "HostConfig.UsernsMode",
        "cgroupns_mode": "HostConfig.CgroupnsMode",
        "network_mode": "HostConfig.NetworkMode",
        "networks": "NetworkSettings.Networks",
        "mounts": "Mounts",
        "volumes_from": "HostConfig.VolumesFrom",
        "devices": "HostConfig.Devices",
        "device_requests": "HostConfig.DeviceRequests",
        "device_cgroup_rules": "HostConfig.DeviceCgroupRules",
        "sysctls": "HostConfig.Sysctls",
        "ports": "HostConfig.PortBindings",
        "memory": "HostConfig.Memory",
        "memory_swap": "HostConfig.MemorySwap",
        "cpus": "HostConfig.NanoCpus",
        "pids_limit": "HostConfig.PidsLimit",
        "shm_size": "HostConfig.ShmSize",
        "ulimits": "HostConfig.Ulimits",
        "restart_policy": "HostConfig.RestartPolicy",
        "oci_runtime": "HostConfig.Runtime",
    }


class InspectedContainer:
    """One container's inspect document (and its image's), read into facts."""

    def __init__(
        self,
        container: Mapping[str, Any],
        image: Mapping[str, Any] | None,
        target: str,
        volumes: Mapping[str, Mapping[str, Any]],
        realpaths: Mapping[str, str],
    ) -> None:
        self.container = container
        self.image = image
        self.target = target
        self.host = as_dict(container.get("HostConfig"))
        self.config = as_dict(container.get("Config"))
        self.image_config = as_dict(image.get("Config")) if image is not None else None
        self.volumes = volumes
        self.realpaths = realpaths
        self.problems: list[ParseProblem] = []

    def runtime(self) -> RuntimeConfig:
        host = self.host
        privileged = host.get("Privileged") is True
        memory = as_int(host.get("Memory"))
        pids = as_int(host.get("PidsLimit"))
        swap = as_int(host.get("MemorySwap"))
        restart = as_dict(host.get("RestartPolicy"))
        return RuntimeConfig(
            location=Location(path=self.target),
            locations=self._locations(),
            user=self._user_spec() or None,
            read_only=host.get("ReadonlyRootfs") is True,
            privileged=privileged,
            cap_add=self._capabilities("HostConfig.CapAdd", host.get("CapAdd")),
            cap_drop=self._capabilities("HostConfig.CapDrop", host.get("CapDrop")),
            security_opt=self._security_options(),
            unmasked_system_paths=[] if privileged else self._unmasked_paths(),
            pid_mode=as_text(host.get("PidMode")),
            ipc_mode=as_text(host.get("IpcMode")),
            uts_mode=as_text(host.get("UTSMode")),
            userns_mode=as_text(host.get("UsernsMode")),
            cgroupns_mode=as_text(host.get("CgroupnsMode")),
            network_mode=as_text(host.get("NetworkMode")),
            networks=self._networks(),
            mounts=self._mounts(),
            volumes_from=[
                Setting(value=str(item), location=_at(f"HostConfig.VolumesFrom[{index}]"))
                for index, item in enumerate(as_list(host.get("VolumesFrom")))
            ],
            devices=self._devices(),
            device_requests=self._device_requests(),
            device_cgroup_rules=[
                Setting(value=str(rule), location=_at(f"HostConfig.DeviceCgroupRules[{index}]"))
                for index, rule in enumerate(as_list(host.get("DeviceCgroupRules")))
            ],
            sysctls=[
                Sysctl(name=str(name), value=str(value),
                       location=_at(_key_hint("HostConfig.Sysctls", str(name))))
                for name, value in sorted(as_dict(host.get("Sysctls")).items())
            ],
            ports=self._ports(),
            publish_all_ports=host.get("PublishAllPorts") is True,
            memory=memory if memory > 0 else None,
            # 0 is "not set"; with a memory limit the engine has already stored 2x here.
            memory_swap=swap if swap != 0 else None,
            cpus=self._cpus(),
            # The engine's 0 and -1 both mean unlimited.
            pids_limit=pids if pids > 0 else None,
            shm_size=as_int(host.get("ShmSize")) or None,
            ulimits=self._ulimits(),
            restart_policy=as_text(restart.get("Name")) or None,
            # The engine stores its default runtime's name at create time, so a
            # created container always names one; only a hand-made document may not.
            oci_runtime=as_text(host.get("Runtime")) or None,
        )

    def _locations(self) -> dict[str, Location]:
        locations = {name: _at(hint) for name, hint in _FIELD_HINTS.items()}
        if not as_int(self.host.get("NanoCpus")) and as_int(self.host.get("CpuQuota")) > 0:
            locations["cpus"] = _at("HostConfig.CpuQuota")
        if self.image_config is not None and not as_text(self.config.get("User")):
            locations["user"] = _at("Image.Config.User")
        return locations

    def _user_spec(self) -> str:
        # The engine copies the image's USER into Config.User at create time; the image
        # is only the fallback for documents that did not go through the engine.
        own = as_text(self.config.get("User"))
        if own or self.image_config is None:
            return own
        return as_text(self.image_config.get("User"))

    def user(self, passwd: AccountFile, group: AccountFile, *,
             files_unseen: bool = False) -> UserFact:
        """The user the container's process runs as, resolved as the engine resolves it."""
        spec = self._user_spec()
        own = as_text(self.config.get("User"))
        location = _at("Config.User" if own or self.image_config is None else
                       "Image.Config.User")
        group_add = [str(item) for item in as_list(self.host.get("GroupAdd"))]
        identity = resolve(spec, passwd, group, group_add=group_add, what="the container's")
        platform = as_text(self.container.get("Platform")) or (
            as_text(self.image.get("Os")) if self.image is not None else "")
        fact = user_fact(spec, identity, location, windows=platform == "windows",
                         image_unseen=files_unseen)
        if files_unseen:
            fact.groups_unresolved_reason = None
        for grant in fact.groups:
            if grant.via == "--group-add":
                grant.location = _at("HostConfig.GroupAdd")
        return fact

    def _capabilities(self, field: str, raw: object) -> list[Capability]:
        return [
            Capability(name=normalise_capability(str(item)), raw=str(item),
                       location=_at(f"{field}[{index}]"))
            for index, item in enumerate(as_list(raw))
        ]

    def _security_options(self) -> list[SecurityOption]:
        options = []
        for index, item in enumerate(as_list(self.host.get("SecurityOpt"))):
            where = _at(f"HostConfig.SecurityOpt[{index}]")
            try:
                key, value = parse_security_opt(str(item))
            except ValueError as exc:
                # The engine never stores an option it refuses; a document that holds
                # one was not made by an engine, and nothing in it can be trusted.
                self.problems.append(ParseProblem(message=str(exc), location=where))
                continue
            # The engine holds a custom seccomp profile's JSON itself (clients read the file).
            weakness = profile_weakness(value) if key == "seccomp" else None
            options.append(SecurityOption(raw=str(item), key=key, value=value, location=where,
                                          weakness=weakness))
        return options

    def _unmasked_paths(self) -> list[str]:
        # The engine stores its default lists at create time; an explicitly empty or
        # shortened list (docker run --security-opt systempaths=unconfined) unmasks.
        unmasked: list[str] = []
        for field, defaults in (("MaskedPaths", CORE_MASKED_PATHS),
                                ("ReadonlyPaths", CORE_READONLY_PATHS)):
            listed = self.host.get(field)
            if listed is None:
                continue
            present = {str(path) for path in as_list(listed)}
            unmasked.extend(path for path in defaults if path not in present)
        return unmasked

    def _networks(self) -> list[Setting]:
        settings = as_dict(self.container.get("NetworkSettings"))
        return [
            Setting(value=str(name), location=_at(_key_hint("NetworkSettings.Networks", str(name))))
            for name in sorted(as_dict(settings.get("Networks")))
        ]

    def _declared_targets(self) -> set[str]:
        """Mount targets the user asked for (binds, --mount, --tmpfs), not the image."""
        targets = set()
        for bind in as_list(self.host.get("Binds")):
            parts = str(bind).split(":")
            if len(parts) >= 2:
                targets.add(normalise_host_path(parts[1]))
        for mount in as_list(self.host.get("Mounts")):
            target = as_text(as_dict(mount).get("Target"))
            if target:
                targets.add(normalise_host_path(target))
        targets.update(normalise_host_path(str(path)) for path in as_dict(self.host.get("Tmpfs")))
        return targets

    def _mounts(self) -> list[Mount]:
        declared = self._declared_targets()
        anonymous_paths = {normalise_host_path(str(p)) for p in as_dict(self.config.get("Volumes"))}
        image_paths = (
            {normalise_host_path(str(p)) for p in as_dict(self.image_config.get("Volumes"))}
            if self.image_config is not None else None
        )
        mounts = []
        for index, raw in enumerate(as_list(self.container.get("Mounts"))):
            entry = as_dict(raw)
            named = as_text(entry.get("Type")) or "volume"
            where = _at(f"Mounts[{index}]")
            kind = mount_type(named)
            if kind is None:
                self.problems.append(ParseProblem(message=f"unknown mount type {named!r}",
                                                  location=where))
                continue
            target = as_text(entry.get("Destination"))
            read_only = entry.get("RW") is False
            mount = Mount(type=kind, target=target, read_only=read_only, location=where)
            mode = as_text(entry.get("Mode"))
            mount.options = [part for part in mode.split(",") if part]
            if kind in ("bind", "npipe"):
                mount.source = as_text(entry.get("Source"))
                mount.host_path = mount.source
            elif kind == "volume":
                name = as_text(entry.get("Name"))
                mount.source = name
                mount.volume_driver = as_text(entry.get("Driver")) or None
                normal = normalise_host_path(target)
                mount.anonymous = normal in anonymous_paths and normal not in declared
                # Without the image's inspect an anonymous volume cannot be pinned on a
                # docker run -v /path: take it for the image's, the stricter reading.
                mount.from_image = mount.anonymous and (
                    image_paths is None or normal in image_paths)
                volume = self.volumes.get(name)
                if volume is not None:
                    options = {str(k): str(v) for k, v in as_dict(volume.get("Options")).items()}
                    mount.volume_options = options
                    driver = as_text(volume.get("Driver")) or mount.volume_driver
                    if driver == "local":
                        mount.host_path = local_volume_host_path(options)
            mounts.append(self._with_realpath(mount))
        for path, options in sorted(as_dict(self.host.get("Tmpfs")).items()):
            flags = [part for part in str(options).split(",") if part]
            where = _at(_key_hint("HostConfig.Tmpfs", str(path)))
            mounts.append(Mount(type="tmpfs", target=str(path), read_only="ro" in flags,
                                options=flags, location=where))
        return mounts

    def _with_realpath(self, mount: Mount) -> Mount:
        if mount.host_path is None or mount.type == "npipe":
            return mount
        real = self.realpaths.get(mount.host_path)
        if real == UNRESOLVABLE:
            self.problems.append(ParseProblem(
                message=f"host path {mount.host_path} cannot be resolved on this host: where "
                        f"the mount at {mount.target} leads cannot be told",
                location=mount.location))
            return mount
        mount.host_realpath = differing_realpath(mount.host_path, real)
        return mount

    def _devices(self) -> list[Device]:
        devices = []
        for index, raw in enumerate(as_list(self.host.get("Devices"))):
            entry = as_dict(raw)
            host_path = as_text(entry.get("PathOnHost"))
            devices.append(Device(
                host_path=host_path,
                container_path=as_text(entry.get("PathInContainer")) or host_path,
                permissions=as_text(entry.get("CgroupPermissions")) or "rwm",
                location=_at(f"HostConfig.Devices[{index}]"),
            ))
        return devices

    def _device_requests(self) -> list[DeviceRequest]:
        requests = []
        for index, raw in enumerate(as_list(self.host.get("DeviceRequests"))):
            entry = as_dict(raw)
            requests.append(DeviceRequest(
                driver=as_text(entry.get("Driver")),
                count=entry.get("Count") if isinstance(entry.get("Count"), int) else None,
                device_ids=[str(i) for i in as_list(entry.get("DeviceIDs"))],
                capabilities=[str(c) for group in as_list(entry.get("Capabilities"))
                              for c in as_list(group)],
                location=_at(f"HostConfig.DeviceRequests[{index}]"),
            ))
        return requests

    def _ports(self) -> list[PublishedPort]:
        ports = []
        for key, bindings in sorted(as_dict(self.host.get("PortBindings")).items()):
            number, _, protocol = str(key).partition("/")
            where = _at(_key_hint("HostConfig.PortBindings", str(key)))
            # A port key with no binding still asks the engine to publish it, on a
            # port of its choosing: count it rather than guess it away.
            for binding in as_list(bindings) or [{}]:
                entry = as_dict(binding)
                ports.append(PublishedPort(
                    container_port=number, protocol=protocol or "tcp",
                    host_ip=as_text(entry.get("HostIp")), host_port=as_text(entry.get("HostPort")),
                    location=where,
                ))
        return ports

    def _cpus(self) -> float | None:
        nano = as_int(self.host.get("NanoCpus"))
        if nano > 0:
            return nano / 1e9
        quota = as_int(self.host.get("CpuQuota"))
        if quota > 0:
            return quota / (as_int(self.host.get("CpuPeriod")) or _DEFAULT_CPU_PERIOD)
        return None

    def _ulimits(self) -> list[Ulimit]:
        limits = []
        for index, raw in enumerate(as_list(self.host.get("Ulimits"))):
            entry = as_dict(raw)
            limits.append(Ulimit(name=as_text(entry.get("Name")), soft=as_int(entry.get("Soft")),
                                 hard=as_int(entry.get("Hard")),
                                 location=_at(f"HostConfig.Ulimits[{index}]")))
        return limits

    def env(self) -> list[EnvVar]:
        inherited = (
            {str(item) for item in as_list(self.image_config.get("Env"))}
            if self.image_config is not None else set()
        )
        variables = []
        for index, item in enumerate(as_list(self.config.get("Env"))):
            name, value = split_key_value(str(item))
            if not name:
                continue
            variables.append(EnvVar(
                name=name, value=value,
                origin="config" if str(item) in inherited else "runtime",
                location=_at(f"Config.Env[{index}]"),
            ))
        return variables

    def metadata(self) -> dict[str, str | list[str]]:
        state = as_dict(self.container.get("State"))
        data: dict[str, str | list[str]] = {
            "id": as_text(self.container.get("Id")),
            "name": as_text(self.container.get("Name")).lstrip("/"),
            "state": as_text(state.get("Status")),
            "image_id": as_text(self.container.get("Image")),
            "image": as_text(self.config.get("Image")),
        }
        if self.image is not None:
            data["image_tags"] = [str(tag) for tag in as_list(self.image.get("RepoTags"))]
            data["image_digests"] = [str(d) for d in as_list(self.image.get("RepoDigests"))]
        return data
