"""Sizes as Docker spells them: ``512m``, ``1g``, ``1.5GiB``, ``1073741824``.

One parser for every place a size is read (policy limits, compose files, the
``--memory`` of the launcher), so that ``512m`` means the same bytes to the
rule that checks a limit and to the source that read it. It follows the Docker
CLI and Compose (go-units ``RAMInBytes``): units are binary (``k`` = 1024),
case-insensitive, with an optional ``i`` and ``b`` (``m``, ``mb``, ``MiB`` are
all 2**20), an optional space before the unit, and a decimal fraction.
"""

from __future__ import annotations

import re

# Go's \d is ASCII only; Python's would take any Unicode digit (Arabic-Indic too).
_SIZE = re.compile(r"([0-9]+(?:\.[0-9]+)?) ?([kmgtp])?i?b?", re.IGNORECASE)
_MULTIPLIERS = {None: 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def parse_size(value: str | int) -> int:
    """Bytes in ``value``; raises ValueError for anything Docker would refuse.

    >>> parse_size("512m"), parse_size("1.5GiB"), parse_size(1024)
    (536870912, 1610612736, 1024)
    """
    if isinstance(value, bool):  # a YAML boolean is not a size, though it is an int
        raise ValueError(f"{value!r} is not a size")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"{value} is not a size: negative")
        return value
    match = _SIZE.fullmatch(value.strip())
    if match is None:
        raise ValueError(f"{value!r} is not a size (expected digits and a unit: 512m, 1g, 1.5GiB)")
    number, unit = match.groups()
    # Docker truncates toward zero after multiplying (int64(size * multiplier)). A number
    # float() cannot hold is no size; one beyond int64 is left to the caller, which
    # knows the limit that applies (the engine's, a policy's).
    size = float(number) * _MULTIPLIERS[unit.lower() if unit else None]
    if size == float("inf"):
        raise ValueError(f"{value!r} is not a size: too large")
    return int(size)


def format_size(size: int) -> str:
    """``536870912`` -> ``512MiB``: the largest unit that divides exactly, for messages."""
    for suffix, multiplier in (("PiB", 1 << 50), ("TiB", 1 << 40), ("GiB", 1 << 30),
                               ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= multiplier and size % multiplier == 0:
            return f"{size // multiplier}{suffix}"
    return f"{size} bytes"
