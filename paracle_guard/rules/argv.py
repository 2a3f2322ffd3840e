"""Reading the commands of RUN steps and the operands of COPY/ADD, for every rule family.

A RunStep's pipelines are already split into argv lists by the Dockerfile
source; here we only strip wrappers (``sudo``, ``env``, ``VAR=x``) and read
options the way each tool does, so that ``sudo -u app pip install x`` is read
as pip. Rules that look for a program (PG103 sudo, PG402 caches, PG503 remote
code) share these readers instead of growing their own.
"""

from __future__ import annotations

import json
import posixpath
import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TypeAlias

from paracle_guard.subject import Instruction

_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")

# Programs that run the rest of their argv as a command, with the short options of
# each that take a value (so that "sudo -u app pip install" is read as pip).
_WRAPPERS: dict[str, str] = {
    "sudo": "ughpCDRTUrt",
    "doas": "uC",
    "env": "uCS",
    "nice": "n",
    "nohup": "",
    "time": "fo",
    "command": "",
    "exec": "a",
    "stdbuf": "ioe",
}


@dataclass(frozen=True)
class Command:
    """One simple command with wrappers and ``VAR=value`` prefixes taken off."""

    argv: tuple[str, ...]
    assignments: Mapping[str, str] = field(default_factory=dict)

    @property
    def program(self) -> str:
        """The basename of the program run ("/usr/bin/pip3" -> "pip3"); "" for none."""
        return posixpath.basename(self.argv[0]) if self.argv else ""

    @property
    def args(self) -> tuple[str, ...]:
        return self.argv[1:]


def split_command(argv: Sequence[str]) -> Command:
    """``sudo -E env A=1 pip install x`` -> argv ``pip install x``, with A=1 kept aside."""
    return _split_command(tuple(argv))


# Several rules split the same commands of the same RUN steps; across a thousand
# files that is most of the rules' time, so the split is remembered.
@lru_cache(maxsize=8192)
def _split_command(argv: tuple[str, ...]) -> Command:
    words = list(argv)
    assignments: dict[str, str] = {}
    while words:
        head = words[0]
        if _ASSIGNMENT.match(head):
            name, _, value = head.partition("=")
            assignments[name] = value
            words.pop(0)
            continue
        valued = _WRAPPERS.get(posixpath.basename(head))
        if valued is None:
            break
        words.pop(0)
        while words and words[0].startswith("-"):
            option = words.pop(0)
            if option == "--":
                break
            if len(option) == 2 and option[1] in valued and words:
                words.pop(0)
    return Command(argv=tuple(words), assignments=assignments)


# (option, value): ("-G", "sudo"), ("--no-cache-dir", None).
Option: TypeAlias = tuple[str, str | None]


def parse_options(
    args: Sequence[str],
    short_valued: str = "",
    long_valued: Iterable[str] = (),
) -> tuple[list[Option], list[str]]:
    """Split getopt-style arguments into (option, value) pairs and operands.

    Short clusters are unpacked ("-aG sudo" gives ("-a", None), ("-G", "sudo")); a
    long option takes its value after "=" or, when listed in ``long_valued``, from
    the next argument. Options may appear after operands, as GNU tools allow.
    """
    long_with_value = frozenset(long_valued)
    options: list[Option] = []
    operands: list[str] = []
    index = 0
    while index < len(args):
        arg = args[index]
        index += 1
        if arg == "--":
            operands.extend(args[index:])
            break
        if arg.startswith("--"):
            name, equals, value = arg.partition("=")
            if equals:
                options.append((name, value))
            elif name in long_with_value and index < len(args):
                options.append((name, args[index]))
                index += 1
            else:
                options.append((name, None))
        elif arg.startswith("-") and len(arg) > 1:
            for position, letter in enumerate(arg[1:], start=2):
                if letter in short_valued:
                    value = arg[position:]
                    if not value and index < len(args):
                        value = args[index]
                        index += 1
                    options.append(("-" + letter, value))
                    break
                options.append(("-" + letter, None))
        else:
            operands.append(arg)
    return options, operands


def copy_operands(instruction: Instruction) -> list[str]:
    """The sources and destination of a COPY or ADD, in shell or JSON form."""
    value = instruction.value.strip()
    # A heredoc body follows the first line; only the first line holds operands.
    first_line = value.splitlines()[0] if value else ""
    operands: list[str] = []
    if first_line.startswith("["):
        try:
            parsed = json.loads(first_line)
        except ValueError:
            parsed = None
        if isinstance(parsed, list):
            operands = [str(item) for item in parsed]
    else:
        try:
            operands = shlex.split(first_line)
        except ValueError:
            operands = first_line.split()
    # Flags normally live in Instruction.flags; drop any the source left in the value.
    # A heredoc marker ("<<EOF") stays: it is a source, the inline file.
    return [o for o in operands if not o.startswith("--")]
