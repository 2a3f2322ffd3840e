"""Containers as Subjects, from ``docker inspect``.

``subject_from_inspect`` is pure: it turns the engine's inspect document of a
container (created or running), its image's inspect, and facts read elsewhere
(volume driver options, the container's /etc/passwd, real paths of host paths)
into a Subject of kind "container". ``load_containers`` gathers those facts
through ``docker_client`` and calls it; the launcher verifies what it creates
through the same function.

What the engine stores is taken as the truth, not what a client meant: the
engine fills in defaults at create time (swap twice the memory, the cgroup
namespace mode, masked paths), so a created container already shows what a
start would apply. Locations are hints into the inspect document
(``HostConfig.CapAdd[0]``), with no line.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from paracle_guard.errors import InputError
from paracle_guard.location import Location
from paracle_guard.sources.account_files import ABSENT, GROUP, PASSWD, AccountFile, unknown_file
from paracle_guard.sources.create_request import CreateDefaults, CreateRequest, create_document
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
from paracle_guard.subject import (
    Capability,
    Device,
    DeviceRequest,
    EnvVar,
    Mount,
    ParseProblem,
    PublishedPort,
    RuntimeConfig,
    SecurityOption,
    Setting,
    Subject,
    Sysctl,
    Ulimit,
    UserFact,
)

if TYPE_CHECKING:
    from paracle_guard.engine_protocol import ContainerEngine, ContainerReader

# Files read from a container to resolve a named user; bigger ones are not passwd files.
ACCOUNT_FILE_LIMIT = 1 << 20
_DEFAULT_CPU_PERIOD = 100_000  # microseconds, the kernel's and the engine's default
_MOUNT_TYPES = frozenset({"bind", "volume", "tmpfs", "npipe", "cluster", "image"})


def _at(hint: str) -> Location:
    return Location(path=hint)


def _dict(value: object) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}


def _list(value: object) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else []


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _key_hint(field: str, key: str) -> str:
    return f"{field}[{key!r}]" if not re.fullmatch(r"[A-Za-z0-9_.-]+", key) else f"{field}.{key}"


def subject_from_inspect(
    container: Mapping[str, Any],
    image: Mapping[str, Any] | None,
    *,
    target: str,
    volumes: Mapping[str, Mapping[str, Any]] | None = None,
    passwd: bytes | AccountFile | None = None,
    group: bytes | AccountFile | None = None,
    realpaths: Mapping[str, str] | None = None,
    engine_socket_gid: int | None = None,
) -> Subject:
    """The Subject for one container.

    ``image`` is the image's inspect (for the user and the VOLUMEs it declares);
    ``volumes`` maps volume names to their inspect (driver options decide whether a
    volume is really a bind); ``passwd``/``group`` are the container's account
    files as the engine finds them (bytes: a regular file with that content);
    ``realpaths`` maps host paths to their real path on the engine's host;
    ``engine_socket_gid`` is the group of the engine's socket on this host. Any of
    them may be missing: what depends on a file not read stays unproven, a volume
    stays a volume, a path is taken as written.
    """
    if not isinstance(container, Mapping) or not isinstance(container.get("HostConfig"), Mapping):
        raise InputError(f"{target}: not a container inspect document (no HostConfig)")
    builder = _ContainerSubjectBuilder(container, image, target, volumes or {}, realpaths or {})
    runtime = builder.runtime()
    runtime.engine_socket_gid = engine_socket_gid
    return Subject(
        kind="container",
        target=target,
        # No files given (a create request, judged before the container exists): names and
        # the groups of a user given no group are resolved when it starts, and judged then
        # (the authz plugin judges the start). Files that could not be read leave them
        # possibly root.
        user=builder.user(_account(passwd), _account(group),
                          files_unseen=passwd is None and group is None),
        env=builder.env(),
        workdir=_text(builder.config.get("WorkingDir")) or None,
        runtime=runtime,
        parse_problems=builder.problems,
        metadata=builder.metadata(),
    )


class _ContainerSubjectBuilder:
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
        self.host = _dict(container.get("HostConfig"))
        self.config = _dict(container.get("Config"))
        self.image_config = _dict(image.get("Config")) if image is not None else None
        self.volumes = volumes
        self.realpaths = realpaths
        self.problems: list[ParseProblem] = []

    def runtime(self) -> RuntimeConfig:
        host = self.host
        scalar_hints = {
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
        locations = {name: _at(hint) for name, hint in scalar_hints.items()}
        if not _int(host.get("NanoCpus")) and _int(host.get("CpuQuota")) > 0:
            locations["cpus"] = _at("HostConfig.CpuQuota")
        if self.image_config is not None and not _text(self.config.get("User")):
            locations["user"] = _at("Image.Config.User")
        privileged = host.get("Privileged") is True
        memory = _int(host.get("Memory"))
        pids = _int(host.get("PidsLimit"))
        swap = _int(host.get("MemorySwap"))
        restart = _dict(host.get("RestartPolicy"))
        return RuntimeConfig(
            location=Location(path=self.target),
            locations=locations,
            user=self._user_spec() or None,
            read_only=host.get("ReadonlyRootfs") is True,
            privileged=privileged,
            cap_add=self._capabilities("HostConfig.CapAdd", host.get("CapAdd")),
            cap_drop=self._capabilities("HostConfig.CapDrop", host.get("CapDrop")),
            security_opt=self._security_options(),
            unmasked_system_paths=[] if privileged else self._unmasked_paths(),
            pid_mode=_text(host.get("PidMode")),
            ipc_mode=_text(host.get("IpcMode")),
            uts_mode=_text(host.get("UTSMode")),
            userns_mode=_text(host.get("UsernsMode")),
            cgroupns_mode=_text(host.get("CgroupnsMode")),
            network_mode=_text(host.get("NetworkMode")),
            networks=self._networks(),
            mounts=self._mounts(),
            volumes_from=[
                Setting(value=str(item), location=_at(f"HostConfig.VolumesFrom[{index}]"))
                for index, item in enumerate(_list(host.get("VolumesFrom")))
            ],
            devices=self._devices(),
            device_requests=self._device_requests(),
            device_cgroup_rules=[
                Setting(value=str(rule), location=_at(f"HostConfig.DeviceCgroupRules[{index}]"))
                for index, rule in enumerate(_list(host.get("DeviceCgroupRules")))
            ],
            sysctls=[
                Sysctl(name=str(name), value=str(value),
                       location=_at(_key_hint("HostConfig.Sysctls", str(name))))
                for name, value in sorted(_dict(host.get("Sysctls")).items())
            ],
            ports=self._ports(),
            publish_all_ports=host.get("PublishAllPorts") is True,
            memory=memory if memory > 0 else None,
            # 0 is "not set"; with a memory limit the engine has already stored 2x here.
            memory_swap=swap if swap != 0 else None,
            cpus=self._cpus(),
            # The engine's 0 and -1 both mean unlimited.
            pids_limit=pids if pids > 0 else None,
            shm_size=_int(host.get("ShmSize")) or None,
            ulimits=self._ulimits(),
            restart_policy=_text(restart.get("Name")) or None,
            # The engine stores its default runtime's name at create time, so a
            # created container always names one; only a hand-made document may not.
            oci_runtime=_text(host.get("Runtime")) or None,
        )

    def _user_spec(self) -> str:
        # The engine copies the image's USER into Config.User at create time; the image
        # is only the fallback for documents that did not go through the engine.
        own = _text(self.config.get("User"))
        if own or self.image_config is None:
            return own
        return _text(self.image_config.get("User"))

    def user(self, passwd: AccountFile, group: AccountFile, *,
             files_unseen: bool = False) -> UserFact:
        """The user the container's process runs as, resolved as the engine resolves it."""
        spec = self._user_spec()
        own = _text(self.config.get("User"))
        location = _at("Config.User" if own or self.image_config is None else
                       "Image.Config.User")
        group_add = [str(item) for item in _list(self.host.get("GroupAdd"))]
        identity = resolve(spec, passwd, group, group_add=group_add, what="the container's")
        platform = _text(self.container.get("Platform")) or (
            _text(self.image.get("Os")) if self.image is not None else "")
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
            for index, item in enumerate(_list(raw))
        ]

    def _security_options(self) -> list[SecurityOption]:
        options = []
        for index, item in enumerate(_list(self.host.get("SecurityOpt"))):
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
            present = {str(path) for path in _list(listed)}
            unmasked.extend(path for path in defaults if path not in present)
        return unmasked

    def _networks(self) -> list[Setting]:
        settings = _dict(self.container.get("NetworkSettings"))
        return [
            Setting(value=str(name), location=_at(_key_hint("NetworkSettings.Networks", str(name))))
            for name in sorted(_dict(settings.get("Networks")))
        ]

    def _declared_targets(self) -> set[str]:
        """Mount targets the user asked for (binds, --mount, --tmpfs), not the image."""
        targets = set()
        for bind in _list(self.host.get("Binds")):
            parts = str(bind).split(":")
            if len(parts) >= 2:
                targets.add(normalise_host_path(parts[1]))
        for mount in _list(self.host.get("Mounts")):
            target = _text(_dict(mount).get("Target"))
            if target:
                targets.add(normalise_host_path(target))
        targets.update(normalise_host_path(str(path)) for path in _dict(self.host.get("Tmpfs")))
        return targets

    def _mounts(self) -> list[Mount]:
        declared = self._declared_targets()
        anonymous_paths = {normalise_host_path(str(p)) for p in _dict(self.config.get("Volumes"))}
        image_paths = (
            {normalise_host_path(str(p)) for p in _dict(self.image_config.get("Volumes"))}
            if self.image_config is not None else None
        )
        mounts = []
        for index, raw in enumerate(_list(self.container.get("Mounts"))):
            entry = _dict(raw)
            kind = _text(entry.get("Type")) or "volume"
            where = _at(f"Mounts[{index}]")
            if kind not in _MOUNT_TYPES:
                self.problems.append(ParseProblem(message=f"unknown mount type {kind!r}",
                                                  location=where))
                continue
            target = _text(entry.get("Destination"))
            read_only = entry.get("RW") is False
            mount = Mount(type=kind, target=target, read_only=read_only, location=where)
            mode = _text(entry.get("Mode"))
            mount.options = [part for part in mode.split(",") if part]
            if kind in ("bind", "npipe"):
                mount.source = _text(entry.get("Source"))
                mount.host_path = mount.source
            elif kind == "volume":
                name = _text(entry.get("Name"))
                mount.source = name
                mount.volume_driver = _text(entry.get("Driver")) or None
                normal = normalise_host_path(target)
                mount.anonymous = normal in anonymous_paths and normal not in declared
                # Without the image's inspect an anonymous volume cannot be pinned on a
                # docker run -v /path: take it for the image's, the stricter reading.
                mount.from_image = mount.anonymous and (
                    image_paths is None or normal in image_paths)
                volume = self.volumes.get(name)
                if volume is not None:
                    options = {str(k): str(v) for k, v in _dict(volume.get("Options")).items()}
                    mount.volume_options = options
                    driver = _text(volume.get("Driver")) or mount.volume_driver
                    if driver == "local":
                        mount.host_path = local_volume_host_path(options)
            mounts.append(self._with_realpath(mount))
        for path, options in sorted(_dict(self.host.get("Tmpfs")).items()):
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
        for index, raw in enumerate(_list(self.host.get("Devices"))):
            entry = _dict(raw)
            host_path = _text(entry.get("PathOnHost"))
            devices.append(Device(
                host_path=host_path,
                container_path=_text(entry.get("PathInContainer")) or host_path,
                permissions=_text(entry.get("CgroupPermissions")) or "rwm",
                location=_at(f"HostConfig.Devices[{index}]"),
            ))
        return devices

    def _device_requests(self) -> list[DeviceRequest]:
        requests = []
        for index, raw in enumerate(_list(self.host.get("DeviceRequests"))):
            entry = _dict(raw)
            requests.append(DeviceRequest(
                driver=_text(entry.get("Driver")),
                count=entry.get("Count") if isinstance(entry.get("Count"), int) else None,
                device_ids=[str(i) for i in _list(entry.get("DeviceIDs"))],
                capabilities=[str(c) for group in _list(entry.get("Capabilities"))
                              for c in _list(group)],
                location=_at(f"HostConfig.DeviceRequests[{index}]"),
            ))
        return requests

    def _ports(self) -> list[PublishedPort]:
        ports = []
        for key, bindings in sorted(_dict(self.host.get("PortBindings")).items()):
            number, _, protocol = str(key).partition("/")
            where = _at(_key_hint("HostConfig.PortBindings", str(key)))
            # A port key with no binding still asks the engine to publish it, on a
            # port of its choosing: count it rather than guess it away.
            for binding in _list(bindings) or [{}]:
                entry = _dict(binding)
                ports.append(PublishedPort(
                    container_port=number, protocol=protocol or "tcp",
                    host_ip=_text(entry.get("HostIp")), host_port=_text(entry.get("HostPort")),
                    location=where,
                ))
        return ports

    def _cpus(self) -> float | None:
        nano = _int(self.host.get("NanoCpus"))
        if nano > 0:
            return nano / 1e9
        quota = _int(self.host.get("CpuQuota"))
        if quota > 0:
            return quota / (_int(self.host.get("CpuPeriod")) or _DEFAULT_CPU_PERIOD)
        return None

    def _ulimits(self) -> list[Ulimit]:
        limits = []
        for index, raw in enumerate(_list(self.host.get("Ulimits"))):
            entry = _dict(raw)
            limits.append(Ulimit(name=_text(entry.get("Name")), soft=_int(entry.get("Soft")),
                                 hard=_int(entry.get("Hard")),
                                 location=_at(f"HostConfig.Ulimits[{index}]")))
        return limits

    def env(self) -> list[EnvVar]:
        inherited = (
            {str(item) for item in _list(self.image_config.get("Env"))}
            if self.image_config is not None else set()
        )
        variables = []
        for index, item in enumerate(_list(self.config.get("Env"))):
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
        state = _dict(self.container.get("State"))
        data: dict[str, str | list[str]] = {
            "id": _text(self.container.get("Id")),
            "name": _text(self.container.get("Name")).lstrip("/"),
            "state": _text(state.get("Status")),
            "image_id": _text(self.container.get("Image")),
            "image": _text(self.config.get("Image")),
        }
        if self.image is not None:
            data["image_tags"] = [str(tag) for tag in _list(self.image.get("RepoTags"))]
            data["image_digests"] = [str(d) for d in _list(self.image.get("RepoDigests"))]
        return data


def _account(content: bytes | AccountFile | None) -> AccountFile:
    if content is None:
        return unknown_file("it was not read")
    return content if isinstance(content, AccountFile) else AccountFile("present", content)


# --- through the engine ------------------------------------------------------------


def host_paths(container: Mapping[str, Any], volumes: Mapping[str, Mapping[str, Any]]) -> set[str]:
    """The host paths a container's binds and bind-like volumes expose, as written."""
    paths = set()
    for raw in _list(container.get("Mounts")):
        entry = _dict(raw)
        if _text(entry.get("Type")) == "bind" and _text(entry.get("Source")):
            paths.add(_text(entry.get("Source")))
        elif _text(entry.get("Type")) == "volume":
            volume = volumes.get(_text(entry.get("Name")))
            if volume is not None and _text(volume.get("Driver")) == "local":
                options = {str(k): str(v) for k, v in _dict(volume.get("Options")).items()}
                device = local_volume_host_path(options)
                if device is not None:
                    paths.add(device)
    return paths


# The real path of a host path this process cannot resolve: the rules cannot tell where
# the mount leads, so the container is a parse problem (refused, as anything unreadable).
UNRESOLVABLE = ""


def resolve_realpaths(
    paths: Iterable[str], realpath: Callable[[str], str] = os.path.realpath
) -> dict[str, str]:
    """Each path's real path on this host, for paths that exist here; ``UNRESOLVABLE``
    for one whose links this process may not read (``/proc/1/cwd`` without ptrace rights).

    Only meaningful when the engine shares this machine's filesystem (a local
    socket); ``load_containers`` calls it only then.
    """
    resolved = {}
    for path in paths:
        if os.path.lexists(path):
            try:
                resolved[path] = realpath(path)
            except OSError:
                resolved[path] = UNRESOLVABLE
    return resolved


def engine_is_local(host: str) -> bool:
    """True when the engine listens on this machine's filesystem (a unix socket)."""
    return host.startswith("unix://") or host.startswith("/")


def load_containers(
    ids: Sequence[str],
    *,
    all: bool = False,
    labels: Sequence[str] = (),
    engine: ContainerEngine | None = None,
) -> list[Subject]:
    """Subjects for the named containers, plus every container when ``all`` or ``labels``.

    ``labels`` (KEY or KEY=VALUE) filter the listing, as ``docker ps --filter label=``
    does; containers named in ``ids`` are checked whatever their labels. Each
    container is checked once, in the order named, then listed.
    """
    if engine is None:
        from paracle_guard.docker_client import Engine

        with Engine.connect() as fresh:
            return load_containers(ids, all=all, labels=labels, engine=fresh)
    wanted = list(ids)
    if all or labels:
        wanted.extend(engine.list_containers(labels=list(labels)))
    subjects: list[Subject] = []
    seen: set[str] = set()
    for ref in wanted:
        container = engine.inspect_container(ref)
        container_id = _text(container.get("Id"))
        if container_id in seen:
            continue
        seen.add(container_id)
        subjects.append(container_subject(engine, container))
    return subjects


def container_subject(engine: ContainerReader, container: Mapping[str, Any]) -> Subject:
    """The Subject of an inspected container, with its image, volumes and account files
    read through ``engine``."""
    container_id = _text(container.get("Id"))
    name = _text(container.get("Name")).lstrip("/") or container_id[:12]
    image = engine.inspect_image_document(_text(container.get("Image")))
    volumes = _volumes_of(engine, container)
    # runc resolves users in the container's own files, at start: read them as it would.
    passwd = _read_account_file(engine, container_id, PASSWD)
    group = _read_account_file(engine, container_id, GROUP)
    local = engine_is_local(engine.host)
    realpaths = resolve_realpaths(host_paths(container, volumes)) if local else {}
    socket_gid = _socket_gid(engine.host) if local else None
    return subject_from_inspect(
        container, image, target=f"container:{name}", volumes=volumes,
        passwd=passwd, group=group, realpaths=realpaths, engine_socket_gid=socket_gid,
    )


def _volumes_of(
    engine: ContainerReader, container: Mapping[str, Any]
) -> dict[str, Mapping[str, Any]]:
    volumes: dict[str, Mapping[str, Any]] = {}
    for raw in _list(container.get("Mounts")):
        entry = _dict(raw)
        volume_name = _text(entry.get("Name"))
        # "(new volume at /x)" is how a create request's new anonymous volume is named.
        if _text(entry.get("Type")) == "volume" and volume_name[:1] not in ("", "("):
            document = engine.inspect_volume(volume_name)
            if document is not None:
                volumes[volume_name] = document
    return volumes


def subject_from_create(
    engine: ContainerReader,
    request: CreateRequest,
    image: Mapping[str, Any] | None,
    *,
    name: str,
    version: str,
    defaults: CreateDefaults,
    volumes_from: Mapping[str, Mapping[str, Any]] | None = None,
    read_existing_volumes: bool = True,
) -> Subject:
    """The Subject of the container a create request would make, before it exists.

    The request is turned into the inspect document the engine would store
    (``create_request``), then judged like any inspected container. Named
    volumes are read through ``engine`` (an existing one is used as it is);
    a new one is judged with the driver options the request creates it with.
    With ``read_existing_volumes`` false, every named volume is judged as the
    request would create it, without asking the engine.
    A user given by name stays unresolved here: the container's /etc/passwd
    cannot be read before the container exists.
    """
    made = create_document(request, image, version=version, engine=defaults,
                           volumes_from=volumes_from, name=name)
    volumes: dict[str, Mapping[str, Any]] = dict(made.volumes)
    if read_existing_volumes:
        volumes.update(_volumes_of(engine, made.document))
    local = engine_is_local(engine.host)
    realpaths = resolve_realpaths(host_paths(made.document, volumes)) if local else {}
    return subject_from_inspect(made.document, image, target=f"container:{name or 'new'}",
                                volumes=volumes, realpaths=realpaths,
                                engine_socket_gid=_socket_gid(engine.host) if local else None)


def _read_account_file(engine: ContainerReader, container_id: str, path: str) -> AccountFile:
    """``path`` in the container as the engine opens it: links followed inside its root."""
    found = engine.read_container_file(container_id, path, ACCOUNT_FILE_LIMIT)
    if found is not None and found.link_target:
        # The engine reports the target resolved in the container's root; read that.
        target = found.link_target
        found = engine.read_container_file(container_id, target, ACCOUNT_FILE_LIMIT)
        path = target
        if found is not None and found.link_target:
            return unknown_file(f"{path} is still a link after the engine resolved it")
    if found is None:
        return ABSENT
    if found.kind == "unreadable":
        return unknown_file(f"the engine could not read {path}: {found.reason}")
    if found.kind != "file":
        return AccountFile("absent", path=path, note=f"{path} is not a regular file")
    if found.content is None:
        return unknown_file(f"{path} is larger than {ACCOUNT_FILE_LIMIT >> 20} MiB")
    return AccountFile("present", found.content, path=path)


def _socket_gid(host: str) -> int | None:
    """The group owning the engine's socket on this host (the docker group), if readable."""
    path = host.removeprefix("unix://")
    try:
        return os.stat(path).st_gid
    except OSError:
        return None
