"""Containers as Subjects, from ``docker inspect``.

``subject_from_inspect`` is pure: it turns the engine's inspect document of a
container (created or running), its image's inspect, and facts read elsewhere
(volume driver options, the container's /etc/passwd, real paths of host paths)
into a Subject of kind "container"; ``container_inspect`` reads the document's
fields. ``load_containers`` gathers those facts through ``docker_client`` and
calls it; the launcher verifies what it creates through the same function.

What the engine stores is taken as the truth, not what a client meant: the
engine fills in defaults at create time (swap twice the memory, the cgroup
namespace mode, masked paths), so a created container already shows what a
start would apply. Locations are hints into the inspect document
(``HostConfig.CapAdd[0]``), with no line.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from paracle_guard.errors import InputError
from paracle_guard.sources.account_files import ABSENT, GROUP, PASSWD, AccountFile, unknown_file
from paracle_guard.sources.container_inspect import (
    UNRESOLVABLE,
    InspectedContainer,
    as_dict,
    as_list,
    as_text,
)
from paracle_guard.sources.create_request import CreateDefaults, CreateRequest, create_document
from paracle_guard.sources.runtime_options import local_volume_host_path
from paracle_guard.subject import Subject

if TYPE_CHECKING:
    from paracle_guard.engine_protocol import ContainerEngine, ContainerReader

# Files read from a container to resolve a named user; bigger ones are not passwd files.
ACCOUNT_FILE_LIMIT = 1 << 20


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
    builder = InspectedContainer(container, image, target, volumes or {}, realpaths or {})
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
        workdir=as_text(builder.config.get("WorkingDir")) or None,
        runtime=runtime,
        parse_problems=builder.problems,
        metadata=builder.metadata(),
    )


def _account(content: bytes | AccountFile | None) -> AccountFile:
    if content is None:
        return unknown_file("it was not read")
    return content if isinstance(content, AccountFile) else AccountFile("present", content)


# --- through the engine ------------------------------------------------------------


def host_paths(container: Mapping[str, Any], volumes: Mapping[str, Mapping[str, Any]]) -> set[str]:
    """The host paths a container's binds and bind-like volumes expose, as written."""
    paths = set()
    for raw in as_list(container.get("Mounts")):
        entry = as_dict(raw)
        if as_text(entry.get("Type")) == "bind" and as_text(entry.get("Source")):
            paths.add(as_text(entry.get("Source")))
        elif as_text(entry.get("Type")) == "volume":
            volume = volumes.get(as_text(entry.get("Name")))
            if volume is not None and as_text(volume.get("Driver")) == "local":
                options = {str(k): str(v) for k, v in as_dict(volume.get("Options")).items()}
                device = local_volume_host_path(options)
                if device is not None:
                    paths.add(device)
    return paths



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
        container_id = as_text(container.get("Id"))
        if container_id in seen:
            continue
        seen.add(container_id)
        subjects.append(container_subject(engine, container))
    return subjects


def container_subject(engine: ContainerReader, container: Mapping[str, Any]) -> Subject:
    """The Subject of an inspected container, with its image, volumes and account files
    read through ``engine``."""
    container_id = as_text(container.get("Id"))
    name = as_text(container.get("Name")).lstrip("/") or container_id[:12]
    image = engine.inspect_image_document(as_text(container.get("Image")))
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
    for raw in as_list(container.get("Mounts")):
        entry = as_dict(raw)
        volume_name = as_text(entry.get("Name"))
        # "(new volume at /x)" is how a create request's new anonymous volume is named.
        if as_text(entry.get("Type")) == "volume" and volume_name[:1] not in ("", "("):
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
