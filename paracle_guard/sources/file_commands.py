"""What commands do to files: writes, removals, permission changes, downloads.

Each reader takes one command from the shell reader (its argv unwrapped, its
working directory, its redirects and known input) and knows the options of
the tool it reads: ``install -m 4755 f /usr/bin/f`` writes /usr/bin/f with the
setuid bit, ``dd of=/etc/sudoers.d/app`` writes that file with what was piped
in, ``curl -fsSL URL | sh`` downloads into a shell.
"""

from __future__ import annotations

import posixpath
from dataclasses import replace
from typing import Literal

from paracle_guard.sources.getopt import has_option, option_values, parse_options
from paracle_guard.sources.shell import SHELLS, resolve_path
from paracle_guard.sources.shell_command import Command
from paracle_guard.subject import Download, FileWrite, ModeChange, PathRemoval

# Redirect targets that are no file.
_NOT_FILES = ("/dev/null", "/dev/stdout", "/dev/stderr", "/dev/tty")
_WRITE_OPERATORS = frozenset({">", ">>", ">|", "&>", "&>>", "<>", ">&"})
# Programs that run what they are given (on stdin or as an argument) as code.
CODE_RUNNERS = SHELLS | {"eval", "source", ".", "perl", "ruby", "node", "php", "python",
                         "python2", "python3", "pwsh", "powershell"}
_COPIERS = {"cp": "tS", "mv": "tS", "ln": "tS"}
# What finally reads a command's output: ("pipe" or "argument", program).
Sink = tuple[Literal["pipe", "argument"], str]
# The Sink of each command by id(command), or None for the step's own output. Memoized
# per step, so every walk is linear overall.
Sinks = dict[int, Sink | None]
_CURL_VALUED = "AbcCdDeEFHKmoPQrTtuUwxXyYz"
_CURL_LONG_VALUED = frozenset({
    "--output", "--url", "--header", "--user-agent", "--data", "--data-raw", "--data-binary",
    "--data-urlencode", "--form", "--request", "--user", "--proxy", "--retry",
    "--retry-delay", "--retry-max-time", "--max-time", "--connect-timeout", "--cacert",
    "--cert", "--key", "--config", "--cookie", "--cookie-jar", "--referer", "--write-out",
    "--range", "--upload-file", "--output-dir", "--dump-header", "--limit-rate", "--resolve",
    "--interface", "--max-filesize", "--proto", "--proto-redir", "--capath", "--continue-at",
})
_WGET_VALUED = "OoaePTtwUQDARlIXBi"
_WGET_LONG_VALUED = frozenset({
    "--output-document", "--output-file", "--append-output", "--directory-prefix",
    "--execute", "--timeout", "--tries", "--wait", "--user-agent", "--header", "--user",
    "--password", "--input-file", "--ca-certificate", "--post-data", "--post-file",
})


def is_code_runner(program: str) -> bool:
    return program in CODE_RUNNERS or (program.startswith("python") and
                                       program[6:].replace(".", "").isdigit())


# -- writes ------------------------------------------------------------------------


def writes(command: Command, index: int) -> list[FileWrite]:
    """Files ``command`` writes: its redirects, and what its program writes."""
    found = [
        FileWrite(command=index, path=resolve_path(target, command.cwd), how="redirect",
                  content=command.output if fd in ("", "1") else None,
                  append=operator in (">>", "&>>"))
        for fd, operator, target in command.redirects
        if operator in _WRITE_OPERATORS and not _not_a_file(target)
    ]
    program, args = command.program, command.argv[1:]
    reader = _WRITERS.get(program)
    if reader is not None:
        found.extend(reader(command, args, index))
    return found


def _not_a_file(target: str) -> bool:
    return target == "-" or target.isdigit() or target.startswith((*_NOT_FILES, "/dev/fd/"))


def _tee(command: Command, args: list[str], index: int) -> list[FileWrite]:
    options, files = parse_options(args)
    append = has_option(options, "-a", "--append")
    return [FileWrite(command=index, path=resolve_path(path, command.cwd), how="tee",
                      content=command.stdin, append=append)
            for path in files if not _not_a_file(path)]


def _dd(command: Command, args: list[str], index: int) -> list[FileWrite]:
    operands = dict(arg.split("=", 1) for arg in args if "=" in arg)
    target = operands.get("of")
    if target is None or _not_a_file(target):
        return []
    content = command.stdin if "if" not in operands else None
    return [FileWrite(command=index, path=resolve_path(target, command.cwd), how="dd",
                      content=content, append="append" in operands.get("oflag", ""))]


def _install(command: Command, args: list[str], index: int) -> list[FileWrite]:
    options, operands = parse_options(args, "gmoSt", {"--group", "--mode", "--owner",
                                                      "--suffix", "--target-directory"})
    if has_option(options, "-d", "--directory"):
        return []  # creates directories; their modes are mode changes
    return [FileWrite(command=index, path=path, how="install")
            for path in _destinations(options, operands, command.cwd)]


def _copy(command: Command, args: list[str], index: int) -> list[FileWrite]:
    program = command.program
    options, operands = parse_options(args, _COPIERS[program], {"--target-directory",
                                                                "--suffix"})
    if program == "ln" and len(operands) == 1 and not option_values(
            options, "-t", "--target-directory"):
        operands = [operands[0], "."]  # "ln -s /opt/x": a link named x here
    return [FileWrite(command=index, path=path, how=program)
            for path in _destinations(options, operands, command.cwd)]


def _destinations(options: list[tuple[str, str | None]], operands: list[str],
                  cwd: str | None) -> list[str]:
    """Where cp/mv/ln/install put their sources: -t DIR, a directory, or the last operand."""
    directories = option_values(options, "-t", "--target-directory")
    if directories:
        return [resolve_path(posixpath.join(directories[-1], posixpath.basename(source)), cwd)
                for source in operands]
    if len(operands) < 2:
        return []
    destination, sources = operands[-1], operands[:-1]
    if len(sources) > 1 or destination.endswith("/") or destination == ".":
        return [resolve_path(posixpath.join(destination, posixpath.basename(s.rstrip("/"))),
                             cwd) for s in sources]
    return [resolve_path(destination, cwd)]


def _sed(command: Command, args: list[str], index: int) -> list[FileWrite]:
    options, operands = parse_options(args, "efl", {"--expression", "--file",
                                                    "--line-length"})
    if not any(name == "-i" or name.startswith("--in-place") for name, _ in options):
        return []
    if not option_values(options, "-e", "--expression", "-f", "--file") and operands:
        operands = operands[1:]  # the first operand is the script
    return [FileWrite(command=index, path=resolve_path(path, command.cwd), how="sed -i")
            for path in operands]


def _visudo(command: Command, args: list[str], index: int) -> list[FileWrite]:
    options, _ = parse_options(args, "f", {"--file"})
    if has_option(options, "-c", "--check"):
        return []  # checks syntax only
    files = option_values(options, "-f", "--file") or ["/etc/sudoers"]
    return [FileWrite(command=index, path=resolve_path(files[-1], command.cwd), how="visudo")]


# The files curl and wget save are writes too; run_facts.py records them with downloads().
_WRITERS = {
    "tee": _tee, "dd": _dd, "install": _install, "cp": _copy, "mv": _copy, "ln": _copy,
    "sed": _sed, "visudo": _visudo,
}


# -- removals ----------------------------------------------------------------------


def removals(command: Command, index: int) -> list[PathRemoval]:
    """``rm`` operands (globs stay unexpanded), resolved against the working directory."""
    if command.program != "rm":
        return []
    _, operands = parse_options(command.argv[1:])
    return [PathRemoval(command=index, path=resolve_path(path, command.cwd), how="rm")
            for path in operands]


# -- permissions ----------------------------------------------------------------------


def mode_changes(command: Command, index: int, directories: set[str]) -> list[ModeChange]:
    """chmod, install -m and setcap; ``directories`` are paths the step made directories."""
    program, args = command.program, command.argv[1:]
    if program == "chmod":
        return _chmod(command, args, index, directories)
    if program == "install":
        options, operands = parse_options(args, "gmoSt", {"--group", "--mode", "--owner",
                                                          "--suffix", "--target-directory"})
        modes = option_values(options, "-m", "--mode")
        if not modes:
            return []
        is_directory = has_option(options, "-d", "--directory")
        paths = ([resolve_path(p, command.cwd) for p in operands] if is_directory
                 else _destinations(options, operands, command.cwd))
        return [mode_change(path, modes[-1], "install", index, directory=is_directory or None)
                for path in paths]
    if program == "setcap":
        return _setcap(command, args, index)
    return []


def _chmod(command: Command, args: list[str], index: int,
           directories: set[str]) -> list[ModeChange]:
    # "chmod -s f" and "chmod -x f": a mode that looks like an option (GNU chmod reads it so).
    words = list(args)
    mode: str | None = None
    rest: list[str] = []
    for word in words:
        if mode is None and not word.startswith("--") and word not in ("-R", "-c", "-f", "-v") \
                and (not word.startswith("-") or _looks_like_mode(word)):
            mode = word
        elif not word.startswith("-") or word == "-":
            rest.append(word)
    if mode is None or any(word.startswith("--reference") for word in words):
        return []
    changes = []
    for path in rest:
        resolved = resolve_path(path, command.cwd)
        changes.append(mode_change(resolved, mode, "chmod", index,
                                   directory=(resolved in directories) or None))
    return changes


def _looks_like_mode(word: str) -> bool:
    return len(word) > 1 and all(char in "rwxXstugoa,+-=01234567" for char in word[1:])


def mode_change(path: str, mode: str, how: str, index: int | None,
                directory: bool | None = None) -> ModeChange:
    """A change to ``mode`` as chmod reads it (octal or symbolic): which bits it adds."""
    setuid, setgid = _special_bits(mode)
    return ModeChange(command=index, path=path, mode=mode, how=how, setuid=setuid,
                      setgid=setgid, directory=directory)


def _special_bits(mode: str) -> tuple[bool, bool]:
    """(adds setuid, adds setgid) for an octal or symbolic chmod mode."""
    if mode.isascii() and mode.isdigit():
        if any(char > "7" for char in mode):
            return False, False
        value = int(mode, 8)
        return bool(value & 0o4000), bool(value & 0o2000)
    setuid = setgid = False
    for clause in mode.split(","):
        who = ""
        position = 0
        while position < len(clause) and clause[position] in "ugoa":
            who += clause[position]
            position += 1
        operand = clause[position + 1:]
        if not who and clause[position:position + 1] in ("+", "=") and operand.isascii() \
                and operand.isdigit() and not any(char > "7" for char in operand):
            # GNU chmod takes an octal number after the operator too: "=4755" sets
            # and "+4000" adds the setuid bit (coreutils modechange.c).
            value = int(operand, 8)
            setuid = setuid or bool(value & 0o4000)
            setgid = setgid or bool(value & 0o2000)
            continue
        # The rest is one or more operator-and-permissions groups: "+s", "=rwx,+s".
        operator = ""
        for char in clause[position:]:
            if char in "+-=":
                operator = char
            elif char == "s" and operator in ("+", "="):
                setuid = setuid or not who or "u" in who or "a" in who
                setgid = setgid or not who or "g" in who or "a" in who
    return setuid, setgid


def _setcap(command: Command, args: list[str], index: int) -> list[ModeChange]:
    options, operands = parse_options(args, "n")
    if has_option(options, "-r"):
        return []  # removes capabilities
    pairs = list(zip(operands[::2], operands[1::2], strict=False))
    return [ModeChange(command=index, path=resolve_path(path, command.cwd), mode=caps,
                       how="setcap", capabilities=bool(caps.strip()))
            for caps, path in pairs]


def created_directories(command: Command) -> list[str]:
    """Directories ``command`` creates (mkdir, install -d), resolved."""
    program, args = command.program, command.argv[1:]
    if program == "mkdir":
        _, operands = parse_options(args, "m", {"--mode", "--context"})
        return [resolve_path(path.rstrip("/") or "/", command.cwd) for path in operands]
    if program == "install":
        options, operands = parse_options(args, "gmoSt", {"--group", "--mode", "--owner"})
        if has_option(options, "-d", "--directory"):
            return [resolve_path(path.rstrip("/") or "/", command.cwd) for path in operands]
    return []


# -- downloads -------------------------------------------------------------------------


def downloads(command: Command, index: int, sinks: Sinks | None = None) -> list[Download]:
    """What curl and wget fetch, and where it goes: a file, a pipe, an argument."""
    program = command.program
    if program == "curl":
        options, urls = parse_options(command.argv[1:], _CURL_VALUED, _CURL_LONG_VALUED)
        urls = urls + option_values(options, "--url")
        outputs = option_values(options, "-o", "--output")
        remote_name = has_option(options, "-O", "--remote-name", "--remote-name-all")
        directory = _last(option_values(options, "--output-dir"))
    elif program == "wget":
        options, urls = parse_options(command.argv[1:], _WGET_VALUED, _WGET_LONG_VALUED)
        outputs = option_values(options, "-O", "--output-document")
        remote_name = not outputs
        directory = _last(option_values(options, "-P", "--directory-prefix"))
    else:
        return []
    found = []
    for url in urls:
        if outputs and outputs[-1] != "-":
            output: str | None = resolve_path(outputs[-1], command.cwd)
        elif remote_name and not outputs:
            name = url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1] or "index.html"
            output = resolve_path(posixpath.join(directory or ".", name), command.cwd)
        else:
            output = command.stdout_file()
        found.append(_flow(Download(command=index, tool=program, url=url, output=output,
                                    into="file" if output is not None else "output"),
                           command, {} if sinks is None else sinks))
    return found


def _last(values: list[str]) -> str | None:
    return values[-1] if values else None


def _flow(download: Download, command: Command, sinks: Sinks) -> Download:
    """Where a download's bytes go: through pipes, tee and nested shells to what reads them."""
    if download.output is not None:
        return download
    sink = final_sink(command, sinks)
    if sink is None:
        return download  # the step's own output
    flow, consumer = sink
    return replace(download, into=flow, consumer=consumer or None,
                   runs_as_code=bool(consumer) and is_code_runner(consumer))


def final_sink(command: Command, sinks: Sinks) -> Sink | None:
    path: list[Command] = []
    current = command
    result: Sink | None = None
    while True:
        if id(current) in sinks:
            result = sinks[id(current)]
            break
        target, flow = current.output_to, current.flow
        if target is None:
            break
        path.append(current)
        if flow == "forward" or (flow == "pipe" and target.program == "tee"):
            current = target  # a nested script's output is its shell's; tee passes it on
            continue
        result = ("pipe" if flow == "pipe" else "argument", target.program)
        break
    for passed in path:
        sinks[id(passed)] = result
    return result


def apt_settings(write: FileWrite) -> dict[str, str]:
    """``APT::Install-Recommends "false";`` lines of a file written into apt's config."""
    if write.content is None or not (write.path.startswith("/etc/apt/apt.conf")):
        return {}
    settings = {}
    for statement in write.content.replace("\n", ";").split(";"):
        name, _, value = statement.strip().partition(" ")
        if name and value:
            settings[name.lower()] = value.strip().strip("\"'")
    return settings

