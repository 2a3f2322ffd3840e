"""Where the server listens and which code it serves."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from paracle_guard.warm.protocol import (
    code_identity,
    folder_problem,
    runtime_folder,
    socket_path,
)


@pytest.fixture
def package(tmp_path: Path) -> Path:
    folder = tmp_path / "package"
    (folder / "rules").mkdir(parents=True)
    (folder / "__init__.py").write_text("")
    (folder / "rules" / "user.py").write_text("RULE = 1\n")
    (folder / "policy.yaml").write_text("name: x\n")
    return folder


def test_the_identity_changes_with_any_source_or_data_file(package: Path) -> None:
    before = code_identity(str(package))
    assert code_identity(str(package)) == before
    rule = package / "rules" / "user.py"
    rule.write_text("RULE = 2\n")  # same size, new mtime
    os.utime(rule, ns=(1, 1))
    edited = code_identity(str(package))
    assert edited != before
    (package / "policy.yaml").write_text("name: xy\n")
    assert code_identity(str(package)) != edited


def test_the_identity_ignores_bytecode_and_other_files(package: Path) -> None:
    before = code_identity(str(package))
    (package / "__pycache__").mkdir()
    (package / "__pycache__" / "user.cpython-311.pyc").write_bytes(b"\0")
    (package / "notes.txt").write_text("not code\n")
    assert code_identity(str(package)) == before


def test_the_identity_names_the_interpreter_and_the_installed_code() -> None:
    identity = code_identity()
    assert os.path.realpath(sys.executable) in identity
    assert "warm/protocol.py" in identity
    assert ".dist-info@" in identity


def test_a_socket_name_depends_only_on_the_identity(tmp_path: Path) -> None:
    assert socket_path(str(tmp_path), "a") == socket_path(str(tmp_path), "a")
    assert socket_path(str(tmp_path), "a") != socket_path(str(tmp_path), "b")


def test_the_runtime_folder_follows_xdg(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/run/user/1000")
    assert runtime_folder() == "/run/user/1000/paracle-guard"
    monkeypatch.setenv("XDG_RUNTIME_DIR", "relative/ignored")  # XDG: relative paths are invalid
    assert runtime_folder() == f"/tmp/paracle-guard-{os.geteuid()}"
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    assert runtime_folder() == f"/tmp/paracle-guard-{os.geteuid()}"


def test_only_a_private_folder_of_this_user_holds_the_socket(tmp_path: Path) -> None:
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    os.chmod(private, 0o700)
    assert folder_problem(str(private)) is None
    os.chmod(private, 0o750)
    assert "open to other users (mode 750)" in (folder_problem(str(private)) or "")
    link = tmp_path / "link"
    os.chmod(private, 0o700)
    link.symlink_to(private)
    assert "is not a folder" in (folder_problem(str(link)) or "")
    assert "No such file" in (folder_problem(str(tmp_path / "missing")) or "")
    if os.geteuid() == 0:
        os.chown(private, 65534, 65534)
        assert "belongs to uid 65534" in (folder_problem(str(private)) or "")
