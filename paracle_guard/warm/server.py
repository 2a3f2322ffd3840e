"""``paracle-guard serve``: import everything once, then fork a worker per command line.

The server listens on a socket in a folder only its user can enter, named by the
code it runs (``protocol.code_identity``); it answers only its own user (SO_PEERCRED),
and stops by itself once its code changes on disk, since no command line would find
it any more. Workers are forked from a process that has only imported modules and
built the command line's click objects: nothing a command read, wrote or cached
survives from one command to the next.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import gc
import importlib
import os
import pkgutil
import resource
import signal
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import paracle_guard
from paracle_guard.errors import InputError
from paracle_guard.warm.protocol import (
    SERVED,
    code_identity,
    folder_problem,
    peer_credentials,
    runtime_folder,
    socket_path,
)

# Imported inside functions, by the commands or by requests (netrc, on the first request),
# so not reached by importing every module of the package.
IMPORTED_LATER = ("docker", "yaml", "jsonschema", "jsonschema.protocols", "rich.console",
                  "rich.progress", "rich.table", "rich.text", "netrc")
STALENESS_CHECK_SECONDS = 30.0
LOG_DESCRIPTOR_FLOOR = 1000
SO_PEERPIDFD = getattr(socket, "SO_PEERPIDFD", 77)  # Linux 6.5; named by Python 3.13


@dataclass(frozen=True)
class Server:
    """What every worker inherits from the server."""

    identity: str  # protocol.code_identity() when the server started
    environment: dict[str, str]  # the server's, when its modules were imported
    command_line: Callable[[list[str]], Any]  # cli.command_line, built once
    log: Callable[[str], None]  # the server's own stderr
    log_descriptor: int  # where log writes: a worker gives fd 2 to its client


def serve(build_command_line: Callable[[], Callable[[list[str]], Any]]) -> None:
    """Serve until interrupted, or until the code on disk changes; log on stderr.

    ``build_command_line``: ``cli.command_line`` for the served commands (passed in: the
    command line sits above this module in the house plan).
    """
    _close_inherited_descriptors()  # first, before the server opens anything
    log_descriptor = _out_of_the_way(2)
    log = _logger(log_descriptor)
    _require_peer_pidfds()
    identity = code_identity()
    folder = runtime_folder()
    _make_private_folder(folder)
    _preload()
    server = Server(identity=identity, environment=dict(os.environ),
                    command_line=build_command_line(), log=log,
                    log_descriptor=log_descriptor)
    gc.collect()
    gc.freeze()  # forked workers then share the server's objects instead of copying them
    path = socket_path(folder, identity)
    previous_handler = signal.signal(signal.SIGTERM, _stop)
    try:
        with _listening(path) as listener:
            log(f"serving {', '.join(sorted(SERVED))} at {path}; stop with Ctrl-C")
            _accept_until_stale(listener, server)
    except KeyboardInterrupt:
        log("stopped")
    finally:
        signal.signal(signal.SIGTERM, previous_handler)


def _out_of_the_way(descriptor: int) -> int:
    """A copy of ``descriptor`` at a high number: a worker puts the client's descriptors at
    their own numbers, and the lower ones are the ones command lines hold."""
    soft_limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    floor = min(LOG_DESCRIPTOR_FLOOR, max(3, soft_limit - 1))
    return fcntl.fcntl(descriptor, fcntl.F_DUPFD_CLOEXEC, floor)


def _logger(descriptor: int) -> Callable[[str], None]:
    def log(line: str) -> None:
        os.write(descriptor, f"paracle-guard serve: {line}\n".encode(errors="replace"))

    return log


def _close_inherited_descriptors() -> None:
    """Close what the server's own parent left open besides the standard streams.

    Every worker would hold it too, and a command that names a descriptor (``lint
    /dev/fd/10``) would read the server's where the command line's own process has
    none.
    """
    for name in os.listdir("/proc/self/fd"):
        if int(name) > 2:
            with contextlib.suppress(OSError):  # the listing's own, closed by now
                os.close(int(name))


def _stop(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM stops the server as Ctrl-C does: socket removed


def _make_private_folder(folder: str) -> None:
    with contextlib.suppress(FileExistsError):
        os.mkdir(folder, 0o700)
    problem = folder_problem(folder)
    if problem is not None:
        raise InputError(f"cannot serve: {problem}")


def _preload() -> None:
    """Import every module a command may import, and build every pydantic model whose
    validator is built on first use (``defer_build``, which keeps them off lint's path in
    a fresh process): each worker would otherwise build them again."""
    for module in pkgutil.walk_packages(paracle_guard.__path__, "paracle_guard."):
        importlib.import_module(module.name)
    for name in IMPORTED_LATER:
        importlib.import_module(name)
    from pydantic import BaseModel

    for model in _subclasses(BaseModel):
        if model.__module__.startswith("paracle_guard.") and not model.__pydantic_complete__:
            model.model_rebuild(force=True)


def _subclasses(base: type[Any]) -> list[type[Any]]:
    found: list[type[Any]] = []
    direct: list[type[Any]] = base.__subclasses__()
    for subclass in direct:
        found += [subclass, *_subclasses(subclass)]
    return found


@contextlib.contextmanager
def _listening(path: str) -> Iterator[socket.socket]:
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    bound: int | None = None
    try:
        bound = _bind(listener, path)
        listener.listen(64)
        listener.settimeout(STALENESS_CHECK_SECONDS)
        yield listener
    finally:
        listener.close()
        # Only our own socket: another server may have taken the name since.
        with contextlib.suppress(OSError):
            if bound is not None and os.stat(path).st_ino == bound:
                os.unlink(path)


def _bind(listener: socket.socket, path: str) -> int:
    """Bind ``listener`` to ``path``; the inode of the socket made there."""
    try:
        listener.bind(path)
    except OSError as error:
        if error.errno != errno.EADDRINUSE:
            raise InputError(f"cannot serve at {path}: {error.strerror}") from None
        if _answers(path):
            raise InputError(f"a server for this code already listens at {path}") from None
        os.unlink(path)  # left by a server that died
        listener.bind(path)
    return os.stat(path).st_ino


def _answers(path: str) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(path)
        except OSError:
            return False
    return True


def _accept_until_stale(listener: socket.socket, server: Server) -> None:
    previous_handler = signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps workers
    try:
        while True:
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                if code_identity() != server.identity:
                    server.log("the code on disk changed: stopping (start the server again)")
                    return
                continue
            with connection:
                connection.settimeout(None)
                _fork_worker(connection, listener, server)
    finally:
        signal.signal(signal.SIGCHLD, previous_handler)


def _fork_worker(connection: socket.socket, listener: socket.socket, server: Server) -> None:
    pid, uid, _ = peer_credentials(connection)
    if uid != os.geteuid():
        server.log(f"refused pid {pid}: uid {uid} is not this server's user")
        return
    try:
        pidfd = _peer_pidfd(connection)
    except OSError as error:
        server.log(f"refused pid {pid}: no descriptor of its process ({error.strerror})")
        return
    child = -1
    try:
        child = os.fork()
    finally:
        if child != 0:  # the server's copy (or fork failed)
            os.close(pidfd)
    if child != 0:
        return
    # The worker: it never returns into the server's loop.
    status = 2
    try:
        listener.close()
        _restore_signals()
        from paracle_guard.warm.worker import serve_one

        status = serve_one(connection, pid, pidfd, server)
    finally:
        os._exit(status & 0xFF)


def _peer_pidfd(connection: socket.socket) -> int:
    """A pidfd of the process that connected. Unlike its process ID, it cannot come to
    name another process: ``peer.replaced`` asks it whether the client still runs."""
    return int(connection.getsockopt(socket.SOL_SOCKET, SO_PEERPIDFD))


def _require_peer_pidfds() -> None:
    """Refuse to serve on a kernel that cannot name the process at the other end of a
    socket (SO_PEERPIDFD, Linux 6.5): a process ID alone may name another process by the
    time it is read, and a worker would run a command in that process's context."""
    ends = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        os.close(_peer_pidfd(ends[0]))
    except OSError as error:
        raise InputError(
            f"cannot serve: this kernel gives no pidfd of a socket's peer (SO_PEERPIDFD, "
            f"Linux 6.5 and later: {error.strerror}), so a worker could not be sure which "
            "process it serves; commands run in their own process") from None
    finally:
        for end in ends:
            end.close()


def _restore_signals() -> None:
    """What a fresh interpreter starts with: SIGCHLD reported (subprocess needs it), SIGINT
    as KeyboardInterrupt, SIGPIPE ignored, the rest at the system default."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
