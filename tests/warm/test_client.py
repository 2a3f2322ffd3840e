"""The command line's side of the hand-over: cheap, and never in the way."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from paracle_guard.errors import InputError
from paracle_guard.warm import server as server_module
from paracle_guard.warm.client import served_status

HEAVY = ("typer", "click", "pydantic", "docker", "requests", "yaml", "rich", "jsonschema",
         "dockerfile_parse")


def test_the_hand_over_imports_only_the_standard_library() -> None:
    probe = ("import sys, paracle_guard.entry, paracle_guard.warm.client; "
             f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))")
    found = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                           check=True)
    assert found.stdout.strip() == "[]"


@pytest.mark.parametrize("argv", [["paracle-guard"], ["paracle-guard", "serve"],
                                  ["paracle-guard", "authz", "serve"],
                                  ["paracle-guard", "--version"]])
def test_commands_that_are_never_served(argv: list[str], tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    assert served_status(argv) is None


def test_no_server_means_the_command_line_runs_it(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "paracle-guard").mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    assert served_status(["paracle-guard", "lint", "Dockerfile"]) is None


def test_the_server_stops_once_its_code_changes(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    logged: list[str] = []
    state = server_module.Server(identity="the code it loaded", environment={},
                                 command_line=lambda argv: None, log=logged.append,
                                 log_descriptor=2)
    monkeypatch.setattr(server_module, "code_identity", lambda: "the code on disk now")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(str(tmp_path / "socket"))
        listener.listen()
        listener.settimeout(0.01)
        server_module._accept_until_stale(listener, state)
    assert logged == ["the code on disk changed: stopping (start the server again)"]


def test_a_kernel_that_cannot_name_a_peer_process_is_not_served(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # An option number no kernel knows gets the answer a kernel before 6.5 gives.
    monkeypatch.setattr(server_module, "SO_PEERPIDFD", 0x7FFF)
    with pytest.raises(InputError, match=r"^cannot serve: this kernel gives no pidfd"):
        server_module._require_peer_pidfds()


def test_the_server_leaves_no_model_for_its_workers_to_build() -> None:
    probe = ("from pydantic import BaseModel\n"
             "from paracle_guard.warm import server\n"
             "server._preload()\n"
             "print(sorted(m.__qualname__ for m in server._subclasses(BaseModel)\n"
             "             if m.__module__.startswith('paracle_guard.')\n"
             "             and not m.__pydantic_complete__))\n")
    found = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                           check=True)
    assert found.stdout.strip() == "[]"


def test_with_no_runtime_folder_the_command_line_does_not_look_further(tmp_path: Path) -> None:
    probe = ("import sys\n"
             "from paracle_guard.entry import main\n"
             "sys.argv = ['paracle-guard', 'rules']\n"
             "try:\n"
             "    main()\n"
             "except SystemExit:\n"
             "    pass\n"
             "print('paracle_guard.warm.client' in sys.modules, file=sys.stderr)\n")
    env = {**os.environ, "XDG_RUNTIME_DIR": str(tmp_path)}
    env.pop("PARACLE_GUARD_NO_SERVER", None)
    found = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                           check=True, env=env)
    assert found.stderr.strip() == "False"
    (tmp_path / "paracle-guard").mkdir(mode=0o700)
    found = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                           check=True, env=env)
    assert found.stderr.strip() == "True"  # a folder: it looks for a server, finds none
