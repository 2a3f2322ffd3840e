"""The progress line: nothing for a quick read, a rich line on standard error for a long one."""

from __future__ import annotations

import io
import sys

import pytest

from paracle_guard.progress import ImageRead, TerminalProgress


def test_a_quick_read_draws_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    progress = TerminalProgress(delay=60)
    read = ImageRead(ref="img", layers=3)
    progress.update(read)
    progress.done(read)
    assert capsys.readouterr() == ("", "")


def test_a_long_read_draws_layers_and_bytes_on_a_terminal() -> None:
    from rich.console import Console

    screen = io.StringIO()
    progress = TerminalProgress(delay=0, console=Console(file=screen, force_terminal=True,
                                                         width=150))
    read = ImageRead(ref="busy:1", layers=3, cached_layers=1, total_bytes=10 << 20,
                     method="layer store")
    read.read_layers, read.bytes_read = 1, 5 << 20
    progress.update(read)
    assert "rich.progress" in sys.modules
    progress.done(read)
    assert "reading busy:1 through layer store: 1/2 layers (1 more cached)" in screen.getvalue()
    assert "5.2/10.5 MB" in screen.getvalue()
