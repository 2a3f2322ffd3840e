"""One simple command as the shell reader sees it run, and what it prints when the
script alone decides it (echo, printf, cat of known input, base64 -d...)."""

from __future__ import annotations

import binascii
from dataclasses import dataclass, field

from paracle_guard.sources.getopt import basename
from paracle_guard.sources.shell_words import printf_output


@dataclass(eq=False, slots=True)
class Command:
    """One simple command as it runs: wrappers off, words expanded, data flows known."""

    argv: list[str]
    wrappers: list[str] = field(default_factory=list)
    environment: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None
    # (fd, operator, target): ("", ">", "/etc/motd"), ("2", ">>", "log").
    redirects: list[tuple[str, str, str]] = field(default_factory=list)
    # Known text on its standard input: a here-document or here-string, or the known
    # output of the command piped into it.
    stdin: str | None = None
    output: str | None = None  # known text it prints (echo, printf, cat of known input)
    # Where its standard output goes when it is not redirected to a file: the next
    # command of its pipeline ("pipe"), the command whose $(...) or <(...) captures
    # it ("argument"), or the shell command that runs it, whose output it is ("forward").
    # Links point forward only, so commands hold no reference cycles and are freed as
    # soon as their facts are read (cycles would leave them all to the cyclic GC).
    output_to: Command | None = None
    flow: str = ""
    # An argument holds the output of a command substitution, unknown here.
    opaque: bool = False
    through_xargs: bool = False
    xargs_replace: str | None = None
    xargs_file: str | None = None  # xargs -a FILE: the items come from FILE
    script: str | None = None  # su -c: a script its shell runs
    inner: list[Command] = field(default_factory=list)  # substitutions, run first
    # The basename of argv[0]; xargs may add arguments later, never a program.
    program: str = field(init=False)

    def __post_init__(self) -> None:
        self.program = basename(self.argv[0]) if self.argv else ""

    def stdout_file(self) -> str | None:
        """The file its standard output is redirected to, if any."""
        for fd, operator, target in self.redirects:
            if operator in (">", ">>", ">|", "&>", "&>>") and fd in ("", "1"):
                return target
        return None



def known_output(command: Command) -> str | None:
    """What ``command`` prints when the script alone decides it."""
    if command.opaque:
        return None
    program, args = command.program, command.argv[1:]
    if program == "echo":
        newline = "\n"
        while args and args[0] in ("-n", "-e", "-E", "-ne", "-en"):
            if "n" in args[0]:
                newline = ""
            args = args[1:]
        return " ".join(args) + newline
    if program == "printf" and args:
        return printf_output(args[0], args[1:])
    if program in ("cat", "tee") and (program == "tee" or all(a == "-" for a in args)):
        return command.stdin
    if (program == "which" and len(args) == 1) or (program == "command" and args[:1] == ["-v"]
                                                   and len(args) == 2):
        # The path of a program: its directory is the image's, its name is known, and
        # the name is what the reader needs ('"$(which apk)" add sudo' runs apk).
        return args[-1] + "\n"
    if program == "base64" and command.stdin is not None and any(
            arg in ("-d", "-D", "--decode") for arg in args):
        # "echo YXBrIGFkZCBzdWRv | base64 -d | sh" runs what it decodes.
        try:
            return binascii.a2b_base64("".join(command.stdin.split())).decode()
        except (ValueError, UnicodeDecodeError):
            return None
    return None
