"""Errors a user can fix. Each carries one clear line; the CLI prints it and exits 2."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from paracle_guard.exit_codes import ERROR


class GuardError(Exception):
    """Base class for every error the user can act on (bad input, missing engine...)."""

    exit_code = ERROR


class PolicyError(GuardError):
    """A policy file that cannot be read, parsed, validated or resolved."""


class InputError(GuardError):
    """A file or argument given on the command line that cannot be used."""


class UsageError(InputError):
    """A command line that cannot mean anything (options that contradict each other, a
    missing argument): the CLI follows the line with a pointer to the command's help."""


class EngineUnavailable(GuardError):
    """The Docker Engine cannot be reached."""


class ImageNotFound(GuardError):
    """An image reference that does not resolve to a local image (we never pull)."""


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'root-user'?)`` for the closest of ``choices``, or "" when none is close.

    Case and ``_``/``-`` are ignored when comparing, as a user mistypes them.
    """

    def folded(text: str) -> str:
        return text.lower().replace("_", "-")

    by_folded = {folded(choice): choice for choice in choices}
    close = difflib.get_close_matches(folded(word), list(by_folded), n=1, cutoff=0.75)
    return f" (did you mean {by_folded[close[0]]!r}?)" if close else ""
