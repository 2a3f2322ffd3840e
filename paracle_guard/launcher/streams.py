"""The container's streams: stdin in, stdout and stderr out, until the end or the deadline.

The Docker Engine multiplexes a container's stdout and stderr on one attached
socket (8-byte frame headers, as it sends them without a TTY). ``stream``
demultiplexes them as they arrive; its read loop waits with ``select`` up to
the deadline, so a timeout always fires, and a signal handler can interrupt it.
"""

from __future__ import annotations

import os
import select
import socket
import struct
import threading
import time
from collections.abc import Callable
from typing import IO, Any, Protocol

from paracle_guard.launcher.refusal import LaunchError

_FRAME_HEADER = struct.Struct(">BxxxL")
_STDOUT, _STDERR = 1, 2
_READ_SIZE = 64 * 1024
# After a kill, how long the engine gets to close the streams before we stop reading.
DRAIN_SECONDS = 10.0


class Sink(Protocol):
    def write(self, data: bytes, /) -> Any: ...

    def flush(self) -> Any: ...


def raw_socket(attached: Any) -> socket.socket:
    """The socket under what the SDK's ``attach_socket`` returns (a SocketIO on unix sockets)."""
    if isinstance(attached, socket.socket):
        return attached
    inner = getattr(attached, "_sock", None)
    if isinstance(inner, socket.socket):
        return inner
    raise LaunchError(f"cannot stream over this engine connection ({type(attached).__name__})")


def feed_stdin(sock: socket.socket, source: bytes | IO[bytes]) -> threading.Thread:
    """Send ``source`` to the command in the background, then close the write half (EOF)."""

    def pump() -> None:
        try:
            if isinstance(source, bytes):
                sock.sendall(source)
            else:
                fileno = source.fileno()
                while chunk := os.read(fileno, _READ_SIZE):
                    sock.sendall(chunk)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            # The command exited (or was killed) without reading all of its input.
            return

    thread = threading.Thread(target=pump, name="paracle-guard-stdin", daemon=True)
    thread.start()
    return thread


class _Demux:
    """Turns the engine's multiplexed frames back into stdout and stderr bytes."""

    def __init__(self, stdout: Sink, stderr: Sink) -> None:
        self._sinks = {_STDOUT: stdout, _STDERR: stderr}
        self._pending = bytearray()

    def feed(self, data: bytes) -> None:
        self._pending += data
        touched: set[int] = set()
        while len(self._pending) >= _FRAME_HEADER.size:
            kind, size = _FRAME_HEADER.unpack_from(self._pending)
            end = _FRAME_HEADER.size + size
            if len(self._pending) < end:
                break
            # Frame kind 0 is stdin echoed back; it never occurs without a TTY.
            sink = self._sinks.get(kind, self._sinks[_STDERR])
            sink.write(bytes(self._pending[_FRAME_HEADER.size:end]))
            touched.add(kind)
            del self._pending[:end]
        for kind in touched:
            self._sinks.get(kind, self._sinks[_STDERR]).flush()


def stream(
    sock: socket.socket,
    stdout: Sink,
    stderr: Sink,
    *,
    deadline: float | None,
    on_timeout: Callable[[], None],
) -> bool:
    """Copy the container's output to the sinks as it arrives, until the streams close.

    True when the deadline passed (the command was killed), False when it ended.
    At ``deadline`` (a ``time.monotonic()`` value) ``on_timeout()`` is called once
    (it kills the container); output then drains for at most DRAIN_SECONDS.
    """
    demux = _Demux(stdout, stderr)
    timed_out = False
    drain_until = 0.0
    while True:
        now = time.monotonic()
        # Checked before every read, so a command that never stops writing still times out.
        if not timed_out and deadline is not None and now >= deadline:
            timed_out = True
            on_timeout()
            drain_until = now + DRAIN_SECONDS
        if timed_out and now >= drain_until:
            break  # the engine did not close the streams in time; give up on them
        limit = drain_until if timed_out else deadline
        readable, _, _ = select.select([sock], [], [], None if limit is None else limit - now)
        if not readable:
            continue
        try:
            data = sock.recv(_READ_SIZE)
        except OSError:
            break
        if not data:
            break
        demux.feed(data)
    return timed_out
