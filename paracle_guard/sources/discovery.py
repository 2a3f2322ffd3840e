"""Finding the Dockerfiles under the paths a user names."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from fnmatch import fnmatchcase

from paracle_guard.errors import InputError

DOCKERFILE_PATTERNS = (
    "Dockerfile",
    "Dockerfile.*",
    "*.Dockerfile",
    "*.dockerfile",
    "Containerfile",
    "Containerfile.*",
)

# Folders that hold other people's code or tool state, never the project's own images.
SKIPPED_FOLDERS = frozenset({"node_modules", "__pycache__", "site-packages", "venv"})


def is_dockerfile_name(name: str) -> bool:
    return any(fnmatchcase(name, pattern) for pattern in DOCKERFILE_PATTERNS)


def find_dockerfiles(paths: Iterable[str]) -> Iterator[str]:
    """Files given by name are taken as they are; folders are searched recursively.

    Paths keep the spelling the user gave (joined with what was found under them),
    so findings and waiver globs read the way the user wrote them.
    """
    for path in paths:
        if os.path.isdir(path):
            yield from _walk(path)
        elif os.path.exists(path):
            yield path
        else:
            raise InputError(f"{path}: no such file or directory")


def _walk(folder: str) -> Iterator[str]:
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(
            d for d in dirs if not d.startswith(".") and d not in SKIPPED_FOLDERS
        )
        for name in sorted(files):
            if is_dockerfile_name(name):
                yield os.path.join(root, name)
