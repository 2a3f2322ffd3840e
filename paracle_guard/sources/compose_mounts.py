"""The mounts of a compose service, resolved on this host as the engine will see them.

Compose hands the engine absolute host paths: a relative bind source resolves
against the service's folder (``Node.directory``: the project folder for the
main and override files), ``~`` against the home folder. Symlinks are then
resolved on this host the way the container source resolves the binds of a
running container, so ``./socklink -> /var/run/docker.sock`` is a mount of the
socket. A path that does not exist yet is resolved as far as it exists:
Compose creates the rest, under wherever the existing part points.

A ``local`` volume whose driver options bind a host path (``type: none, o:
bind, device: ...``) reaches that path. Compose makes a relative ``device``
absolute only when ``driver: local`` is written and ``o`` is ``bind``
(compose-go ``paths/resolve.go``); otherwise the engine receives it relative
and mount(2) resolves it against the engine's working directory, ``/`` for a
dockerd started by systemd, which is what is assumed.

``volumes_from: [service:X]`` (or ``[X]``) inherits X's mounts but not its
tmpfs; ``container:X`` inherits the mounts of a container the compose file
cannot show, kept as an unresolved mount that the rules fail closed on.

``use_api_socket: true`` is a client-side transform of Docker Compose
(pkg/compose/apiSocket.go): it adds a bind of ``/var/run/docker.sock`` to the
service, and copies the user's registry credentials into it as a config.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from paracle_guard.sources.compose_merge import prepared
from paracle_guard.sources.compose_project import Project, Volume
from paracle_guard.sources.compose_values import (
    WINDOWS_PATH,
    boolean,
    expand_user,
    is_path,
    location,
    mapping,
    sequence,
    short_volume,
    size,
    strings,
    text,
)
from paracle_guard.sources.located_yaml import LocatedError, Node
from paracle_guard.sources.runtime_options import (
    differing_realpath,
    local_volume_host_path,
    normalise_host_path,
)
from paracle_guard.subject_runtime import Mount, Setting, mount_type

# Where Compose binds the engine's socket for use_api_socket, on both sides.
API_SOCKET = "/var/run/docker.sock"
# The working directory of a dockerd started by systemd: where it resolves a relative
# volume device that Compose passed on as written.
ENGINE_WORKING_DIRECTORY = "/"


@dataclass
class ServiceMounts:
    mounts: list[Mount] = field(default_factory=list)
    unresolved: list[Setting] = field(default_factory=list)


class MountReader:
    def __init__(self, project: Project, name: str, service: Node,
                 realpath: Callable[[str], str] = os.path.realpath) -> None:
        self.project = project
        self.name = name
        self.keys = mapping(service)
        self.realpath = realpath

    def read(self, visiting: frozenset[str] = frozenset()) -> ServiceMounts:
        found = ServiceMounts()
        volumes = self.keys.get("volumes")
        if volumes is not None and volumes.value is not None:
            for item in sequence(volumes):
                found.mounts.append(self._long(item) if isinstance(item.value, dict)
                                    else self._short(item))
        tmpfs = self.keys.get("tmpfs")
        if tmpfs is not None and tmpfs.value is not None:
            for item in strings(tmpfs):
                target, _, options = text(item).partition(":")
                flags = [flag for flag in options.split(",") if flag]
                found.mounts.append(Mount(type="tmpfs", target=target, read_only="ro" in flags,
                                          options=flags, location=location(item)))
        self._volumes_from(found, visiting | {self.name})
        api_socket = self.keys.get("use_api_socket")
        if api_socket is not None and api_socket.value is not None and boolean(api_socket):
            socket = self._bind(api_socket, API_SOCKET, API_SOCKET, False, [])
            socket.via = ("use_api_socket: true, which also copies your registry credentials "
                          "into the container")
            found.mounts.append(socket)
        return found

    def _volumes_from(self, found: ServiceMounts, visiting: frozenset[str]) -> None:
        listed = self.keys.get("volumes_from")
        if listed is None or listed.value is None:
            return
        for item in sequence(listed):
            spec = text(item)
            parts = spec.split(":")
            read_only = parts[-1] == "ro"
            if parts[-1] in ("ro", "rw"):
                parts = parts[:-1]
            if parts[0] == "container":
                found.unresolved.append(Setting(value=spec, location=location(item)))
                continue
            name = parts[1] if parts[0] == "service" and len(parts) > 1 else parts[0]
            if name in visiting:
                raise item.error(f"volumes_from cycle through service {name!r}")
            other = self.project.services.get(name)
            if other is None:
                raise item.error(f"volumes_from names unknown service {name!r}")
            if isinstance(other, LocatedError):
                raise item.error(f"volumes_from names service {name!r}, which Compose "
                                 f"refuses: {other.message}")
            inherited = MountReader(self.project, name, prepared(other),
                                    self.realpath).read(visiting)
            for mount in inherited.mounts:
                if mount.type == "tmpfs":
                    continue  # tmpfs mounts are not shared by volumes_from
                found.mounts.append(replace(
                    mount, read_only=mount.read_only or read_only, location=location(item),
                    from_image=False, via=f"volumes_from {spec}"))
            found.unresolved.extend(
                replace(setting, value=f"{spec}, through {setting.value}",
                        location=location(item))
                for setting in inherited.unresolved)

    def _short(self, item: Node) -> Mount:
        source, target, options = short_volume(item)
        read_only = "ro" in options
        if source is None:
            return Mount(type="volume", target=target, read_only=read_only, anonymous=True,
                         options=options, location=location(item))
        if is_path(source):
            return self._bind(item, source, target, read_only, options)
        return self._named_volume(item, source, target, read_only, options)

    def _long(self, item: Node) -> Mount:
        spec = mapping(item)
        named = text(spec["type"]) if "type" in spec else "volume"
        kind = mount_type(named)
        if kind is None:
            raise item.error(f"unknown volume type {named!r}")
        if "target" not in spec:
            raise item.error("a volume needs a target")
        target = text(spec["target"])
        read_only = boolean(spec["read_only"]) if "read_only" in spec else False
        source = text(spec["source"]) if "source" in spec else None
        options: list[str] = []
        if kind == "tmpfs":
            tmpfs = mapping(spec["tmpfs"]) if "tmpfs" in spec else {}
            if "size" in tmpfs:
                options.append(f"size={size(tmpfs['size'])}")
            if "mode" in tmpfs:
                options.append(f"mode={text(tmpfs['mode'])}")
            return Mount(type="tmpfs", target=target, read_only=read_only, options=options,
                         location=location(item))
        if kind == "bind":
            if source is None:
                raise item.error("a bind mount needs a source")
            return self._bind(item, source, target, read_only, options)
        if kind == "npipe":
            return Mount(type="npipe", source=source, target=target, read_only=read_only,
                         host_path=source, location=location(item))
        if kind == "volume":
            if source is None:
                return Mount(type="volume", target=target, read_only=read_only, anonymous=True,
                             location=location(item))
            return self._named_volume(item, source, target, read_only, options)
        return Mount(type=kind, source=source, target=target, read_only=read_only,
                     location=location(item))

    def _bind(self, item: Node, source: str, target: str, read_only: bool,
              options: list[str]) -> Mount:
        if WINDOWS_PATH.match(source):
            return Mount(type="bind", source=source, target=target, read_only=read_only,
                         host_path=source, options=options, location=location(item))
        host = normalise_host_path(os.path.abspath(os.path.join(item.directory,
                                                                expand_user(source))))
        return Mount(type="bind", source=source, target=target, read_only=read_only,
                     host_path=host, host_realpath=self._real(host), options=options,
                     location=location(item))

    def _named_volume(self, item: Node, source: str, target: str, read_only: bool,
                      options: list[str]) -> Mount:
        declared = self.project.volumes.get(source)
        if declared is None:
            raise item.error(f"volume {source!r} is not declared under the top-level volumes:")
        host = device_path(declared) if declared.driver == "local" and not declared.external \
            else None
        return Mount(type="volume", source=source, target=target, read_only=read_only,
                     volume_driver=declared.driver, volume_options=declared.options,
                     host_path=host, host_realpath=self._real(host) if host else None,
                     options=options, location=location(item))

    def _real(self, host: str) -> str | None:
        return differing_realpath(host, self.realpath(host))


def device_path(volume: Volume) -> str | None:
    """The host path a local volume's driver options reach, resolved as Compose and the
    engine resolve a relative ``device``."""
    device = str(volume.options.get("device") or "").strip()
    if not device or device.startswith("/") or ":" in device:
        return local_volume_host_path(volume.options)
    if volume.driver_given and volume.options.get("o") == "bind":
        resolved = os.path.join(volume.node.directory, expand_user(device))
    else:
        resolved = os.path.join(ENGINE_WORKING_DIRECTORY, device)
    return normalise_host_path(os.path.abspath(resolved))
