"""Built images as Subjects: through the Docker Engine, or from a ``docker save`` archive
or an OCI image layout.

Both paths read the same thing, the layers of the image's ``docker save``
archive, without starting a container, so they give the same facts for the same
image. The engine path reads only what its facts cache lacks, a layer at a time
where the engine's store allows it (``image_layers``), and adds what only the
engine knows (RepoDigests); its run configuration is the engine's inspect,
the engine's own reading of the image config. An archive's config is decoded
as Go decodes it (``image_config``). Config facts (user, env, ports, volumes,
workdir) are located at the target; file facts at their path inside the image
and the layer that put them there.

The user is resolved through ``identity`` against the image's /etc/passwd and
/etc/group as the engine finds them, following links, over the merged file
facts alone (cached or fresh). When those facts did not keep what a link points
to, the image is read again with that path wanted (a piped archive cannot be,
and the user is then reported as unprovable).
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from paracle_guard.disk_cache import DiskCache
from paracle_guard.engine_protocol import ImageInfo, ImageStore
from paracle_guard.errors import InputError
from paracle_guard.location import Location
from paracle_guard.progress import ReadProgress
from paracle_guard.sources.account_files import GROUP, PASSWD, AccountFile, find_account_file
from paracle_guard.sources.identity import resolve, user_fact
from paracle_guard.sources.image_archive import (
    FinalFile,
    ImageFiles,
    SavedArchive,
    SavedImage,
    read_saved_archive,
)
from paracle_guard.sources.image_config import ImageConfig, config_from_inspect
from paracle_guard.sources.image_content import ACCOUNT_FILES
from paracle_guard.sources.image_facts import ImageFacts
from paracle_guard.sources.image_layers import image_files
from paracle_guard.subject import (
    EnvVar,
    ExposedPort,
    FileEntry,
    Package,
    ParseProblem,
    Subject,
)

# Reads of an image: a second when the account files sit behind links to files the
# first read did not keep the content of, a third for a hard link's target in turn.
ACCOUNT_PASSES = 3
# Reads the image again, keeping the content of the paths given.
Reread = Callable[[frozenset[str]], ImageFacts]

STDIN = "-"
STDIN_NAME = "(stdin)"  # how reports name an archive read from standard input


def load_image(
    ref: str,
    engine: ImageStore | None = None,
    *,
    cache: DiskCache | None = None,
    progress: ReadProgress | None = None,
) -> Subject:
    """Check the local image ``ref`` (tag, ID or digest) through the engine. Never pulls.

    With a ``cache``, facts already read for this image ID, or for its layers'
    diff IDs, are not read again; what is read is stored there.
    """
    if engine is None:
        from paracle_guard.docker_client import Engine

        with Engine.connect() as fresh:
            return load_image(ref, fresh, cache=cache, progress=progress)
    return load_resolved_image(engine, engine.resolve_image(ref), ref, cache=cache,
                               progress=progress)


def load_resolved_image(
    engine: ImageStore,
    info: ImageInfo,
    ref: str,
    *,
    cache: DiskCache | None = None,
    progress: ReadProgress | None = None,
) -> Subject:
    """``load_image`` for an image already resolved (the launcher resolves once, then uses IDs)."""
    facts = image_files(engine, info, ref, cache=cache, progress=progress)

    def reread(wanted: frozenset[str]) -> ImageFacts:
        return image_files(engine, info, ref, wanted=wanted)

    subject = subject_from_facts(facts, config_from_info(info), image_id=info.id,
                                 tags=info.tags, target=ref, reread=reread)
    subject.metadata["repo_digests"] = list(info.repo_digests)
    return subject


def load_image_archive(
    path: str | Path, ref: str | None = None, *, platform: str | None = None
) -> Subject:
    """Check an image from a ``docker save`` archive (plain or gzip) or an OCI image layout
    (a directory or a tar of one), with no engine at all.

    When the archive holds several images, ``ref`` picks one by tag or image ID;
    ``platform`` (``linux/arm64``) picks among a layout's platforms, this machine's
    by default.
    """
    archive, reread = _read_archive(str(path), platform)
    if ref is None and len(archive.images) > 1:
        listing = "; ".join(_describe(image) for image in archive.images)
        raise InputError(f"{archive.source} holds {len(archive.images)} images ({listing}); "
                         "name the one to check")
    return image_subject(archive, _pick_by_ref(archive, ref), target=ref or archive.source,
                         reread=reread)


def load_archive_images(
    path: str, refs: Sequence[str] = (), *, platform: str | None = None
) -> list[Subject]:
    """The images ``refs`` name in a ``docker save`` archive or an OCI image layout (a
    directory or a tar of one), or every image it holds.

    ``path`` ``-`` reads the archive from standard input. ``platform`` picks among a
    layout's platforms (default: this machine's). Each image is its own
    target: its reference when named, the archive's name when it holds only one,
    else its first tag (or the archive and the image ID).
    """
    archive, reread = _read_archive(path, platform)
    if refs:
        return [image_subject(archive, _pick_by_ref(archive, ref), target=ref, reread=reread)
                for ref in refs]
    if len(archive.images) == 1:
        return [image_subject(archive, archive.images[0], target=archive.source, reread=reread)]
    return [image_subject(archive, image, target=_archive_target(archive, image), reread=reread)
            for image in archive.images]


def _archive_target(archive: SavedArchive, image: SavedImage) -> str:
    if image.tags:
        return image.tags[0]
    return f"{archive.source}@{image.id[:len('sha256:') + 12]}"


ArchiveReread = Callable[[frozenset[str]], SavedArchive]


def _read_archive(
    path: str, platform: str | None = None
) -> tuple[SavedArchive, ArchiveReread | None]:
    """The archive (or OCI layout directory) read once, and a way to read it again (None for
    a pipe). ``platform`` picks among an OCI layout's platforms."""
    if path == STDIN:
        if sys.stdin.isatty():
            raise InputError("--input -: standard input is a terminal; pipe an archive in "
                             "(docker save IMAGE | paracle-guard image --input -)")
        # A pipe is read front to back; nothing can be skipped with a seek.
        return read_saved_archive(sys.stdin.buffer, source=STDIN_NAME, platform=platform), None
    if os.path.isdir(path):
        return _read_layout_directory(path, platform)
    try:
        stream = open(path, "rb")  # noqa: SIM115 (closed below, after fstat)
        info = os.fstat(stream.fileno())
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc
    # A regular file can be skipped through with seeks; a pipe has to be read.
    seekable = stat.S_ISREG(info.st_mode)
    size = info.st_size if seekable else None
    with stream:
        archive = read_saved_archive(stream, source=path, size=size, platform=platform)

    def reread(wanted: frozenset[str]) -> SavedArchive:
        with open(path, "rb") as again:
            return read_saved_archive(again, source=path, size=size, wanted=wanted,
                                      platform=platform)

    return archive, reread if seekable else None


def _read_layout_directory(path: str, platform: str | None) -> tuple[SavedArchive, ArchiveReread]:
    """An OCI image layout kept as a directory, and a way to read it again."""
    from paracle_guard.sources.oci_directory import read_layout_directory

    def read(wanted: frozenset[str] = ACCOUNT_FILES) -> SavedArchive:
        return read_layout_directory(Path(path), source=path, wanted=wanted, platform=platform)

    return read(), read


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


def image_subject(
    archive: SavedArchive,
    image: SavedImage,
    target: str,
    *,
    reread: ArchiveReread | None = None,
) -> Subject:
    """The Subject for one image of a read archive; its config decoded as Go decodes it.

    ``reread`` reads the archive again when the account files need paths a read did
    not keep.
    """
    facts = ImageFacts(files=archive.final_files(image), tree=archive.image_tree(image))
    again: Reread | None = None
    if reread is not None:
        def again(wanted: frozenset[str]) -> ImageFacts:
            fresh = reread(wanted)
            same = next((i for i in fresh.images if i.id == image.id), None)
            if same is None:
                raise InputError(f"{archive.source} changed while it was being read")
            return ImageFacts(files=fresh.final_files(same), tree=fresh.image_tree(same))
    return subject_from_facts(facts, image.config, image_id=image.id, tags=image.tags,
                              target=target, reread=again)


def config_from_info(info: ImageInfo) -> ImageConfig:
    """The run configuration of an engine's image: its inspect, as the engine decoded it."""
    return config_from_inspect({
        "Config": info.config, "Os": info.os, "Architecture": info.architecture,
        "Variant": info.variant, "RootFS": {"Layers": list(info.diff_ids)},
    })


def subject_from_facts(
    facts: ImageFacts,
    run_config: ImageConfig,
    *,
    image_id: str,
    tags: Sequence[str],
    target: str,
    reread: Reread | None = None,
) -> Subject:
    """The Subject of an image: its final files' facts, and its run configuration.

    ``reread`` reads the image again when the account files need paths the facts
    did not keep; without it such a user is reported as unprovable.
    """
    at_target = Location(path=target)
    entries, packages, managers, unread = _final_files(facts)
    metadata = _metadata(run_config, image_id, tags, managers, unread)
    passwd, group = _account_files(facts, reread)
    identity = resolve(run_config.user, passwd, group)
    return Subject(
        kind="image",
        target=target,
        user=user_fact(run_config.user, identity, at_target,
                       windows=run_config.os == "windows"),
        packages=packages,
        env=_env(run_config.env, at_target),
        files=entries,
        volumes=list(run_config.volumes),
        exposed_ports=_ports(run_config.exposed_ports, at_target),
        workdir=run_config.working_dir or None,
        metadata=metadata,
        image_tree=facts.tree,
        # An archive's config is read exactly as Go reads it, so a config that relies
        # on Go's reading is reported but still judged by every rule; one the engine
        # would not load at all is judged only as unparseable. (An engine's inspect is
        # its own reading: nothing to report.)
        parse_problems=[
            *(ParseProblem(message=problem, location=at_target)
              for problem in run_config.problems),
            *(ParseProblem(message=ambiguity, location=at_target, blocking=False)
              for ambiguity in run_config.ambiguities),
        ],
    )


def _final_files(
    facts: ImageFacts,
) -> tuple[list[FileEntry], list[Package], set[str], set[str]]:
    """The reported files, the installed packages, the package databases read, and
    those that could not be read (rpm's)."""
    entries: list[FileEntry] = []
    packages: list[Package] = []
    managers: set[str] = set()
    unread: set[str] = set()
    for final in facts.files:
        kept = final.file
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
    return entries, packages, managers, unread


def _metadata(run_config: ImageConfig, image_id: str, tags: Sequence[str],
              managers: set[str], unread: set[str]) -> dict[str, str | list[str]]:
    metadata: dict[str, str | list[str]] = {
        "id": image_id,
        "tags": list(tags),
        "repo_digests": [],
        "os": run_config.os,
        "architecture": run_config.architecture,
        "package_databases": sorted(managers),
    }
    if run_config.variant:
        metadata["variant"] = run_config.variant
    if run_config.entrypoint:
        # What runs first whatever command a container is given (the launcher checks it exists).
        metadata["entrypoint"] = list(run_config.entrypoint)
    if unread:
        metadata["unread_package_databases"] = sorted(unread)
    return metadata


def _account_files(facts: ImageFacts, reread: Reread | None) -> tuple[AccountFile, AccountFile]:
    """/etc/passwd and /etc/group as the engine finds them, reading again if links need it."""
    wanted = set(ACCOUNT_FILES)
    for attempt in range(ACCOUNT_PASSES):
        view = files_view(facts)
        passwd, group = find_account_file(view, PASSWD), find_account_file(view, GROUP)
        needed = passwd.need | group.need
        if not needed or (needed <= wanted and attempt) or reread is None \
                or attempt == ACCOUNT_PASSES - 1:
            break
        wanted |= needed
        facts = reread(frozenset(wanted))
    if reread is None:
        suffix = " (the archive came through a pipe, which cannot be read twice: give it as a file)"
        passwd, group = (_with_suffix(passwd, suffix), _with_suffix(group, suffix))
    return passwd, group


def files_view(facts: ImageFacts) -> ImageFiles:
    """The image's final filesystem path by path: a pure function of its merged facts."""
    return ImageFiles(facts.tree, {final.file.path: final.file for final in facts.files})


def _with_suffix(account: AccountFile, suffix: str) -> AccountFile:
    if account.status != "unknown" or not account.need:
        return account
    return AccountFile("unknown", path=account.path, note=account.note + suffix,
                       need=account.need)


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


def _env(raw: list[str], location: Location) -> list[EnvVar]:
    env = []
    for item in raw:
        name, _, value = item.partition("=")
        if name:
            env.append(EnvVar(name=name, value=value, origin="config", location=location))
    return env


def _ports(raw: list[str], location: Location) -> list[ExposedPort]:
    ports = []
    for key in raw:
        number, _, protocol = key.partition("/")
        # The engine's nat.Port: ASCII digits, a port number (str.isdigit() takes "²").
        if number.isascii() and number.isdigit() and len(number) <= 5 and int(number) <= 65535:
            ports.append(ExposedPort(port=int(number), protocol=protocol or "tcp",
                                     location=location))
    return sorted(ports, key=lambda p: (p.port, p.protocol))
