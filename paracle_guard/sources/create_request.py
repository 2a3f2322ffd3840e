"""A container-create request, turned into what the engine would store for it.

``POST /containers/create`` carries what a client asks for; ``docker inspect``
shows what the engine made of it. The container rules judge the second, so
``create_document`` builds it from the first, the way Docker Engine 20.10 does
(``runconfig``, ``api/server/router/container``, ``daemon/create*.go``,
``daemon/volumes.go``; facts quoted, no code copied):

- the body is the Config with HostConfig under its own key, *and* HostConfig's
  fields at the top level (deprecated, still honoured): when the ``HostConfig``
  key is missing, the top-level fields are the host config; when both are
  there, ``Memory``, ``MemorySwap``, ``CpuShares``, ``CpusetCpus`` and
  ``VolumeDriver`` left at zero in ``HostConfig`` are taken from the top level;
- API versions before 1.40 get IPC ``shareable`` and before 1.41 (on cgroup v1)
  the host's cgroup namespace when the request leaves them empty; otherwise
  the engine's own defaults apply (``CreateDefaults``); ``PidsLimit`` of 0 or
  less is no limit; memory without swap gets swap equal to twice the memory;
- the image's user, environment, labels, working directory and VOLUMEs fill
  in what the request leaves empty, as the engine merges them; every image or
  request VOLUME becomes an anonymous volume unless a bind, volume, tmpfs or
  ``--volumes-from`` mount already covers that exact path;
- binds are split as the engine's Linux parser splits them (``SRC:DST[:MODE]``,
  a source that is not absolute names a volume), mounts of other containers are
  copied from their inspect (``volumes_from``), and the masked and read-only
  /proc and /sys paths are the engine's defaults unless the request lists them.

What the engine would refuse (a mount without a target, an unknown mount type,
a bind mode it does not know) raises ``GoJSONError``: the request fails anyway,
and guessing how it would have been read is not worth the risk.
"""

from __future__ import annotations

import dataclasses
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from paracle_guard.sources.go_json import (
    CONFIG,
    HOST_CONFIG,
    WRAPPER_OWN,
    GoJSONError,
    Kind,
    Struct,
    decode_struct,
    is_object,
    parse,
)
from paracle_guard.sources.runtime_options import CORE_MASKED_PATHS, CORE_READONLY_PATHS

DEFAULT_SHM_SIZE = 64 << 20  # the engine's --default-shm-size
_RW_MODES = frozenset({"rw", "ro"})
_LABEL_MODES = frozenset({"z", "Z"})
_PROPAGATION_MODES = frozenset({"private", "rprivate", "slave", "rslave", "shared", "rshared"})
_CONSISTENCY_MODES = frozenset({"consistent", "cached", "delegated"})
_MOUNT_API_TYPES = frozenset({"bind", "volume", "tmpfs"})
# Fields of the embedded top-level host config that fill in a zero in HostConfig.
_TOP_LEVEL_FILLS = ("Memory", "MemorySwap", "CpuShares", "CpusetCpus", "VolumeDriver")


@dataclass(frozen=True)
class CreateDefaults:
    """What the engine uses for what a create request leaves empty.

    ``cgroupns`` is the engine's default cgroup namespace mode (``docker info``
    shows it: ``sources.compose_engine.defaults_from_info``); ``ipc`` its
    ``--default-ipc-mode``, which no API shows (``private`` or ``shareable``:
    neither is the host's). ``runtime`` is its default runtime (``docker info``'s
    ``DefaultRuntime``). ``api_version`` is what an unversioned request means.
    """

    cgroup_v2: bool = False
    cgroupns: str = "host"
    ipc: str = "private"
    shm_size: int = DEFAULT_SHM_SIZE
    runtime: str = "runc"
    api_version: str = "1.41"


@dataclass
class CreateRequest:
    """A create body as the engine decodes it: its Config, HostConfig and networks."""

    config: dict[str, Any]
    host_config: dict[str, Any] | None
    networks: list[str] = field(default_factory=list)


def _combined_wrapper() -> Struct:
    """ContainerConfigWrapper's fields, with Go's rules for embedded structs.

    Its own fields sit at depth 0, the embedded Config's and HostConfig's at
    depth 1; a name both embedded structs define would be dropped by Go (none does).
    """
    clashes = set(CONFIG.fields) & set(HOST_CONFIG.fields)
    merged: dict[str, Kind] = {name: kind for name, kind in HOST_CONFIG.fields.items()
                               if name not in clashes}
    merged.update({name: kind for name, kind in CONFIG.fields.items() if name not in clashes})
    merged.update(WRAPPER_OWN)
    return Struct("ContainerConfigWrapper", merged)


_WRAPPER = _combined_wrapper()


def decode_create_body(raw: bytes, *, require_config: bool = True) -> CreateRequest:
    """The Config, HostConfig (None when the engine gets none) and network names of a body.

    The engine reads the same wrapper for the HostConfig of an old-API start
    (``require_config=False``).
    """
    value = parse(raw)
    if not is_object(value):
        raise GoJSONError("the body is not a JSON object")
    decoded = decode_struct(value, _WRAPPER, "body")
    config = {k: v for k, v in decoded.items() if k in CONFIG.fields}
    if require_config and not config:
        raise GoJSONError("the body sets no container configuration (the engine refuses it)")
    top_level = {k: v for k, v in decoded.items()
                 if k in HOST_CONFIG.fields and k not in WRAPPER_OWN}
    inner = decoded.get("HostConfig")
    host: dict[str, Any] | None
    if not top_level:
        host = inner
    elif inner is None:
        host = top_level
    else:
        host = dict(inner)
        for name in _TOP_LEVEL_FILLS:
            if top_level.get(name) and not host.get(name):
                host[name] = top_level[name]
    cpuset = decoded.get("Cpuset")
    if host is not None and cpuset and not host.get("CpusetCpus"):
        host["CpusetCpus"] = cpuset
    if host is not None and not host.get("NetworkMode"):
        host["NetworkMode"] = "default"
    networking = decoded.get("NetworkingConfig") or {}
    networks = sorted((networking.get("EndpointsConfig") or {}).keys())
    return CreateRequest(config=config, host_config=host, networks=networks)


# --- versions, as the engine compares them ------------------------------------------------


def _go_atoi(part: str) -> int:
    # strconv.Atoi: an optional sign and ASCII digits; anything else is 0 in versions.compare.
    digits = part[1:] if part[:1] in "+-" else part
    if not digits or not digits.isascii() or not digits.isdigit():
        return 0
    return -int(digits) if part.startswith("-") else int(digits)


def compare_versions(left: str, right: str) -> int:
    """-1, 0 or 1, as the engine's ``versions.compare`` (dot-separated, missing parts 0)."""
    a = [_go_atoi(p) for p in left.split(".")]
    b = [_go_atoi(p) for p in right.split(".")]
    width = max(len(a), len(b))
    a += [0] * (width - len(a))
    b += [0] * (width - len(b))
    return (a > b) - (a < b)


def version_before(version: str, reference: str) -> bool:
    return compare_versions(version, reference) < 0


# --- paths and binds, as the engine's Linux parser reads them --------------------------


def go_clean(path: str) -> str:
    """Go's ``path.Clean``: like ``posixpath.normpath``, but ``//x`` is ``/x``."""
    if not path:
        return "."
    cleaned = posixpath.normpath(path)
    return "/" + cleaned.lstrip("/") if cleaned.startswith("//") else cleaned


def valid_mount_mode(mode: str) -> bool:
    if not mode:
        return True
    counts = [0, 0, 0, 0, 0]
    for option in mode.split(","):
        for index, known in enumerate((_RW_MODES, _LABEL_MODES, _PROPAGATION_MODES,
                                       frozenset({"nocopy"}), _CONSISTENCY_MODES)):
            if option in known:
                counts[index] += 1
                break
        else:
            return False
    return max(counts) <= 1


def _read_write(mode: str) -> bool:
    return valid_mount_mode(mode) and "ro" not in mode.split(",")


@dataclass(frozen=True)
class _MountPoint:
    type: str
    destination: str
    rw: bool
    source: str = ""  # the host path of a bind
    name: str = ""  # the volume's name ("" for an anonymous volume)
    driver: str = ""
    mode: str = ""
    options: Mapping[str, str] | None = None  # driver options a new volume is created with

    def inspect_entry(self) -> dict[str, Any]:
        return {"Type": self.type, "Name": self.name, "Source": self.source,
                "Destination": self.destination, "Driver": self.driver, "Mode": self.mode,
                "RW": self.rw}


def _absolute(path: str, what: str) -> str:
    if not path.startswith("/"):
        raise GoJSONError(f"{what} {path!r} is not an absolute path (the engine refuses it)")
    if go_clean(path) == "/" and what.endswith("target"):
        raise GoJSONError("a mount target cannot be / (the engine refuses it)")
    return go_clean(path)


def parse_bind(raw: str, volume_driver: str) -> _MountPoint:
    """One ``HostConfig.Binds`` entry: ``DST``, ``SRC:DST`` or ``SRC:DST:MODE``."""
    if raw.count(":") > 2 or raw.split(":", 1)[0] == "":
        raise GoJSONError(f"bind {raw!r} is not SRC:DST[:MODE] (the engine refuses it)")
    parts = raw.split(":", 2)
    source, mode = "", ""
    if len(parts) == 1:
        target = parts[0]
    elif len(parts) == 2:
        if valid_mount_mode(parts[1]):
            raise GoJSONError(f"bind {raw!r} has a mode but no source (the engine refuses it)")
        source, target = parts
    else:
        source, target, mode = parts
    if not valid_mount_mode(mode):
        raise GoJSONError(f"bind {raw!r}: mode {mode!r} is not one the engine knows")
    destination = _absolute(target, "bind target")
    if source.startswith("/"):
        return _MountPoint("bind", destination, _read_write(mode), source=go_clean(source),
                           mode=mode)
    return _MountPoint("volume", destination, _read_write(mode), name=source,
                       driver=volume_driver, mode=mode)


def parse_mount(entry: Mapping[str, Any], volume_driver: str) -> _MountPoint:
    """One ``HostConfig.Mounts`` entry (``--mount``)."""
    kind = entry.get("Type") or ""
    if kind not in _MOUNT_API_TYPES:
        raise GoJSONError(f"mount type {kind!r} is not one the engine knows on Linux")
    destination = _absolute(entry.get("Target") or "", "mount target")
    read_only = bool(entry.get("ReadOnly"))
    source = entry.get("Source") or ""
    if kind == "bind":
        return _MountPoint("bind", destination, not read_only,
                           source=_absolute(source, "bind source"))
    if kind == "tmpfs":
        return _MountPoint("tmpfs", destination, not read_only)
    volume_options = entry.get("VolumeOptions") or {}
    driver_config = volume_options.get("DriverConfig") or {}
    options = driver_config.get("Options")
    return _MountPoint("volume", destination, not read_only, name=source,
                       driver=driver_config.get("Name") or "",
                       options=dict(options) if options else None)


def parse_volumes_from(spec: str) -> tuple[str, str]:
    """``CONTAINER[:MODE]`` of ``--volumes-from``: the container and its mode."""
    container, _, mode = spec.partition(":")
    if not container:
        raise GoJSONError("an empty --volumes-from (the engine refuses it)")
    mode = mode or "rw"
    if not valid_mount_mode(mode) or "nocopy" in mode.split(","):
        raise GoJSONError(f"--volumes-from {spec!r}: mode {mode!r} is not one the engine allows")
    return container, mode


# --- the document ---------------------------------------------------------------------


@dataclass
class CreateDocument:
    """What ``docker inspect`` would show for the new container, and the volumes it names.

    ``volumes`` holds, for each named volume the request mounts, what it would be
    if the engine had to create it (driver and driver options of the request);
    the caller replaces them with the inspect of volumes that already exist,
    since the engine uses an existing volume as it is.
    """

    document: dict[str, Any]
    volumes: dict[str, dict[str, Any]] = field(default_factory=dict)


def normalised_host_config(
    request: CreateRequest, version: str, engine: CreateDefaults
) -> dict[str, Any]:
    """The HostConfig the engine would store, before mounts are registered."""
    host = dict(request.host_config) if request.host_config is not None else None
    if host is not None:
        if version_before(version, "1.25"):
            host["AutoRemove"] = False
        if version_before(version, "1.40") and not host.get("IpcMode"):
            host["IpcMode"] = "shareable"
        if (version_before(version, "1.41") and not engine.cgroup_v2
                and not host.get("CgroupnsMode")):
            host["CgroupnsMode"] = "host"
    host = host or {}
    if host.get("PidsLimit") is not None and host["PidsLimit"] <= 0:
        host["PidsLimit"] = None
    if (host.get("Memory") or 0) > 0 and not host.get("MemorySwap"):
        host["MemorySwap"] = host["Memory"] * 2
    host["ShmSize"] = host.get("ShmSize") or engine.shm_size
    host["IpcMode"] = host.get("IpcMode") or engine.ipc
    if not host.get("CgroupnsMode"):
        privileged_v1 = host.get("Privileged") and not engine.cgroup_v2
        host["CgroupnsMode"] = "host" if privileged_v1 else engine.cgroupns
    options = list(host.get("SecurityOpt") or [])
    sets_label = any(option.split("=", 1)[0] == "label" for option in options)
    if not sets_label and (host.get("Privileged") or host["IpcMode"] == "host"
                           or host.get("PidMode") == "host"):
        options.append("label=disable")  # the engine disables SELinux labels for these
    host["SecurityOpt"] = options
    if not host.get("Privileged"):
        # nil means the engine's defaults; an empty list means none (systempaths=unconfined).
        if host.get("MaskedPaths") is None:
            host["MaskedPaths"] = list(CORE_MASKED_PATHS)
        if host.get("ReadonlyPaths") is None:
            host["ReadonlyPaths"] = list(CORE_READONLY_PATHS)
    host["NetworkMode"] = host.get("NetworkMode") or "default"
    # moby daemon/daemon_unix.go: an empty HostConfig.Runtime is stored as the default's name.
    host["Runtime"] = host.get("Runtime") or engine.runtime
    return host


def merged_config(config: Mapping[str, Any], image: Mapping[str, Any] | None) -> dict[str, Any]:
    """The container's Config after the engine merges in the image's."""
    merged = dict(config)
    image_config = (image or {}).get("Config") or {}
    if not isinstance(image_config, Mapping):
        return merged
    if not merged.get("User"):
        merged["User"] = image_config.get("User") or ""
    own_env = list(merged.get("Env") or [])
    names = {item.split("=", 1)[0] for item in own_env}
    merged["Env"] = own_env + [item for item in image_config.get("Env") or []
                               if str(item).split("=", 1)[0] not in names]
    labels = dict(image_config.get("Labels") or {})
    labels.update(merged.get("Labels") or {})
    merged["Labels"] = labels
    if not merged.get("WorkingDir"):
        merged["WorkingDir"] = image_config.get("WorkingDir") or ""
    volumes = dict(merged.get("Volumes") or {})
    volumes.update(image_config.get("Volumes") or {})
    merged["Volumes"] = volumes
    return merged


def create_document(
    request: CreateRequest,
    image: Mapping[str, Any] | None,
    *,
    version: str,
    engine: CreateDefaults,
    volumes_from: Mapping[str, Mapping[str, Any]] | None = None,
    name: str = "",
) -> CreateDocument:
    """The inspect document of the container ``request`` would create from ``image``.

    ``volumes_from`` maps each ``VolumesFrom`` container reference to its inspect
    document; a reference missing from it is refused (the engine needs it too).
    """
    host = normalised_host_config(request, version, engine)
    config = merged_config(request.config, image)
    points, requested = _mount_points(host, config, volumes_from or {})
    document: dict[str, Any] = {
        "Id": "",
        "Name": f"/{name}" if name else "",
        "Image": (image or {}).get("Id") or "",
        "State": {"Status": "created"},
        "Config": config,
        "HostConfig": host,
        "Mounts": [point.inspect_entry() for point in points],
        "NetworkSettings": {"Networks": {n: {} for n in _networks(request, host, config)}},
    }
    return CreateDocument(document=document, volumes=requested)


def _networks(request: CreateRequest, host: Mapping[str, Any],
              config: Mapping[str, Any]) -> list[str]:
    mode = str(host.get("NetworkMode") or "default")
    if config.get("NetworkDisabled") or mode.startswith("container:"):
        return []
    if request.networks:
        return list(request.networks)
    return ["bridge" if mode == "default" else mode]


def _mount_points(
    host: dict[str, Any], config: Mapping[str, Any],
    volumes_from: Mapping[str, Mapping[str, Any]],
) -> tuple[list[_MountPoint], dict[str, dict[str, Any]]]:
    driver = str(host.get("VolumeDriver") or "")
    points: dict[str, _MountPoint] = {}
    copied: list[_MountPoint] = []
    for spec in host.get("VolumesFrom") or []:
        reference, mode = parse_volumes_from(str(spec))
        other = volumes_from.get(reference)
        if other is None:
            raise GoJSONError(f"--volumes-from {reference}: no such container")
        for entry in other.get("Mounts") or []:
            point = _copied(entry, _read_write(mode))
            points[point.destination] = point
            copied.append(point)
    tmpfs = host.get("Tmpfs") or {}
    bound: set[str] = set()
    for raw in host.get("Binds") or []:
        point = parse_bind(str(raw), driver)
        if point.destination in bound or point.destination in tmpfs:
            raise GoJSONError(f"duplicate mount point {point.destination} (the engine refuses it)")
        bound.add(point.destination)
        points[point.destination] = point
    for entry in host.get("Mounts") or []:
        point = parse_mount(entry, driver)
        if point.destination in bound:
            raise GoJSONError(f"duplicate mount point {point.destination} (the engine refuses it)")
        if point.type == "volume" and not point.name:
            # A new anonymous volume: named here so that its driver options can be judged.
            point = _MountPoint("volume", point.destination, point.rw,
                                name=f"(new volume at {point.destination})",
                                driver=point.driver, options=point.options)
        points[point.destination] = point
    requested: dict[str, dict[str, Any]] = {}
    for destination, point in list(points.items()):
        if point.type != "volume" or not point.name or point in copied:
            continue
        requested[point.name] = {"Name": point.name, "Driver": point.driver or "local",
                                 "Options": dict(point.options or {})}
        # The engine stores the volume's driver, and mode "z" on a local one with none.
        driver = point.driver or "local"
        mode = point.mode or ("z" if driver == "local" else "")
        points[destination] = dataclasses.replace(point, driver=driver, mode=mode)
    for spec in config.get("Volumes") or {}:
        destination = go_clean(str(spec))
        if destination in points or destination in tmpfs:
            continue
        points[destination] = _MountPoint("volume", destination, True,
                                          driver=driver or "local")
    return list(points.values()), requested


def _copied(entry: Mapping[str, Any], writable: bool) -> _MountPoint:
    return _MountPoint(
        type=str(entry.get("Type") or "volume"),
        destination=go_clean(str(entry.get("Destination") or "")),
        rw=bool(entry.get("RW")) and writable,
        source=str(entry.get("Source") or "") if entry.get("Type") == "bind" else "",
        name=str(entry.get("Name") or ""),
        driver=str(entry.get("Driver") or ""),
        mode=str(entry.get("Mode") or ""),
    )
