"""``--env-file FILE``: variables for the sandbox from a file, read as ``docker run`` reads one.

The format is the Docker CLI's (``pkg/kvfile`` in docker/cli): UTF-8, a BOM
dropped from the first line, leading whitespace removed, blank lines and lines
starting with ``#`` skipped, ``NAME=VALUE`` taken as is (no quotes, no
expansion, trailing whitespace kept), a bare ``NAME`` taking the host's value
when it has one. Names must be shell variable names here (Docker accepts more;
a name no shell can read is refused, on its line).

It is also the channel the launcher offers for secrets, instead of ``--env``
(shell history, ``ps``), so the file is read safely: opened once without
blocking (a FIFO cannot hang the launch), judged by what was opened (a regular
file of at most ENV_FILE_LIMIT bytes, owned by root or the invoking user, not
writable by anyone else), and, when it holds a name that looks like a secret,
not readable by group or others either (``chmod 600``). Every problem is one
line naming the file, and the line when there is one.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from paracle_guard.errors import InputError
from paracle_guard.launcher.hostpath import trusted_uids

ENV_FILE_LIMIT = 1 << 20
# bufio.Scanner's default token limit, which the Docker CLI reads env files with.
LINE_LIMIT = 64 * 1024
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")  # \Z: "$" would take "FOO\n"
_BOM = "\ufeff"


@dataclass
class EnvFile:
    path: str
    values: dict[str, str] = field(default_factory=dict)
    secret_names: list[str] = field(default_factory=list)


def read_env_file(
    path: str | Path, *, host_env: Mapping[str, str], is_secret: Callable[[str], bool]
) -> EnvFile:
    """The variables of ``path``; InputError (one line) for anything unsafe or unreadable."""
    name = str(path)
    info, data = _read(name)
    result = EnvFile(path=name)
    for number, raw in enumerate(data.split(b"\n"), start=1):
        where = f"--env-file {name}:{number}"
        if len(raw) > LINE_LIMIT:
            raise InputError(f"{where}: line longer than {LINE_LIMIT} bytes")
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise InputError(f"{where}: not valid UTF-8") from None
        if number == 1:
            line = line.removeprefix(_BOM)
        line = line.removesuffix("\r").lstrip()
        if not line or line.startswith("#"):
            continue
        if "\0" in line:
            raise InputError(f"{where}: contains a NUL byte")
        key, sep, given = line.partition("=")
        if not ENV_NAME.match(key):
            raise InputError(f"{where}: {key!r} is not a variable name (expected NAME=VALUE)")
        value = env_value(key, given if sep else None, host_env)
        if value is None:
            continue
        if is_secret(key):
            if info.st_mode & (stat.S_IRGRP | stat.S_IROTH):
                raise InputError(
                    f"{where}: {key} looks like a secret, but the file is readable by group or "
                    f"others (mode {stat.S_IMODE(info.st_mode):04o}); run chmod 600 {name}")
            result.secret_names.append(key)
        result.values[key] = value
    return result


def env_value(name: str, given: str | None, host_env: Mapping[str, str]) -> str | None:
    """The value of ``NAME=given``; for a bare ``NAME``, the host's (None when unset, and then,
    as docker run does, the variable is not passed at all)."""
    return given if given is not None else host_env.get(name)


def _read(name: str) -> tuple[os.stat_result, bytes]:
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except OSError as exc:
        raise InputError(f"--env-file {name}: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise InputError(f"--env-file {name}: not a regular file")
        if info.st_size > ENV_FILE_LIMIT:
            raise InputError(f"--env-file {name}: larger than {ENV_FILE_LIMIT} bytes")
        if info.st_uid not in trusted_uids():
            raise InputError(f"--env-file {name}: belongs to uid {info.st_uid}, not to you or "
                             "root, so someone else decides what the sandbox gets")
        if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            raise InputError(f"--env-file {name}: writable by group or others (mode "
                             f"{stat.S_IMODE(info.st_mode):04o}); run chmod 600 {name}")
        chunks = []
        while chunk := os.read(fd, ENV_FILE_LIMIT + 1):
            chunks.append(chunk)
            if sum(map(len, chunks)) > ENV_FILE_LIMIT:
                raise InputError(f"--env-file {name}: larger than {ENV_FILE_LIMIT} bytes")
        return info, b"".join(chunks)
    except OSError as exc:
        raise InputError(f"--env-file {name}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
