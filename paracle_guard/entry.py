"""The ``paracle-guard`` command: a warm server runs it when one serves this code, else
this process does.

Nothing heavier than the standard library is imported before that choice: the
point of the server is that a command line costs an interpreter and a socket.
"""

from __future__ import annotations

import os
import sys


def main() -> None:
    # pydantic looks for plugins (the entry points of every installed distribution) when
    # it builds the first model: ~10 ms of each run for plugins a command line never
    # uses. A user who sets the variable keeps their choice. Set before the hand-over,
    # so that a worker sees the environment this process would have had.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    from paracle_guard.warm.protocol import may_be_served

    if may_be_served(sys.argv):
        from paracle_guard.warm.client import served_status

        status = served_status(sys.argv)
        if status is not None:
            sys.exit(status)
    from paracle_guard.cli import app

    app()
