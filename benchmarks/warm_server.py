"""A warm-start server (`paracle-guard serve`) for the length of a benchmark."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

READY = "serving "


@contextlib.contextmanager
def served(executable: str, env: dict[str, str]) -> Iterator[dict[str, str]]:
    """Start ``paracle-guard serve`` in a runtime folder of its own; the environment a
    command line needs to be served by it (the same as the server's)."""
    with tempfile.TemporaryDirectory(prefix="paracle-guard-serve-bench-") as runtime:
        os.chmod(runtime, 0o700)
        served_env = {**env, "XDG_RUNTIME_DIR": runtime}
        served_env.pop("PARACLE_GUARD_NO_SERVER", None)
        log = Path(runtime) / "serve.log"
        with log.open("wb") as sink:
            server = subprocess.Popen([executable, "serve"], env=served_env,
                                      stdout=subprocess.DEVNULL, stderr=sink)
        try:
            deadline = time.monotonic() + 60
            while READY not in log.read_text(errors="replace"):
                if server.poll() is not None or time.monotonic() > deadline:
                    sys.exit(f"paracle-guard serve did not start: {log.read_text()}")
                time.sleep(0.05)
            yield served_env
        finally:
            server.terminate()
            server.wait(timeout=30)
        served_count = log.read_text(errors="replace").count(": ran ")
        print(f"(the warm server ran {served_count} commands)", file=sys.stderr)


def unserved(env: dict[str, str]) -> dict[str, str]:
    """``env`` for a command line that must run in its own process."""
    return {**env, "PARACLE_GUARD_NO_SERVER": "1"}
