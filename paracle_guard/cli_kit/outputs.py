"""Where reports go, and writing them without losing anything the user had.

One scan can feed several reports: ``--format F`` and ``--output FILE`` pair up in
the order the command line gives them, each ``--output`` belonging to the
``--format`` just before it (or, given first, to the one just after it). A
``--format`` without an ``--output`` goes to standard output; only one may.

Writing a file (``write_file``):

- a symlink is written *through*: the file it points at gets the report and the
  link stays, as a shell's ``>`` would do. Like the kernel's ``protected_symlinks``,
  a link in a sticky world-writable folder (``/tmp``) is followed only when it
  belongs to the user or to the folder's owner: anyone can plant a link there;
- an existing file keeps its permission bits; a new one gets ``0666 & ~umask``;
- the report is written beside the file and renamed over it, so a failed run never
  leaves half a report; a FIFO, a device, and whatever ``/dev/stdout``, ``/dev/fd/N`` or
  ``/proc/self/fd/N`` hold (a pipe, or a file a shell opened) are written into instead;
- a file the run reads (a checked Dockerfile, manifest or archive, the policy, the
  baseline) is refused: a report must never replace its own input.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Iterable
from dataclasses import dataclass

from paracle_guard.cli_kit import click_api as click
from paracle_guard.cli_kit.house import option_order, usage_error
from paracle_guard.errors import InputError

STDOUT = "-"


@dataclass(frozen=True)
class Destination:
    format: str
    path: str | None  # None: standard output

    @property
    def label(self) -> str:
        return "standard output" if self.path is None else self.path


def destinations(
    ctx: click.Context,
    formats: list[str] | None,
    outputs: list[str] | None,
    *,
    default: str = "text",
) -> list[Destination]:
    """The reports a command line asks for, as ``(format, file or stdout)`` pairs."""
    formats = list(formats or [])
    outputs = list(outputs or [])
    events = [name for name in option_order(ctx) if name in ("output_format", "output")]
    if events.count("output_format") != len(formats) or events.count("output") != len(outputs):
        # No recorded order (a caller outside the CLI): pair them by position.
        events = []
        for index in range(max(len(formats), len(outputs))):
            events += ["output_format"] * (index < len(formats))
            events += ["output"] * (index < len(outputs))
    if not formats:
        formats = [default]
        events = ["output_format", *events]
    pairs: list[list[str | None]] = []
    waiting: list[str] = []  # --output given before any --format could take it
    format_index = output_index = 0
    for event in events:
        if event == "output_format":
            pairs.append([formats[format_index], waiting.pop(0) if waiting else None])
            format_index += 1
            continue
        path = outputs[output_index]
        output_index += 1
        if pairs and pairs[-1][1] is None:
            pairs[-1][1] = path
        else:
            waiting.append(path)
    if waiting:
        usage_error(f"--output {waiting[0]}: no --format is left for it (give each --output "
                    "after its --format)", ctx)
    chosen = [Destination(str(fmt), None if path in (None, STDOUT) else path)
              for fmt, path in pairs]
    _check_distinct(chosen, ctx)
    return chosen


def _check_distinct(chosen: list[Destination], ctx: click.Context) -> None:
    to_stdout = [d.format for d in chosen if d.path is None]
    if len(to_stdout) > 1:
        usage_error(f"--format {to_stdout[0]} and --format {to_stdout[1]} would both go to "
                    "standard output; give one of them --output FILE", ctx)
    seen: dict[str, str] = {}
    for destination in chosen:
        if destination.path is None:
            continue
        key = os.path.realpath(destination.path)
        if key in seen:
            usage_error(f"--output {destination.path} is given twice (for --format "
                        f"{seen[key]} and --format {destination.format})", ctx)
        seen[key] = destination.format


def refuse_inputs(paths: Iterable[str | None], inputs: Iterable[str], option: str) -> None:
    """Refuse (InputError) any of ``paths`` that is the same file as one of ``inputs``."""
    existing = [path for path in inputs if path and os.path.isfile(path)]
    for path in paths:
        if path is None or not os.path.exists(path):
            continue
        for source in existing:
            try:
                same = os.path.samefile(path, source)
            except OSError:
                continue
            if same:
                raise InputError(f"{option} {path}: this run reads that file ({source}); "
                                 "write the report somewhere else")


def write_stdout(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def write_file(path: str, text: str, *, option: str = "--output") -> None:
    """Write ``text`` to ``path`` as the module's docstring describes (InputError on failure)."""
    try:
        through = _descriptor_path(path)
        if through is not None:
            _write_to_descriptor(through, text)
            return
        real = _follow(path, option)
        if os.path.exists(real) and not os.path.isfile(real):
            _write_into(real, text)
            return
        _replace(real, text)
    except OSError as error:
        raise InputError(f"{option} {path}: cannot write: {error.strerror or error}") from None


def _descriptor_path(path: str) -> str | None:
    """Where ``path`` leads if it reaches an open descriptor (``/dev/stdout``, ``/dev/fd/N``,
    ``/proc/self/fd/N``), else None. What such a path names is whatever the descriptor
    holds: a pipe has no path at all, and a file a shell opened for ``> out`` must be
    written into, not replaced, or the shell goes on writing into a file nothing names."""
    current = os.path.abspath(path)
    for _ in range(40):  # the kernel's own limit on links followed
        if current.startswith(("/proc/", "/dev/fd/")):
            return current
        if not os.path.islink(current):
            return None
        current = os.path.normpath(os.path.join(os.path.dirname(current),
                                                os.readlink(current)))
    return None


def _own_descriptor(path: str) -> int | None:
    """N, when ``path`` is this process's descriptor N (``/dev/fd/N``, ``/proc/self/fd/N``)."""
    folder, _, number = path.rpartition("/")
    own = ("/dev/fd", "/proc/self/fd", f"/proc/{os.getpid()}/fd")
    return int(number) if folder in own and number.isdigit() else None


def _write_to_descriptor(path: str, text: str) -> None:
    descriptor = _own_descriptor(path)
    if descriptor is None:  # another process's: opened anew, as a shell's > would
        _write_into(path, text)
        return
    # Written through the descriptor itself, at its offset, after what this process
    # already wrote there: opening the path again would start a new file offset at 0.
    sys.stdout.flush()
    data = text.encode("utf-8")
    while data:
        data = data[os.write(descriptor, data):]


def _write_into(path: str, text: str) -> None:
    with open(path, "w", encoding="utf-8") as stream:
        stream.write(text)


def _follow(path: str, option: str) -> str:
    """The file a report written to ``path`` lands in: ``path`` itself, or what its
    symlinks point at."""
    if not os.path.islink(path):
        return path
    folder = os.path.dirname(os.path.abspath(path))
    link = os.lstat(path)
    shared = os.stat(folder)
    sticky_and_open = shared.st_mode & stat.S_ISVTX and shared.st_mode & stat.S_IWOTH
    if sticky_and_open and link.st_uid not in (os.geteuid(), shared.st_uid):
        raise InputError(f"{option} {path}: a symlink another user owns, in a shared folder "
                         "(as the kernel's protected_symlinks does, it is not followed)")
    return os.path.realpath(path)


def _replace(path: str, text: str) -> None:
    try:
        mode: int | None = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        mode = None
    folder, name = os.path.split(os.path.abspath(path))
    temporary = os.path.join(folder, f".{name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
            if mode is not None:
                os.fchmod(stream.fileno(), mode)
            stream.write(text)
        os.replace(temporary, path)
    finally:
        if os.path.lexists(temporary):
            os.unlink(temporary)


def wants_color(mode: str | None, stream_is_tty: bool) -> bool:
    """Whether text output is coloured: ``--color always|never`` decide; ``auto`` (the
    default) colours a terminal unless ``NO_COLOR`` is set, and ``FORCE_COLOR`` colours
    anything. Both variables count only when not empty, as rich reads them."""
    if mode == "always":
        return True
    if mode == "never":
        return False
    if os.environ.get("NO_COLOR", ""):
        return False
    if os.environ.get("FORCE_COLOR", ""):
        return True
    return stream_is_tty and os.environ.get("TERM", "") != "dumb"
