"""--env-file: docker run's format, read safely, one line per problem naming file and line."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from paracle_guard.errors import InputError
from paracle_guard.launcher.envfile import ENV_FILE_LIMIT, read_env_file

SECRET = re.compile(r"(?i)(secret|token|passw(or)?d|api_?key)")


def env_file(tmp_path: Path, content: bytes | str, mode: int = 0o600) -> Path:
    path = tmp_path / "vars.env"
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    path.chmod(mode)
    return path


def read(path: Path, host: dict[str, str] | None = None) -> dict[str, str]:
    return read_env_file(path, host_env=host or {},
                         is_secret=lambda name: bool(SECRET.search(name))).values


def test_values_are_taken_as_docker_takes_them(tmp_path: Path) -> None:
    path = env_file(tmp_path, "\ufeffFIRST=1\n"
                              "   # a comment\n"
                              "\n"
                              "  SPACED=  kept as is  \n"
                              "QUOTED=\"not unquoted\"\n"
                              "EQUALS=a=b\n"
                              "EMPTY=\n"
                              "CRLF=windows\r\n"
                              "FROM_HOST\n"
                              "UNSET_ON_HOST\n")
    assert read(path, {"FROM_HOST": "host value"}) == {
        "FIRST": "1", "SPACED": "  kept as is  ", "QUOTED": '"not unquoted"', "EQUALS": "a=b",
        "EMPTY": "", "CRLF": "windows", "FROM_HOST": "host value",
    }


@pytest.mark.parametrize(("content", "message"), [
    ("OK=1\nBAD NAME=x\n", r"vars.env:2: 'BAD NAME' is not a variable name"),
    ("OK=1\n=x\n", r"vars.env:2: '' is not a variable name"),
    (b"OK=1\nV=\xff\n", r"vars.env:2: not valid UTF-8"),
    ("A=1\0\n", r"vars.env:1: contains a NUL byte"),
    ("A=" + "x" * 70_000 + "\n", r"vars.env:1: line longer than 65536 bytes"),
])
def test_bad_lines_are_named(tmp_path: Path, content: bytes | str, message: str) -> None:
    with pytest.raises(InputError, match=message) as refused:
        read(env_file(tmp_path, content))
    assert str(refused.value).startswith(f"--env-file {tmp_path / 'vars.env'}:")
    assert "\n" not in str(refused.value)


def test_a_secret_needs_a_file_only_its_owner_can_read(tmp_path: Path) -> None:
    path = env_file(tmp_path, "LOG_LEVEL=info\nAPI_TOKEN=s3cr3t\n", mode=0o644)
    with pytest.raises(InputError) as refused:
        read(path)
    assert str(refused.value) == (
        f"--env-file {path}:2: API_TOKEN looks like a secret, but the file is readable by "
        f"group or others (mode 0644); run chmod 600 {path}")
    path.chmod(0o600)
    loaded = read_env_file(path, host_env={}, is_secret=lambda n: bool(SECRET.search(n)))
    assert loaded.values == {"LOG_LEVEL": "info", "API_TOKEN": "s3cr3t"}
    assert loaded.secret_names == ["API_TOKEN"]
    # Without a secret in it, a readable file is fine.
    assert read(env_file(tmp_path, "LOG_LEVEL=info\n", mode=0o644)) == {"LOG_LEVEL": "info"}


def test_a_file_others_can_write_or_someone_else_owns_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"writable by group or others \(mode 0622\)"):
        read(env_file(tmp_path, "A=1\n", mode=0o622))
    if os.getuid() != 0:
        pytest.skip("giving a file to another uid needs root")
    path = env_file(tmp_path, "A=1\n")
    os.chown(path, 2000, 2000)
    with pytest.raises(InputError, match="belongs to uid 2000, not to you or root"):
        read(path)


def test_what_is_not_a_small_regular_file_is_refused_without_hanging(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")  # opening it to read would block until a writer came
    with pytest.raises(InputError, match="fifo: not a regular file"):
        read(tmp_path / "fifo")
    with pytest.raises(InputError, match="No such file"):
        read(tmp_path / "missing")
    with pytest.raises(InputError, match="larger than"):
        read(env_file(tmp_path, "A=" + "x" * ENV_FILE_LIMIT))
