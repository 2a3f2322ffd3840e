"""sources/commands.py: package installs and account creation read from one argv."""

from __future__ import annotations

import pytest

from paracle_guard.sources.commands import (
    AccountCommand,
    InstalledPackage,
    account_command,
    installed_packages,
    unwrap,
)


def test_unwrap_looks_through_wrappers_and_their_option_values() -> None:
    argv = ["sudo", "-E", "-u", "root", "env", "-u", "HOME", "A=1", "nice", "-n", "5",
            "apt-get", "install", "x"]
    assert unwrap(argv) == ["apt-get", "install", "x"]
    assert unwrap(["exec", "--", "gosu", "app", "cmd"]) == ["gosu", "app", "cmd"]
    assert unwrap(["sudo"]) == []


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ("apt-get -o APT::Get::Assume-Yes=true -t bookworm-backports install -y curl",
         [("apt", "curl", None)]),
        ("apt-get install libc6:amd64 pkg- $EXTRA /tmp/x.deb", [("apt", "libc6", None)]),
        ("apt-get update", []),
        ("apt-get remove curl", []),
        ("apk add -X https://mirror/edge -t .deps gcc py3-pip>=23 foo@testing",
         [("apk", "gcc", None), ("apk", "py3-pip", ">=23"), ("apk", "foo", None)]),
        ("apk del curl", []),
        ("dnf --setopt=install_weak_deps=False -y install @core java-17-openjdk ./x.rpm",
         [("dnf", "java-17-openjdk", None)]),
        ("zypper --non-interactive in -t pattern devel_basis", [("zypper", "devel_basis", None)]),
        ("pip install -i https://pypi.example/simple --extra-index-url https://x -c c.txt six",
         [("pip", "six", None)]),
        ("pip install 'Flask==3.0.0' 'requests[socks]~=2.31' numpy===1.26 'a>=1,<2' b==1,!=2",
         [("pip", "flask", "3.0.0"), ("pip", "requests", "~=2.31"), ("pip", "numpy", "1.26"),
          ("pip", "a", ">=1,<2"), ("pip", "b", "==1,!=2")]),
        ("pip install mypkg @ git+https://github.com/x/y.git other",
         [("pip", "mypkg", None), ("pip", "other", None)]),
        ("pip install https://x/y.whl ./dist/z.whl src/pkg ~/pkg", []),
        ("python3.12 -m pip install -U pip", [("pip", "pip", None)]),
        ("python3 -m venv /venv", []),
        ("uv pip install --system httpx", [("pip", "httpx", None)]),
        ("pip download requests", []),
    ],
)
def test_installed_packages(argv: str, expected: list[tuple[str, str, str | None]]) -> None:
    words = [word.strip("'") for word in argv.split(" ")]
    assert installed_packages(words) == [InstalledPackage(*found) for found in expected]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ("useradd -r -u 1000 -g app -G audio,video -s /bin/sh -c comment app",
         AccountCommand("user", "app", "1000", "app")),
        ("useradd --uid=1001 --gid=1001 bob", AccountCommand("user", "bob", "1001", "1001")),
        ("useradd -u1002 carol", AccountCommand("user", "carol", "1002", None)),
        ("useradd dave", AccountCommand("user", "dave", None, None)),
        ("adduser --disabled-password --gecos x --uid 1003 --ingroup staff erin",
         AccountCommand("user", "erin", "1003", "staff")),
        ("adduser -D -g gecos -h /home/f -u 1004 -G grp frank",
         AccountCommand("user", "frank", "1004", "grp")),
        ("adduser frank sudo", None),
        ("groupadd -r -g 2000 staff", AccountCommand("group", "staff", "2000", None)),
        ("addgroup --gid 2001 ops", AccountCommand("group", "ops", "2001", None)),
        ("addgroup -S -g 2002 web", AccountCommand("group", "web", "2002", None)),
        ("addgroup app wheel", None),
        ("usermod -u 1000 app", None),
    ],
)
def test_account_command(argv: str, expected: AccountCommand | None) -> None:
    assert account_command(argv.split(" ")) == expected
