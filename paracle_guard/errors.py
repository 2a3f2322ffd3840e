"""Errors a user can fix. Each carries one clear line; the CLI prints it and exits 2."""

from __future__ import annotations


class GuardError(Exception):
    """Base class for every error the user can act on (bad input, missing engine...)."""

    exit_code = 2


class PolicyError(GuardError):
    """A policy file that cannot be read, parsed, validated or resolved."""


class InputError(GuardError):
    """A file or argument given on the command line that cannot be used."""


class EngineUnavailable(GuardError):
    """The Docker Engine cannot be reached."""


class ImageNotFound(GuardError):
    """An image reference that does not resolve to a local image (we never pull)."""
