"""getopt-style option parsing, the way the GNU and BusyBox tools the shell reader knows parse.

Every tool reader in ``sources/`` (wrappers, package managers, file commands,
account tools) splits its arguments with this one function, so that option values
are never mistaken for operands (``apk add --virtual .deps gcc`` installs gcc,
``install -m 4755 f /usr/bin/f`` writes /usr/bin/f).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import TypeAlias

# (option, value): ("-G", "sudo"), ("--no-cache-dir", None).
Option: TypeAlias = tuple[str, str | None]


def parse_options(
    args: Sequence[str],
    short_valued: str = "",
    long_valued: Collection[str] = (),
    *,
    stop_at_operand: bool = False,
) -> tuple[list[Option], list[str]]:
    """Split arguments into (option, value) pairs and operands.

    Short clusters are unpacked ("-aG sudo" gives ("-a", None), ("-G", "sudo")); a
    value may be glued ("-u0"). A long option takes its value after "=" or, when
    listed in ``long_valued``, from the next argument. Options may follow operands,
    as GNU tools allow, unless ``stop_at_operand`` (POSIX order, and every wrapper:
    ``sudo -u app ls -l`` passes "-l" to ls).
    """
    options: list[Option] = []
    operands: list[str] = []
    index = 0
    count = len(args)
    while index < count:
        arg = args[index]
        index += 1
        if arg == "--":
            operands.extend(args[index:])
            break
        if arg.startswith("--"):
            name, equals, value = arg.partition("=")
            if equals:
                options.append((name, value))
            elif name in long_valued and index < count:
                options.append((name, args[index]))
                index += 1
            else:
                options.append((name, None))
        elif arg.startswith("-") and len(arg) > 1:
            index = _short_cluster(arg, args, index, short_valued, options)
        elif stop_at_operand:
            operands.extend(args[index - 1:])
            break
        else:
            operands.append(arg)
    return options, operands


def _short_cluster(
    arg: str, args: Sequence[str], index: int, short_valued: str, options: list[Option]
) -> int:
    """Unpack "-abc"; return the index of the next unread argument."""
    for position in range(1, len(arg)):
        letter = arg[position]
        if letter in short_valued:
            value = arg[position + 1:]
            if not value and index < len(args):
                value = args[index]
                index += 1
            options.append(("-" + letter, value))
            return index
        options.append(("-" + letter, None))
    return index


def has_option(options: Sequence[Option], *names: str) -> bool:
    return any(name in names for name, _ in options)


def option_values(options: Sequence[Option], *names: str) -> list[str]:
    return [value for name, value in options if name in names and value is not None]


def basename(word: str) -> str:
    """The program name of an argv[0]: "/usr/bin/pip3" -> "pip3"."""
    return word.rsplit("/", 1)[-1]
