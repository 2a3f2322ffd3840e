"""Build arguments as ``docker build --build-arg`` takes them."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

from paracle_guard.errors import InputError


def parse_build_args(
    pairs: Iterable[str], environ: Mapping[str, str] = os.environ
) -> dict[str, str]:
    """NAME=VALUE pairs; a bare NAME takes its value from the environment, as docker build
    does, and is left out when the environment has no such name."""
    args: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not name.strip():
            raise InputError(f"--build-arg {pair!r}: expected NAME=VALUE")
        if not sep:
            if name not in environ:
                continue
            value = environ[name]
        args[name.strip()] = value
    return args
