"""Built images as Subjects: through the Docker Engine, or from a ``docker save`` archive.

Both paths read the same thing, the layers of the image's ``docker save``
archive, without starting a container, so they give the same facts for the same
image. The engine path reads only what its facts cache lacks, a layer at a time
where the engine's store allows it (``image_layers``), and adds what only the
engine knows (RepoDigests); its run configuration is the engine's inspect.
Config facts (user, env, ports, volumes, workdir) are located at the target;
file facts at their path inside the image and the layer that put them there.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from paracle_guard.disk_cache import DiskCache
from paracle_guard.docker_client import Engine, ImageInfo
from paracle_guard.errors import InputError
from paracle_guard.image_tree import ImageTree
from paracle_guard.location import Location
from paracle_guard.progress import ReadProgress
from paracle_guard.sources.image_archive import (
    FinalFile,
    SavedArchive,
    SavedImage,
    read_saved_archive,
)
from paracle_guard.sources.image_layers import image_files
from paracle_guard.sources.package_db import (
    GroupEntry,
    PasswdEntry,
    parse_group,
    parse_passwd,
)
from paracle_guard.subject import EnvVar, ExposedPort, FileEntry, Package, Subject, UserFact

STDIN = "-"
STDIN_NAME = "(stdin)"  # how reports name an archive read from standard input


def load_image(
    ref: str,
    engine: Engine | None = None,
    *,
    cache: DiskCache | None = None,
    progress: ReadProgress | None = None,
) -> Subject:
    """Check the local image ``ref`` (tag, ID or digest) through the engine. Never pulls.

    With a ``cache``, facts already read for this image ID, or for its layers'
    diff IDs, are not read again; what is read is stored there.
    """
    if engine is None:
        with Engine.connect() as fresh:
            return load_image(ref, fresh, cache=cache, progress=progress)
    return load_resolved_image(engine, engine.resolve_image(ref), ref, cache=cache,
                               progress=progress)


def load_resolved_image(
    engine: Engine,
    info: ImageInfo,
    ref: str,
    *,
    cache: DiskCache | None = None,
    progress: ReadProgress | None = None,
) -> Subject:
    """``load_image`` for an image already resolved (the launcher resolves once, then uses IDs)."""
    facts = image_files(engine, info, ref, cache=cache, progress=progress)
    config = {"config": info.config, "os": info.os, "architecture": info.architecture,
              "variant": info.variant}
    subject = subject_from_files(facts.files, config, image_id=info.id, tags=info.tags,
                                 target=ref, image_tree=facts.tree)
    subject.metadata["repo_digests"] = list(info.repo_digests)
    return subject


def load_image_archive(path: str | Path, ref: str | None = None) -> Subject:
    """Check an image from a ``docker save`` archive (plain or gzip), with no engine at all.

    When the archive holds several images, ``ref`` picks one by tag or image ID.
    """
    archive = _read_archive(str(path))
    if ref is None and len(archive.images) > 1:
        listing = "; ".join(_describe(image) for image in archive.images)
        raise InputError(f"{archive.source} holds {len(archive.images)} images ({listing}); "
                         "name the one to check")
    return image_subject(archive, _pick_by_ref(archive, ref), target=ref or archive.source)


def load_archive_images(path: str, refs: Sequence[str] = ()) -> list[Subject]:
    """The images ``refs`` name in a ``docker save`` archive, or every image it holds.

    ``path`` ``-`` reads the archive from standard input. Each image is its own
    target: its reference when named, the archive's name when it holds only one,
    else its first tag (or the archive and the image ID).
    """
    archive = _read_archive(path)
    if refs:
        return [image_subject(archive, _pick_by_ref(archive, ref), target=ref) for ref in refs]
    if len(archive.images) == 1:
        return [image_subject(archive, archive.images[0], target=archive.source)]
    return [image_subject(archive, image, target=_archive_target(archive, image))
            for image in archive.images]


def _archive_target(archive: SavedArchive, image: SavedImage) -> str:
    if image.tags:
        return image.tags[0]
    return f"{archive.source}@{image.id[:len('sha256:') + 12]}"


def _read_archive(path: str) -> SavedArchive:
    if path == STDIN:
        if sys.stdin.isatty():
            raise InputError("--input -: standard input is a terminal; pipe an archive in "
                             "(docker save IMAGE | paracle-guard image --input -)")
        # A pipe is read front to back; nothing can be skipped with a seek.
        return read_saved_archive(sys.stdin.buffer, source=STDIN_NAME)
    try:
        stream = open(path, "rb")  # noqa: SIM115 (closed below, after fstat)
        info = os.fstat(stream.fileno())
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc
    # A regular file can be skipped through with seeks; a pipe has to be read.
    size = info.st_size if stat.S_ISREG(info.st_mode) else None
    with stream:
        return read_saved_archive(stream, source=path, size=size)


def _normalise_tag(ref: str) -> str:
    """``busybox`` -> ``busybox:latest``; Docker Hub prefixes dropped, as RepoTags spell them."""
    for prefix in ("docker.io/library/", "docker.io/", "index.docker.io/library/"):
        if ref.startswith(prefix):
            ref = ref[len(prefix):]
            break
    last = ref.rsplit("/", 1)[-1]
    return ref if ":" in last or "@" in last else ref + ":latest"


def _describe(image: SavedImage) -> str:
    return ", ".join(image.tags) if image.tags else image.id[len("sha256:"):][:12]


def _pick_by_ref(archive: SavedArchive, ref: str | None) -> SavedImage:
    images = archive.images
    if ref is None:
        return images[0]
    wanted = _normalise_tag(ref)
    digest = ref.removeprefix("sha256:")
    for image in images:
        if wanted in (_normalise_tag(tag) for tag in image.tags):
            return image
        if len(digest) >= 12 and image.id.removeprefix("sha256:").startswith(digest):
            return image
    listing = "; ".join(_describe(image) for image in images)
    raise InputError(f"{archive.source} does not hold image {ref} (it holds: {listing})")


def image_subject(archive: SavedArchive, image: SavedImage, target: str) -> Subject:
    """The Subject for one image of a read archive."""
    return subject_from_files(archive.final_files(image), image.config, image_id=image.id,
                              tags=image.tags, target=target,
                              image_tree=archive.image_tree(image))


def subject_from_files(
    files: Sequence[FinalFile],
    image_config: dict[str, Any],
    *,
    image_id: str,
    tags: Sequence[str],
    target: str,
    image_tree: ImageTree | None = None,
) -> Subject:
    """The Subject of an image: its final files' facts, and its config (docker's JSON shape)."""
    # Docker writes these fields with fixed types; an archive from elsewhere may not.
    config = _mapping(image_config.get("config"))
    at_target = Location(path=target)

    passwd: list[PasswdEntry] | None = None
    group: list[GroupEntry] | None = None
    entries: list[FileEntry] = []
    packages: list[Package] = []
    managers: set[str] = set()
    unread: set[str] = set()
    for final in files:
        kept = final.file
        if kept.path == "/etc/passwd" and kept.content is not None:
            passwd = parse_passwd(kept.content)
        elif kept.path == "/etc/group" and kept.content is not None:
            group = parse_group(kept.content)
        if kept.manager == "rpm":
            unread.add("rpm")
        elif kept.manager is not None:
            managers.add(kept.manager)
        packages.extend(
            Package(
                name=record.name,
                manager=record.manager,
                version=record.version,
                size_bytes=record.size_bytes,
                location=Location(path=kept.path, line=record.line, layer=final.layer),
            )
            for record in kept.packages
        )
        if kept.reported:
            entries.append(_file_entry(final))

    metadata: dict[str, str | list[str]] = {
        "id": image_id,
        "tags": list(tags),
        "repo_digests": [],
        "os": _string(image_config.get("os")),
        "architecture": _string(image_config.get("architecture")),
        "package_databases": sorted(managers),
    }
    if _string(image_config.get("variant")):
        metadata["variant"] = _string(image_config.get("variant"))
    entrypoint = config.get("Entrypoint")
    if isinstance(entrypoint, list) and entrypoint:
        # What runs first whatever command a container is given (the launcher checks it exists).
        metadata["entrypoint"] = [str(part) for part in entrypoint]
    if unread:
        metadata["unread_package_databases"] = sorted(unread)

    return Subject(
        kind="image",
        target=target,
        user=resolve_user(_string(config.get("User")), passwd, group, at_target),
        packages=packages,
        env=_env(config.get("Env"), at_target),
        files=entries,
        volumes=sorted(str(v) for v in _mapping(config.get("Volumes"))),
        exposed_ports=_ports(config.get("ExposedPorts"), at_target),
        workdir=_string(config.get("WorkingDir")) or None,
        metadata=metadata,
        image_tree=image_tree,
    )


def _mapping(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _string(value: object) -> str:
    return value if isinstance(value, str) else ""


def _file_entry(final: FinalFile) -> FileEntry:
    kept = final.file
    return FileEntry(
        path=kept.path,
        mode=kept.mode,
        kind=kept.kind,
        uid=kept.uid,
        gid=kept.gid,
        size_bytes=kept.size,
        capabilities=kept.capabilities,
        tags=list(kept.tags),
        location=Location(path=kept.path, layer=final.layer),
    )


def _env(raw: object, location: Location) -> list[EnvVar]:
    env = []
    for item in raw if isinstance(raw, list) else []:
        name, _, value = _string(item).partition("=")
        if name:
            env.append(EnvVar(name=name, value=value, origin="config", location=location))
    return env


def _ports(raw: object, location: Location) -> list[ExposedPort]:
    ports = []
    for key in raw if isinstance(raw, dict) else {}:
        number, _, protocol = str(key).partition("/")
        if number.isdigit():
            ports.append(ExposedPort(port=int(number), protocol=protocol or "tcp",
                                     location=location))
    return sorted(ports, key=lambda p: (p.port, p.protocol))


def resolve_user(
    spec: str,
    passwd: list[PasswdEntry] | None,
    group: list[GroupEntry] | None,
    location: Location,
) -> UserFact:
    """The user a container of the image starts as, resolved the way runc resolves it.

    Empty means root. A name is looked up in the image's /etc/passwd; a number is
    used as is (with its passwd entry's primary group when it has one, else gid 0).
    ``user:group`` takes the group by number or through /etc/group.
    """
    if not spec:
        root = _by_uid(passwd, 0)
        return UserFact(spec=None, name=root.name if root else "root", uid=0, gid=0,
                        location=location)

    user_part, _, group_part = spec.partition(":")
    fact = UserFact(spec=spec, location=location)
    if user_part.isdigit():
        fact.uid = int(user_part)
        entry = _by_uid(passwd, fact.uid)
        fact.name = entry.name if entry else None
        fact.gid = entry.gid if entry else 0
    else:
        fact.name = user_part
        entry = next((e for e in passwd or [] if e.name == user_part), None)
        if entry is not None:
            fact.uid, fact.gid = entry.uid, entry.gid
        elif passwd is None:
            fact.unresolved_reason = (
                f"the image has no /etc/passwd, so user {user_part!r} cannot be resolved"
            )
        else:
            fact.unresolved_reason = f"user {user_part!r} is not in the image's /etc/passwd"

    if group_part:
        if group_part.isdigit():
            fact.gid = int(group_part)
        else:
            match = next((g for g in group or [] if g.name == group_part), None)
            fact.gid = match.gid if match else None
    return fact


def _by_uid(passwd: list[PasswdEntry] | None, uid: int) -> PasswdEntry | None:
    return next((entry for entry in passwd or [] if entry.uid == uid), None)
