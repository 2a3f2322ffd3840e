"""The one door to the Docker Engine: ``Engine`` implements ``engine_protocol.ContainerEngine``.

Everything that talks to the engine goes through an ``Engine``; it turns the
SDK's many failure modes into one-line ``GuardError``s. The Docker SDK is
imported only when an engine is actually needed, so commands that never touch
Docker (``paracle-guard lint``) never pay for it. Nothing here ever pulls.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import os
import tarfile
from collections.abc import Callable, Iterator, Sequence
from types import ModuleType
from typing import Any

from paracle_guard.engine_protocol import (
    ContainerFile,
    EngineNotFound,
    EngineRefused,
    ImageInfo,
    ImageStore,
)
from paracle_guard.errors import EngineUnavailable, GuardError, ImageNotFound, InputError

__all__ = ["ContainerFile", "Engine", "ImageInfo", "connect", "resolve_image"]

DEFAULT_HOST = "unix:///var/run/docker.sock"
# Connecting is a local socket or a nearby host: an engine that takes longer is not there.
CONNECT_TIMEOUT = 5.0
# An engine exports the whole image before the first byte of a save arrives; a large
# image on a slow disk needs minutes, not seconds.
OPERATION_TIMEOUT = 600.0
SAVE_CHUNK_SIZE = 1 << 20


def _sdk() -> tuple[ModuleType, ModuleType]:
    """The Docker SDK and requests, imported on first use (they cost ~100 ms to import).

    Imported by name because the SDK ships no type information: its objects are
    handled as Any and every result is turned into our own types right away.
    """
    docker = importlib.import_module("docker")
    importlib.import_module("docker.errors")
    return docker, importlib.import_module("requests")


def engine_host() -> str:
    """Where the engine is expected, for messages: DOCKER_HOST or the default socket."""
    return os.environ.get("DOCKER_HOST") or DEFAULT_HOST


def short_reason(exc: BaseException) -> str:
    """The most telling short cause in an exception chain (the OS error, if there is one)."""
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, OSError) and current.strerror:
            return current.strerror
        if isinstance(current, TimeoutError):
            return "timed out"
        pending.extend(arg for arg in current.args if isinstance(arg, BaseException))
        pending.extend(e for e in (current.__cause__, current.__context__) if e is not None)
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _unavailable(exc: BaseException) -> EngineUnavailable:
    return EngineUnavailable(
        f"cannot reach the Docker Engine at {engine_host()}: {short_reason(exc)}; "
        "start it or set DOCKER_HOST"
    )


class Engine:
    """A connected Docker Engine."""

    def __init__(self, client: Any) -> None:
        self.client = client  # a docker.DockerClient, for code that needs the raw SDK
        self.host = engine_host()

    @classmethod
    def connect(cls, timeout: float = CONNECT_TIMEOUT) -> Engine:
        """Connect from the environment (DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH)."""
        docker, requests = _sdk()
        try:
            # version="auto" asks the engine for its API version: a connection test for free.
            client = docker.from_env(version="auto", timeout=timeout)
        except (docker.errors.DockerException, requests.RequestException, OSError) as exc:
            raise _unavailable(exc) from exc
        client.api.timeout = OPERATION_TIMEOUT
        return cls(client)

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def resolve_image(self, ref: str) -> ImageInfo:
        """The local image ``ref`` names (tag, ID or digest). Never pulls."""
        docker, requests = _sdk()
        try:
            attrs = self.client.api.inspect_image(ref)
        except docker.errors.NotFound as exc:
            raise ImageNotFound(
                f"image {ref} is not present locally; build or pull it first "
                "(paracle-guard never pulls)"
            ) from exc
        except docker.errors.APIError as exc:
            if exc.status_code is not None and 400 <= exc.status_code < 500:
                raise InputError(f"{ref!r} is not a usable image reference: "
                                 f"{exc.explanation or exc}") from exc
            raise _unavailable(exc) from exc
        except (docker.errors.DockerException, requests.RequestException) as exc:
            raise _unavailable(exc) from exc

        config = attrs.get("Config") or {}
        rootfs = attrs.get("RootFS") or {}
        graph = attrs.get("GraphDriver") or {}
        return ImageInfo(
            id=attrs["Id"],
            tags=tuple(attrs.get("RepoTags") or ()),
            repo_digests=tuple(attrs.get("RepoDigests") or ()),
            os=attrs.get("Os") or "",
            architecture=attrs.get("Architecture") or "",
            config=config,
            diff_ids=tuple(rootfs.get("Layers") or ()),
            size=int(attrs.get("Size") or 0),
            variant=attrs.get("Variant") or "",
            graph_driver=str(graph.get("Name") or ""),
            graph_data={str(k): str(v) for k, v in (graph.get("Data") or {}).items()},
        )

    def save_image(self, image_id: str, chunk_size: int = SAVE_CHUNK_SIZE) -> Iterator[bytes]:
        """Stream the ``docker save`` archive of one image, chunk by chunk, as the engine sends it.

        Chunks are forwarded as they arrive: the image is never held in memory or on disk.
        """
        docker, requests = _sdk()
        try:
            chunks = self.client.api.get_image(image_id, chunk_size=chunk_size)
            yield from chunks
        except docker.errors.NotFound as exc:
            raise ImageNotFound(
                f"image {image_id} disappeared from the engine while it was being read"
            ) from exc
        except docker.errors.APIError as exc:
            raise GuardError(
                f"the Docker Engine at {self.host} could not save image {image_id}: "
                f"{exc.explanation or exc}"
            ) from exc
        except (docker.errors.DockerException, requests.RequestException) as exc:
            raise EngineUnavailable(
                f"lost the Docker Engine at {self.host} while reading image {image_id}: "
                f"{short_reason(exc)}"
            ) from exc

    # --- containers and volumes (paracle-guard container, the launcher's verification) ---

    def inspect_container(self, ref: str) -> dict[str, Any]:
        """The ``docker inspect`` document of container ``ref`` (name, ID or ID prefix)."""
        docker, requests = _sdk()
        try:
            return dict(self.client.api.inspect_container(ref))
        except docker.errors.NotFound as exc:
            raise InputError(f"no container {ref!r} on the Docker Engine") from exc
        except docker.errors.APIError as exc:
            if exc.status_code is not None and 400 <= exc.status_code < 500:
                raise InputError(f"{ref!r} is not a usable container reference: "
                                 f"{exc.explanation or exc}") from exc
            raise self._failed(f"inspect container {ref}", exc) from exc
        except (docker.errors.DockerException, requests.RequestException) as exc:
            raise _unavailable(exc) from exc

    def list_containers(self, *, labels: Sequence[str] = ()) -> list[str]:
        """IDs of every container, in any state, carrying all of ``labels`` (KEY or KEY=VALUE)."""
        docker, requests = _sdk()
        try:
            listed = self.client.api.containers(
                all=True, filters={"label": list(labels)} if labels else None
            )
        except docker.errors.APIError as exc:
            raise self._failed("list containers", exc) from exc
        except (docker.errors.DockerException, requests.RequestException) as exc:
            raise _unavailable(exc) from exc
        return [str(entry["Id"]) for entry in listed]

    def inspect_image_document(self, image_id: str) -> dict[str, Any] | None:
        """The raw inspect document of an image, or None when the engine no longer has it."""
        return self._optional(lambda: self.client.api.inspect_image(image_id),
                              f"inspect image {image_id}")

    def info(self, timeout: float = CONNECT_TIMEOUT) -> dict[str, Any]:
        """The engine's ``docker info`` (its cgroup version, default security options...),
        answered within ``timeout`` seconds: a question about defaults must not wait
        minutes on a busy engine."""
        saved = self.client.api.timeout
        self.client.api.timeout = timeout
        try:
            return self._optional(lambda: self.client.api.info(), "report its settings") or {}
        finally:
            self.client.api.timeout = saved

    def inspect_volume(self, name: str) -> dict[str, Any] | None:
        """The inspect document of a volume (driver and options), or None when it is gone."""
        return self._optional(lambda: self.client.api.inspect_volume(name),
                              f"inspect volume {name}")

    def read_container_file(self, container: str, path: str, limit: int) -> ContainerFile | None:
        """``path`` in a container's filesystem (created or running); None when it is missing.

        A symlink is not followed: its ``link_target`` is the path the engine resolves
        it to inside the container's root. A regular file's content is given up to
        ``limit`` bytes (None beyond); anything else is kind "other", and a path the
        engine answers it cannot read is "unreadable".
        """
        docker, requests = _sdk()
        try:
            chunks, stat = self.client.api.get_archive(container, path)
            found = archive_file(stat, limit)
            if found is not None:
                chunks.close()
                return found
            # A tar of one small file: the content plus headers and padding.
            data = b"".join(chunks)
        except docker.errors.NotFound:
            return None
        except docker.errors.APIError as exc:
            # The engine answered but could not read it (a path through a file, a
            # container being removed): unknown to the caller, not a failed command.
            return ContainerFile("unreadable", reason=str(exc.explanation or exc))
        except (docker.errors.DockerException, requests.RequestException) as exc:
            raise _unavailable(exc) from exc
        return archived_file(data, limit)

    # --- running one container (the launcher's backend, the runtime probe) ---

    @contextlib.contextmanager
    def _calling(self, what: str) -> Iterator[None]:
        """The SDK's errors as the protocol's: refused (404: not found), or unreachable."""
        docker, requests = _sdk()
        try:
            yield
        except docker.errors.APIError as exc:
            explanation = exc.explanation or str(exc)
            if isinstance(explanation, bytes):
                explanation = explanation.decode("utf-8", "replace")
            kind = EngineNotFound if isinstance(exc, docker.errors.NotFound) else EngineRefused
            raise kind(f"the Docker Engine at {self.host} could not {what}: {explanation}",
                       status=exc.status_code, explanation=str(explanation).strip()) from exc
        except (docker.errors.DockerException, requests.RequestException, OSError) as exc:
            raise EngineUnavailable(f"lost the Docker Engine at {self.host}: {exc}") from exc

    def version(self) -> dict[str, Any]:
        with self._calling("report its version"):
            return dict(self.client.api.version())

    def create_container(self, body: dict[str, Any], name: str | None = None) -> dict[str, Any]:
        with self._calling("create a container"):
            return dict(self.client.api.create_container_from_config(body, name=name))

    def find_container(self, ref: str) -> dict[str, Any] | None:
        try:
            with self._calling(f"inspect container {ref}"):
                return dict(self.client.api.inspect_container(ref))
        except EngineNotFound:
            return None

    def attach(self, container: str, *, stdin: bool) -> Any:
        params = {"stdout": 1, "stderr": 1, "stream": 1, "stdin": 1 if stdin else 0}
        with self._calling(f"attach to container {container}"):
            return self.client.api.attach_socket(container, params=params)

    def start(self, container: str) -> None:
        with self._calling(f"start container {container}"):
            self.client.api.start(container)

    def wait(self, container: str, timeout: float | None) -> dict[str, Any] | None:
        _, requests = _sdk()
        try:
            with self._calling(f"wait for container {container}"):
                # None here is "no timeout", not the client's operation timeout: a
                # command may run for longer than any request should.
                return dict(self.client.api.wait(container, timeout=timeout))
        except EngineUnavailable as exc:
            if isinstance(exc.__cause__, requests.exceptions.ReadTimeout):
                return None
            raise

    def kill(self, container: str) -> None:
        try:
            with self._calling(f"kill container {container}"):
                self.client.api.kill(container)
        except EngineRefused as exc:
            if exc.status not in (404, 409):  # gone, or not running any more
                raise

    def remove_container(self, container: str) -> None:
        with self._calling(f"remove container {container}"):
            self.client.api.remove_container(container, v=True, force=True)

    def logs(self, container: str) -> bytes:
        with self._calling(f"read the logs of container {container}"):
            return bytes(self.client.api.logs(container))

    def import_image(self, archive: bytes, *, changes: Sequence[str]) -> str:
        with self._calling("import an image"):
            answer = self.client.api.import_image_from_data(archive, changes=list(changes))
        return _imported_id(answer)

    def remove_image(self, image: str) -> None:
        with self._calling(f"remove image {image}"):
            self.client.api.remove_image(image, force=True)

    def _optional(self, call: Callable[[], Any], what: str) -> dict[str, Any] | None:
        docker, requests = _sdk()
        try:
            return dict(call())
        except docker.errors.NotFound:
            return None
        except docker.errors.APIError as exc:
            raise self._failed(what, exc) from exc
        except (docker.errors.DockerException, requests.RequestException) as exc:
            raise _unavailable(exc) from exc

    def _failed(self, what: str, exc: Any) -> GuardError:
        return EngineRefused(
            f"the Docker Engine at {self.host} could not {what}: {exc.explanation or exc}",
            status=exc.status_code, explanation=str(exc.explanation or exc))


def _imported_id(response: Any) -> str:
    """The image ID in the engine's answer to an import (a JSON line, or several)."""
    text = response.decode() if isinstance(response, bytes) else str(response)
    for line in reversed(text.splitlines()):
        status = json.loads(line).get("status", "") if line.strip().startswith("{") else ""
        if status.startswith("sha256:"):
            return str(status)
    raise GuardError(f"the engine did not say which image it imported: {text[:200]}")


def archive_file(stat: Any, limit: int) -> ContainerFile | None:
    """What the archive endpoint's path stat alone says: a link, or a file over ``limit``."""
    if not isinstance(stat, dict):
        return None
    link_target = stat.get("linkTarget")
    if isinstance(link_target, str) and link_target:
        return ContainerFile("symlink", link_target=link_target)
    size = stat.get("size")
    if isinstance(size, int) and size > limit:
        return ContainerFile("file")
    return None


def archived_file(archive_bytes: bytes, limit: int) -> ContainerFile:
    """The one entry of a ``GET .../archive`` tar: a regular file's content, or its kind."""
    try:
        with tarfile.open(fileobj=io.BytesIO(archive_bytes)) as archive:
            member = archive.next()
            if member is None or not member.isfile():
                return ContainerFile("other")
            extracted = archive.extractfile(member)
            if extracted is None or member.size > limit:
                return ContainerFile("file")
            return ContainerFile("file", content=extracted.read())
    except tarfile.TarError:
        return ContainerFile("other")


def connect(timeout: float = CONNECT_TIMEOUT) -> Engine:
    return Engine.connect(timeout)


def resolve_image(ref: str, engine: Engine | None = None) -> ImageInfo:
    """Resolve ``ref`` on ``engine`` (or a fresh connection from the environment)."""
    if engine is not None:
        return engine.resolve_image(ref)
    with Engine.connect() as fresh:
        return fresh.resolve_image(ref)


class ChunkStream(io.RawIOBase):
    """A readable raw stream over an iterator of byte chunks (wrap it in io.BufferedReader)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        super().__init__()
        self._chunks = chunks
        self._current = memoryview(b"")

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        # Stops the engine's response when a reader gives up half-way (e.g. on bad input).
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()
        super().close()

    def readinto(self, buffer: Any) -> int:
        while not self._current:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._current = memoryview(chunk)
        target = memoryview(buffer).cast("B")
        count = min(len(target), len(self._current))
        target[:count] = self._current[:count]
        self._current = self._current[count:]
        return count


def open_save_stream(engine: ImageStore, image_id: str) -> io.BufferedReader:
    """The ``docker save`` archive of ``image_id`` as a buffered, forward-only binary file."""
    return io.BufferedReader(ChunkStream(engine.save_image(image_id)), buffer_size=SAVE_CHUNK_SIZE)
