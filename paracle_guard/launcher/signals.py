"""SIGINT and SIGTERM during a launch: raised where it is safe, held where it is not.

A signal inside an armed section raises ``Interrupted`` at once, so a long
stream or wait ends and the launch's cleanup runs. Inside ``deferred()`` (the
create call) it is only noted and raised when the section ends: a create that
is cut off may leave a container whose ID never reached the launcher, and
cleanup by ID needs that ID. During cleanup nothing is armed, so a second
Ctrl-C cannot abort the removal of the very container the user wants gone.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

from paracle_guard.exit_codes import SIGNALLED


class Interrupted(Exception):
    """SIGINT or SIGTERM arrived during a launch; the container is removed before it propagates."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"interrupted by {signal.Signals(signum).name}")
        self.signum = signum
        # What became of the container, filled in by the launch's cleanup.
        self.cleanup = "no container had been created"

    @property
    def exit_code(self) -> int:
        return SIGNALLED + self.signum


def interruption_in(error: BaseException) -> Interrupted | None:
    """The ``Interrupted`` behind ``error``, if any.

    A signal can land inside an import or a class body; Python then reports
    another exception caused by it (``RuntimeError: Error calling __set_name__``).
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, Interrupted):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


class SignalGuard:
    """Turns SIGINT/SIGTERM into ``Interrupted``, but only inside ``armed()``."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self._armed = False
        self.pending: int | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if not self._armed:
            self.pending = self.pending or signum
            return
        self._armed = False
        raise Interrupted(signum)

    def _raise_pending(self) -> None:
        if self.pending is not None:
            raise Interrupted(self.pending)

    @contextlib.contextmanager
    def armed(self) -> Iterator[None]:
        self._raise_pending()  # arrived before the launch got going
        self._armed = True
        try:
            yield
        finally:
            self._armed = False

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        """Hold signals for the duration; raise the first one when it ends."""
        was_armed, self._armed = self._armed, False
        try:
            yield
        finally:
            self._armed = was_armed
        if was_armed:
            self._raise_pending()

    def __enter__(self) -> SignalGuard:
        # Handlers can only be installed from the main thread; elsewhere the
        # caller's own handling (KeyboardInterrupt) still reaches launch's cleanup.
        if threading.current_thread() is threading.main_thread():
            for signum in self.SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
