"""`paracle-guard authz serve`: bad options are one line, exit 2; SIGTERM removes the socket."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.authz.test_server import post

CLI = [sys.executable, "-c", "from paracle_guard.cli import main; main()", "authz", "serve"]


@pytest.mark.parametrize(("options", "message"), [
    (["--decision-timeout", "0"], "--decision-timeout 0"),
    (["--decision-timeout", "nan"], "--decision-timeout nan"),
    (["--engine", "tcp://10.0.0.1:2375"], "expected unix:///path"),
    (["--policy", "no-such-policy"], "no-such-policy"),
    (["--audit-log", "/proc/version/audit.jsonl"], "--audit-log"),
])
def test_bad_options(options: list[str], message: str, tmp_path: Path) -> None:
    done = subprocess.run([*CLI, "--socket", str(tmp_path / "p.sock"), *options],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and message in done.stderr
    assert "Traceback" not in done.stderr


def test_serves_until_sigterm_then_removes_its_socket(tmp_path: Path) -> None:
    socket_path = tmp_path / "plugins" / "pg.sock"
    audit = tmp_path / "audit.jsonl"
    process = subprocess.Popen([*CLI, "--policy", "sandbox", "--socket", str(socket_path),
                                "--audit-log", str(audit),
                                "--engine", str(tmp_path / "no-engine.sock")],
                               stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(600):
            if socket_path.is_socket():
                break
            time.sleep(0.05)
        assert socket_path.stat().st_mode & 0o777 == 0o600
        status, answer = post(str(socket_path), "/ParacleGuard.Status", b"{}")
        assert status == 200 and answer["Policy"]["Name"] == "sandbox"
    finally:
        process.send_signal(signal.SIGTERM)
        _, errors = process.communicate(timeout=30)
    assert process.returncode == 0, errors
    assert "--authorization-plugin=pg" in errors
    assert not socket_path.exists()
    assert audit.read_text() == ""  # created up front; no decision was asked for
