"""One command, run by a fork of the warm server for one client.

The worker takes the client's streams, working folder, umask, environment and
arguments, says it is running, runs the command line exactly as ``paracle-guard``
would have, and sends the exit status. Signals the client receives arrive as bytes
and are raised here, in the main thread, as if they had been sent to this process;
a client that disappears ends the command as SIGTERM would, so a launch it started
cleans up after itself.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import os
import signal
import socket
import struct
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO, cast

from paracle_guard.exit_codes import SIGNALLED
from paracle_guard.warm import peer
from paracle_guard.warm.protocol import (
    DECLINED,
    FORWARDED_SIGNALS,
    MAGIC,
    MAX_OTHER_DESCRIPTORS,
    MAX_REQUEST,
    RUNNING,
    SERVED,
    STANDARD_STREAMS,
    STATUS,
)

if TYPE_CHECKING:
    from paracle_guard.warm.server import Server

HEADER = struct.Struct("!I")
# unshare(2) for Python < 3.12, which has no os.unshare; loaded when the server preloads.
_LIBC = ctypes.CDLL(None, use_errno=True)
CLONE_FILES = 0x400  # linux/sched.h


class BadRequest(Exception):
    """The bytes on the socket are not a request from this version's command line."""


class HungUp(Exception):
    """The client closed the connection without sending anything."""


def serve_one(connection: socket.socket, client_pid: int, client_pidfd: int,
              server: Server) -> int:
    """Run one client's command in this process (a fresh fork); its exit status."""
    started = time.monotonic()

    def log(line: str) -> None:
        # The worker's pid too: it is the pid a served run's audit line records.
        server.log(f"client pid {client_pid} (worker {os.getpid()}): {line} "
                   f"({time.monotonic() - started:.3f} s)")

    try:
        request, received = _receive(connection)
    except HungUp:
        return 0  # a probe (serve --status), or a command line that went away first
    except (BadRequest, OSError, ValueError, RecursionError) as error:  # json: too deep
        log(f"refused a malformed request: {error}")
        return 2
    argv = request["argv"]
    refusal = _refusal(request, client_pid, client_pidfd, server)
    os.close(client_pidfd)  # its number may be one of the client's
    if refusal is None:
        try:
            connection = _above(connection, max(request["descriptors"]))
            _adopt(received, request)
        except OSError as error:
            refusal = f"cannot take over its descriptors and folder: {error.strerror or error}"
    if refusal is not None:
        for descriptor in received:
            with contextlib.suppress(OSError):
                os.close(descriptor)
        connection.sendall(DECLINED)
        log(f"declined {argv[1]!r}, the client runs it itself: {refusal}")
        return 0
    finished = threading.Event()
    statuses: list[int] = []

    def report(kept: socket.socket) -> None:
        finished.wait()
        with contextlib.suppress(OSError):  # a client that is gone has no use for it
            kept.sendall(STATUS + struct.pack("!i", statuses[0]))
        # Nor a log whose reader went away: this thread's traceback would reach the
        # client's stderr.
        with contextlib.suppress(OSError):
            log(f"ran {argv[1]!r}, exit status {statuses[0]}")

    reporter = _aside(connection, finished, report)
    if reporter is None:
        connection.sendall(DECLINED)
        log(f"declined {argv[1]!r}, the client runs it itself: its descriptors cannot be "
            "kept apart from the worker's own (unshare CLONE_FILES refused)")
        return 0
    connection.sendall(RUNNING)
    # Only the threads set aside hold these now: the command's descriptor table (the one
    # /dev/fd shows) is the client's alone.
    os.close(connection.detach())
    os.close(server.log_descriptor)
    statuses.append(_run(server.command_line, argv))
    finished.set()
    reporter.join()
    return statuses[0]


def _refusal(request: dict[str, Any], client_pid: int, client_pidfd: int,
             server: Server) -> str | None:
    if request["argv"][1] not in SERVED:
        # The command line never asks for these (protocol.may_be_served); a request that
        # does was written by hand, and gets what the documentation promises.
        return "the command is never served"
    if request["code"] != server.identity:
        return "it runs other code (installed or edited since the server started)"
    if server.log_descriptor in request["descriptors"]:
        return f"it holds descriptor {server.log_descriptor}, the number of the server's log"
    # Asked after its context was read: a client still running then was the process read.
    return (peer.difference(client_pid, request["env"], server.environment)
            or peer.replaced(client_pidfd))


def _receive(connection: socket.socket) -> tuple[dict[str, Any], list[int]]:
    most = len(STANDARD_STREAMS) + MAX_OTHER_DESCRIPTORS + 1  # and the working folder
    header, descriptors, _, _ = socket.recv_fds(connection, len(MAGIC) + HEADER.size, most)
    if not header and not descriptors:
        raise HungUp
    if len(header) != len(MAGIC) + HEADER.size or not header.startswith(MAGIC):
        for descriptor in descriptors:
            os.close(descriptor)
        raise BadRequest("no magic and length")
    (length,) = HEADER.unpack(header[len(MAGIC):])
    if length > MAX_REQUEST:
        raise BadRequest(f"{length} bytes")
    body = bytearray()
    while len(body) < length:
        chunk = connection.recv(length - len(body))
        if not chunk:
            raise BadRequest("truncated")
        body += chunk
    request = json.loads(body)
    if not (isinstance(request, dict) and isinstance(request.get("code"), str)
            and isinstance(request.get("argv"), list) and len(request["argv"]) >= 2
            and all(isinstance(arg, str) for arg in request["argv"])
            and isinstance(request.get("env"), dict)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in request["env"].items())
            and isinstance(request.get("umask"), int) and 0 <= request["umask"] <= 0o777
            and _numbers_for(request.get("descriptors"), descriptors)):
        for descriptor in descriptors:
            os.close(descriptor)
        raise BadRequest("fields")
    return request, descriptors


def _numbers_for(numbers: object, received: list[int]) -> bool:
    """Whether ``numbers`` names, standard streams first, where each received descriptor
    goes (the last one received is the working folder)."""
    return (isinstance(numbers, list) and len(numbers) == len(received) - 1
            and numbers[:len(STANDARD_STREAMS)] == list(STANDARD_STREAMS)
            and all(isinstance(n, int) and 0 <= n < 1 << 20 for n in numbers)
            and len(set(numbers)) == len(numbers))


def _above(connection: socket.socket, number: int) -> socket.socket:
    """``connection`` at a descriptor above ``number``, clear of the client's numbers."""
    if connection.fileno() > number:
        return connection
    moved = fcntl.fcntl(connection.fileno(), fcntl.F_DUPFD_CLOEXEC, number + 1)
    connection.close()
    return socket.socket(fileno=moved)


def _adopt(received: list[int], request: dict[str, Any]) -> None:
    """Take over the client's folder, descriptors (each at its own number), umask,
    environment and arguments."""
    *handed, cwd = received
    os.fchdir(cwd)
    os.close(cwd)
    numbers: list[int] = request["descriptors"]
    # First all above every number the client uses, so that placing one never replaces
    # another that is still to be placed.
    floor = max(numbers) + 1
    staged = []
    for descriptor in handed:
        staged.append(fcntl.fcntl(descriptor, fcntl.F_DUPFD_CLOEXEC, floor))
        os.close(descriptor)
    for number, descriptor in zip(numbers, staged, strict=True):
        os.dup2(descriptor, number)  # inheritable, as the client's own were
        os.close(descriptor)
    os.umask(request["umask"])
    os.environ.clear()
    os.environ.update(request["env"])
    _reopen_standard_streams()
    sys.argv = list(request["argv"])


def _reopen_standard_streams() -> None:
    """New ``sys.std*`` objects over the client's descriptors, buffered as the interpreter
    buffers them: stdout line by line on a terminal, stderr always line by line."""
    sys.stdin = _text_stream(0, "r", sys.stdin, line_buffered=False)
    sys.stdout = _text_stream(1, "w", sys.stdout, line_buffered=os.isatty(1))
    sys.stderr = _text_stream(2, "w", sys.stderr, line_buffered=True)


def _text_stream(descriptor: int, mode: str, like: TextIO, line_buffered: bool) -> TextIO:
    # Open for the rest of the worker's life, as the interpreter's own streams are.
    stream = open(descriptor, mode, buffering=1 if line_buffered else -1,  # noqa: SIM115
                  encoding=like.encoding, errors=like.errors, closefd=False)
    return cast(TextIO, stream)


def _aside(connection: socket.socket, finished: threading.Event,
           report: Callable[[socket.socket], None]) -> threading.Thread | None:
    """Start the threads that relay signals and ``report`` the status, in a descriptor
    table of their own (a copy of this one); the thread that reports, or None when the
    kernel refuses that copy.

    A command names descriptors by number (``/dev/fd/N`` is the process's table, the main
    thread's): the worker's connection and the server's log must not be there while it
    runs, and the main thread closes them once these threads hold their own copies.
    """
    ready = threading.Event()
    reporter: list[threading.Thread] = []

    def relay() -> None:
        if _LIBC.unshare(CLONE_FILES) != 0:
            ready.set()
            return
        kept = socket.socket(fileno=connection.fileno())  # the number in this table
        reporter.append(threading.Thread(target=report, args=(kept,),
                                         name="paracle-guard-status"))
        reporter[0].start()  # it shares this thread's table, not the main thread's
        ready.set()
        _relay_signals(kept, finished)

    threading.Thread(target=relay, name="paracle-guard-signals", daemon=True).start()
    ready.wait()
    return reporter[0] if reporter else None


def _relay_signals(connection: socket.socket, finished: threading.Event) -> None:
    main = threading.main_thread().ident
    assert main is not None
    while True:
        try:
            received = connection.recv(64)
        except OSError:
            received = b""
        if not received:
            if not finished.is_set():
                signal.pthread_kill(main, signal.SIGTERM)  # the client is gone
            return
        for signum in received:
            if signum in FORWARDED_SIGNALS:
                # To the main thread: Python runs handlers there, and only a signal
                # sent to it interrupts the system call it is blocked in.
                signal.pthread_kill(main, signum)


def _run(command_line: Callable[[list[str]], Any], argv: list[str]) -> int:
    """The exit status the interpreter would have left with after ``command_line(argv)``."""
    try:
        command_line(argv)
        status: int = 0
    except SystemExit as exit_:
        status = _exit_status(exit_.code)
    except KeyboardInterrupt:
        traceback.print_exc()
        status = SIGNALLED + signal.SIGINT
    except BaseException:
        traceback.print_exc()
        status = 1
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a reader that went away
            stream.flush()
    return status


def _exit_status(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1
