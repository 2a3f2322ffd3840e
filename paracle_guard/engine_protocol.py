"""What paracle-guard needs from a container engine, as typed protocols.

``docker_client.Engine`` implements all of them for the Docker Engine API. Each
caller asks for the narrowest role it uses, so another engine that speaks the
same documents (Podman's Docker-compatible API; containerd behind a shim) is one
new module implementing ``ContainerEngine``, chosen where ``Engine.connect()`` is
called today. Nothing here imports an SDK: ``paracle-guard lint`` imports this
module for free.

The documents passed around are the Docker Engine API's own (an image or
container inspect, ``docker info``, the ``POST /containers/create`` body), because
the rules and the launcher's verification read those fields; an engine with
another native format translates at its door, as ``docker_client`` turns SDK
errors into ``GuardError``s at its own.

Errors: an engine that cannot be reached raises ``EngineUnavailable``; one that
answers with an error raises ``EngineRefused`` (``EngineNotFound`` for a 404),
whose ``explanation`` is the engine's own words.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from paracle_guard.errors import GuardError


class EngineRefused(GuardError):
    """The engine answered a request with an error."""

    def __init__(self, message: str, *, status: int | None = None,
                 explanation: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.explanation = explanation or message


class EngineNotFound(EngineRefused):
    """The engine has no such object (HTTP 404)."""


@dataclass(frozen=True)
class ContainerFile:
    """One path of a container's filesystem, as the engine's archive endpoint gives it."""

    kind: Literal["file", "symlink", "other", "unreadable"]
    content: bytes | None = None  # a regular file's bytes, when within the limit asked
    link_target: str = ""  # a symlink's target, resolved inside the container's root
    reason: str = ""  # unreadable: what the engine said


@dataclass(frozen=True)
class ImageInfo:
    """A local image as the engine describes it."""

    id: str  # "sha256:..."
    tags: tuple[str, ...]
    repo_digests: tuple[str, ...]
    os: str
    architecture: str
    # The image's run configuration (User, Env, ExposedPorts, Volumes, WorkingDir...).
    config: dict[str, Any]
    diff_ids: tuple[str, ...]  # layer diff IDs, bottom first
    size: int
    variant: str = ""
    # The storage driver ("overlay2") and its folders (UpperDir, LowerDir...), where local.
    graph_driver: str = ""
    graph_data: dict[str, str] = field(default_factory=dict)


class ContainerReader(Protocol):
    """What gathering a container's facts needs (``sources.container``; the authorization
    plugin's bounded ``EngineReader`` is one too)."""

    host: str  # where the engine is: a local socket lets host paths be read

    def inspect_image_document(self, image_id: str) -> dict[str, Any] | None: ...

    def inspect_volume(self, name: str) -> dict[str, Any] | None: ...

    def read_container_file(
        self, container: str, path: str, limit: int
    ) -> ContainerFile | None: ...


class ImageStore(Protocol):
    """Local images: resolved by reference (never pulled) and read layer by layer."""

    host: str

    def resolve_image(self, ref: str) -> ImageInfo: ...

    def inspect_image_document(self, image_id: str) -> dict[str, Any] | None: ...

    def save_image(self, image_id: str) -> Iterator[bytes]:
        """The image's ``docker save`` archive (legacy or OCI form), chunk by chunk."""
        ...


class ContainerInventory(Protocol):
    """Containers by reference or by label (``paracle-guard container``)."""

    def inspect_container(self, ref: str) -> dict[str, Any]: ...

    def list_containers(self, *, labels: Sequence[str] = ()) -> list[str]: ...


class EngineSettings(Protocol):
    """The engine's own description: defaults, runtimes, versions (``doctor``, compose)."""

    host: str

    def version(self) -> dict[str, Any]: ...

    def info(self, timeout: float = ...) -> dict[str, Any]: ...


class ContainerRunner(Protocol):
    """What the launcher's backend does to run one container, and the runtime probe."""

    host: str

    def create_container(self, body: dict[str, Any], name: str | None = None) -> dict[str, Any]:
        """``POST /containers/create``: the engine's answer (``Id``, ``Warnings``)."""
        ...

    def find_container(self, ref: str) -> dict[str, Any] | None:
        """The inspect document, or None when there is no such container."""
        ...

    def attach(self, container: str, *, stdin: bool) -> Any:
        """A socket streaming the container's multiplexed stdout/stderr (and taking stdin)."""
        ...

    def start(self, container: str) -> None: ...

    def wait(self, container: str, timeout: float | None) -> dict[str, Any] | None:
        """The wait answer (``StatusCode``, ``Error``); None when still running at ``timeout``."""
        ...

    def kill(self, container: str) -> None:
        """Kill it; a container already gone or stopped is not an error."""
        ...

    def remove_container(self, container: str) -> None:
        """Force-remove with its anonymous volumes; EngineNotFound when already gone."""
        ...

    def logs(self, container: str) -> bytes: ...

    def import_image(self, archive: bytes, *, changes: Sequence[str]) -> str:
        """Import a root filesystem tar as an image; its ID."""
        ...

    def remove_image(self, image: str) -> None: ...


class ContainerEngine(ContainerReader, ImageStore, ContainerInventory, EngineSettings,
                      ContainerRunner, Protocol):
    """Everything above: what a new engine module implements (see CONTRIBUTING.md)."""

    def close(self) -> None: ...
