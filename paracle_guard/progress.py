"""Progress of long image reads: what was read, and a terminal line that shows it.

Sources fill an ``ImageRead`` as they go and hand it to a ``ReadProgress``.
``TerminalProgress`` draws it with rich on standard error, but only once a
read has taken longer than ``DELAY`` seconds: a check answered from the cache
never imports rich, and never draws. The CLI uses it only when standard error
is a terminal and the output is not JSON; everywhere else nothing is shown.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Protocol

DELAY = 1.0
# How often a read reports bytes: often enough for a smooth line, rarely enough to be free.
REPORT_EVERY = 4 << 20


@dataclass
class ImageRead:
    """What reading one image took: how its layers were found, and how many bytes were read."""

    ref: str
    layers: int = 0  # layers of the image
    cached_layers: int = 0  # layers whose facts came from the cache
    read_layers: int = 0  # layers read so far
    bytes_read: int = 0
    total_bytes: int | None = None  # what the read will take, when known
    image_cached: bool = False  # the whole image's facts came from the cache
    method: str = "cache"  # "cache", "layer store" or "docker save"
    started: float = field(default_factory=time.monotonic)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started


class ReadProgress(Protocol):
    def update(self, read: ImageRead) -> None: ...

    def done(self, read: ImageRead) -> None: ...


class TerminalProgress:
    """A transient rich progress line on standard error, shown after ``DELAY`` seconds."""

    def __init__(self, delay: float = DELAY, console: Any = None) -> None:
        self.delay = delay
        self._console = console  # a rich Console; standard error by default
        self._progress: Any = None
        self._task: Any = None

    def update(self, read: ImageRead) -> None:
        if self._progress is None:
            if read.elapsed < self.delay:
                return
            self._start(read)
        self._progress.update(
            self._task, completed=read.bytes_read, total=read.total_bytes,
            description=self._describe(read),
        )

    def done(self, read: ImageRead) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def _start(self, read: ImageRead) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self._progress = Progress(
            TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
            TimeElapsedColumn(), console=self._console or Console(stderr=True), transient=True,
        )
        self._task = self._progress.add_task(self._describe(read), total=read.total_bytes)
        self._progress.start()

    @staticmethod
    def _describe(read: ImageRead) -> str:
        cached = f" ({read.cached_layers} more cached)" if read.cached_layers else ""
        return (f"reading {read.ref} through {read.method}: "
                f"{read.read_layers}/{read.layers - read.cached_layers} layers{cached}")
