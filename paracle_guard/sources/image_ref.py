"""Docker image references: ``[registry/]repository[:tag][@digest]``.

Normalised the way the Docker CLI does it, so that policies can match
registries and repositories without caring how the Dockerfile spelled them:
a first path component is a registry only when it contains "." or ":" or is
"localhost"; everything else lives on docker.io, where single-name images are
``library/`` images.
"""

from __future__ import annotations

from typing import NamedTuple

DOCKER_HUB = "docker.io"
_DOCKER_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})


class ImageRef(NamedTuple):
    registry: str
    repository: str
    tag: str | None
    digest: str | None


def parse_image_ref(ref: str) -> ImageRef:
    """Split a reference; never fails (an odd reference yields odd parts, not an error)."""
    name, _, digest = ref.partition("@")
    tag: str | None = None
    colon = name.rfind(":")
    # A colon before the last slash belongs to a registry port, not to a tag.
    if colon > name.rfind("/"):
        tag = name[colon + 1:]
        name = name[:colon]
    first, slash, rest = name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        registry, repository = first, rest
    else:
        registry, repository = DOCKER_HUB, name
    if registry in _DOCKER_HUB_ALIASES:
        registry = DOCKER_HUB
        if "/" not in repository:
            repository = "library/" + repository
    return ImageRef(registry, repository, tag or None, digest or None)
