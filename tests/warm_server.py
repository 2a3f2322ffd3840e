"""A real ``paracle-guard serve`` for tests, in a runtime folder of its own.

The server and its clients are started the way the console script starts them
(``paracle_guard.entry``), by this interpreter, so that they run the same code.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from paracle_guard.warm.server import SO_PEERPIDFD

ENTRY = [sys.executable, "-c", "from paracle_guard.entry import main; main()"]
READY = "serving "


def _kernel_names_socket_peers() -> bool:
    """Whether this kernel gives a pidfd of a socket's peer (Linux 6.5): the server needs it."""
    ends = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        os.close(ends[0].getsockopt(socket.SOL_SOCKET, SO_PEERPIDFD))
    except OSError:
        return False
    finally:
        for end in ends:
            end.close()
    return True


# On an older kernel `serve` refuses to start (tests/warm/test_client.py checks that).
needs_a_server = pytest.mark.skipif(not _kernel_names_socket_peers(),
                                    reason="the kernel has no SO_PEERPIDFD (Linux < 6.5)")


@dataclass
class WarmServer:
    process: subprocess.Popen[bytes]
    env: dict[str, str]  # the environment a client needs to be served
    log: Path
    folder: Path  # the socket's folder

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def ran(self) -> int:
        """How many commands a worker has run."""
        return self.log_text().count(": ran ")

    def declined(self) -> list[str]:
        return [line for line in self.log_text().splitlines() if ": declined " in line]

    def run(self, *args: str, cwd: Path | None = None, input: bytes | None = None,
            env: dict[str, str] | None = None, timeout: float = 120,
            preexec_fn: Callable[[], object] | None = None,
            ) -> subprocess.CompletedProcess[bytes]:
        """``paracle-guard ARGS`` as a command line that may be served."""
        return subprocess.run([*ENTRY, *args], input=input, capture_output=True, cwd=cwd,
                              env={**self.env, **(env or {})}, timeout=timeout, check=False,
                              preexec_fn=preexec_fn)

    def run_unserved(self, *args: str, cwd: Path | None = None, input: bytes | None = None,
                     ) -> subprocess.CompletedProcess[bytes]:
        return self.run(*args, cwd=cwd, input=input, env={"PARACLE_GUARD_NO_SERVER": "1"})


def server_environment(runtime: Path) -> dict[str, str]:
    runtime.mkdir(mode=0o700, exist_ok=True)
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime)}
    env.pop("PARACLE_GUARD_NO_SERVER", None)
    return env


def start_server(runtime: Path, log: Path, pass_fds: tuple[int, ...] = ()) -> WarmServer:
    env = server_environment(runtime)
    with log.open("wb") as sink:
        process = subprocess.Popen([*ENTRY, "serve"], env=env, stdout=subprocess.DEVNULL,
                                   stderr=sink, pass_fds=pass_fds)
    server = WarmServer(process=process, env=env, log=log, folder=runtime / "paracle-guard")
    deadline = time.monotonic() + 60
    while READY not in server.log_text():
        if process.poll() is not None or time.monotonic() > deadline:
            stop_server(server)
            raise AssertionError(f"paracle-guard serve did not start: {server.log_text()}")
        time.sleep(0.05)
    return server


def stop_server(server: WarmServer) -> None:
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)
        try:
            server.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()


@contextlib.contextmanager
def warm_server(runtime: Path, log: Path) -> Iterator[WarmServer]:
    server = start_server(runtime, log)
    try:
        yield server
    finally:
        stop_server(server)
