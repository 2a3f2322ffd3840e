"""The command line's side: hand the invocation to a warm server when one serves this code.

Everything that can go wrong before the worker says it is running ends in ``None``,
and the command line runs the command itself: a missing, stale or unsafe server
only costs the time it took to find out. Once the worker is running, the client
never runs the command a second time; it relays signals and waits for the status.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import struct
import sys
from types import FrameType

from paracle_guard.exit_codes import ERROR, SIGNALLED
from paracle_guard.warm.protocol import (
    DECLINED,
    FORWARDED_SIGNALS,
    MAGIC,
    MAX_OTHER_DESCRIPTORS,
    RUNNING,
    STANDARD_STREAMS,
    STATUS,
    STATUS_SIZE,
    code_identity,
    folder_problem,
    may_be_served,
    peer_credentials,
    runtime_folder,
    socket_path,
)


def served_status(argv: list[str]) -> int | None:
    """The exit status of ``argv`` run by a warm server, or None when none runs it."""
    if not may_be_served(argv):
        return None
    if not _standard_streams_open():
        return None
    descriptors = _descriptors()  # before this process opens any of its own
    if descriptors is None:
        return None
    folder = runtime_folder()
    if folder_problem(folder) is not None:
        return None
    identity = code_identity()
    connection = _connect(socket_path(folder, identity))
    if connection is None:
        return None
    with connection:
        return _hand_over(connection, argv, identity, descriptors)


def server_status() -> tuple[bool, str]:
    """Whether a server serves this code for this user, and a line saying where or why not."""
    folder = runtime_folder()
    problem = folder_problem(folder)
    if problem is not None:
        return False, f"no server: {problem}"
    path = socket_path(folder, code_identity())
    connection = _connect(path)
    if connection is None:
        return False, f"no server for this code (it would listen at {path})"
    with connection:  # closed unasked: the worker takes it for a probe and says nothing
        pid = peer_credentials(connection)[0]
    return True, f"a server for this code listens at {path} (pid {pid})"


def _standard_streams_open() -> bool:
    """Whether this process started with all three standard streams.

    When one was closed, the interpreter has no ``sys.stdin`` (or stdout, stderr) and
    the descriptor number may since belong to anything this process opened, the socket
    included: handing "fd 0" over would give the worker that, not what the command
    would have read here.
    """
    if sys.stdin is None or sys.stdout is None or sys.stderr is None:
        return False
    try:
        for descriptor in STANDARD_STREAMS:
            os.fstat(descriptor)
    except OSError:
        return False
    return True


def _descriptors() -> list[int] | None:
    """Every descriptor this process holds, standard streams first; None when they cannot
    be listed or are too many to hand over.

    A command may read one by name (``lint <(cat Dockerfile)`` is ``lint /dev/fd/63``): the
    worker must hold the same open file under the same number.
    """
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return None
    others = []
    for name in names:
        if int(name) in STANDARD_STREAMS:
            continue
        try:
            os.fstat(int(name))
        except OSError:
            continue  # the listing's own, closed by now
        others.append(int(name))
    if len(others) > MAX_OTHER_DESCRIPTORS:
        return None
    return [*STANDARD_STREAMS, *sorted(others)]


def _connect(path: str) -> socket.socket | None:
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        connection.connect(path)
        uid = peer_credentials(connection)[1]
    except OSError:
        connection.close()
        return None
    # The folder is this user's alone; this closes the gap between checking it and connecting.
    if uid != os.geteuid():
        connection.close()
        return None
    return connection


def _hand_over(connection: socket.socket, argv: list[str], identity: str,
               descriptors: list[int]) -> int | None:
    umask = os.umask(0o077)
    os.umask(umask)
    request = json.dumps({"code": identity, "argv": argv, "env": dict(os.environ),
                          "umask": umask, "descriptors": descriptors}).encode()
    try:
        # O_PATH: a folder this user may enter but not list is still a working folder.
        cwd = os.open(".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        socket.send_fds(connection, [MAGIC + struct.pack("!I", len(request))],
                        [*descriptors, cwd])
        connection.sendall(request)
    except OSError:
        return None  # a standard stream is closed, or the server went away: run it here
    finally:
        os.close(cwd)
    return _relay(connection)


def _relay(connection: socket.socket) -> int | None:
    """Pass signals on to the worker until it reports its status."""
    received: list[int] = []

    def forward(signum: int, frame: FrameType | None) -> None:
        received.append(signum)
        with contextlib.suppress(OSError):  # the worker is gone: its status says the rest
            connection.send(bytes([signum]))

    previous = {signum: signal.signal(signum, forward) for signum in FORWARDED_SIGNALS}
    try:
        status = _await_status(connection, received)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if status is None and received:
        _end_by(received[0])
    return status


def _await_status(connection: socket.socket, received: list[int]) -> int | None:
    buffer = b""
    running = False
    while True:
        try:
            chunk = connection.recv(64)
        except OSError:
            chunk = b""
        if not chunk:
            break
        buffer += chunk
        if not running:
            if buffer.startswith(DECLINED):
                break
            running = buffer.startswith(RUNNING)
            buffer = buffer[len(RUNNING):] if running else buffer
        if running and len(buffer) >= len(STATUS) + STATUS_SIZE and buffer.startswith(STATUS):
            return int(struct.unpack("!i", buffer[1:1 + STATUS_SIZE])[0])
    if received:
        # The worker ended by the signal passed on to it (SIGTERM and SIGHUP end a command
        # that does not handle them), or it stopped before anything ran: either way the
        # command line's own process would have ended by that signal.
        return None
    if running:
        print("paracle-guard: the warm server's worker ended without an exit status "
              "(killed?); see the server's log", file=sys.stderr)
        return ERROR
    return None


def _end_by(signum: int) -> None:
    """End this process as the signal ``signum`` ends it, as an unserved command line
    that received it would have ended: the shell sees the signal, not an exit code
    (bash stops a loop only when its command died of SIGINT)."""
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)
    sys.exit(SIGNALLED + signum)  # not reached unless the signal is blocked
