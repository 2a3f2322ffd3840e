"""Finding the Dockerfiles and the Kubernetes manifests under the paths a user names."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from fnmatch import fnmatchcase

from paracle_guard.errors import InputError

# Docker's own names: "Dockerfile", and "dockerfile" when that is missing (docker/cli
# build/context.go); BuildKit's "<name>.dockerignore" beside a Dockerfile is its
# ignore file, not a Dockerfile (dockerui/config.go). Containerfile is Podman's name,
# and "Dockerfile.dev" / "app.Dockerfile" the common spellings of several per project.
DOCKERFILE_PATTERNS = (
    "Dockerfile",
    "dockerfile",
    "Dockerfile.*",
    "*.Dockerfile",
    "*.dockerfile",
    "Containerfile",
    "Containerfile.*",
)
# Names that match a pattern above but are not Dockerfiles: BuildKit's per-Dockerfile
# ignore file, and documentation about a Dockerfile ("Dockerfile.md").
NOT_DOCKERFILE_SUFFIXES = (
    ".dockerignore", ".md", ".markdown", ".mdx", ".rst", ".txt", ".adoc", ".asciidoc",
    ".html", ".htm", ".org", ".pdf",
)

# What kubectl apply -f reads from a folder.
MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")

# Folders that hold other people's code or tool state, never the project's own images.
SKIPPED_FOLDERS = frozenset({"node_modules", "__pycache__", "site-packages", "venv"})


def is_dockerfile_name(name: str) -> bool:
    if name.lower().endswith(NOT_DOCKERFILE_SUFFIXES):
        return False
    return any(fnmatchcase(name, pattern) for pattern in DOCKERFILE_PATTERNS)


def find_dockerfiles(paths: Iterable[str]) -> Iterator[str]:
    """Files given by name are taken as they are; folders are searched recursively.

    Paths keep the spelling the user gave (joined with what was found under them),
    so findings and waiver globs read the way the user wrote them.
    """
    return _find(paths, is_dockerfile_name)


def is_manifest_name(name: str) -> bool:
    return name.endswith(MANIFEST_SUFFIXES)


def find_manifests(paths: Iterable[str]) -> Iterator[str]:
    """Kubernetes manifests, found as ``find_dockerfiles`` finds Dockerfiles."""
    return _find(paths, is_manifest_name)


def _find(paths: Iterable[str], wanted: Callable[[str], bool]) -> Iterator[str]:
    for path in paths:
        if os.path.isdir(path):
            yield from _walk(path, wanted)
        elif os.path.exists(path):
            yield path
        else:
            raise InputError(f"{path}: no such file or directory")


def _walk(folder: str, wanted: Callable[[str], bool]) -> Iterator[str]:
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(
            d for d in dirs if not d.startswith(".") and d not in SKIPPED_FOLDERS
        )
        for name in sorted(files):
            if wanted(name):
                yield os.path.join(root, name)
